//! Following peer datacenters' session services over mutual TLS: their session keys
//! (published here beside ours) and their revocation streams (taken in, stored, and
//! announced here). A broken link is retried with backoff; every new subscription
//! replays what the peer has in force, so revocations made during a partition arrive
//! once it heals.

use std::sync::Arc;
use std::time::Duration;

use tessera_mtls::{ServiceIdentity, TlsFiles};
use tessera_proto::session::v1 as pb;
use tessera_proto::session::v1::session_jwt_client::SessionJwtClient;
use tessera_service::StopSignal;
use tessera_telemetry::metrics::Histogram;
use tonic::transport::Channel;

use crate::config::PeerConfig;
use crate::revocation::Revocation;
use crate::sessions::Sessions;
use crate::SessionError;

/// How long to wait for a peer to accept a connection before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a call may take to be answered (a stream: to start).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// A silent link is pinged this often, and called broken when a ping goes unanswered
/// this long: a cut cable sends no reset, and a stream would otherwise wait forever.
const KEEPALIVE: Duration = Duration::from_secs(2);
/// How often a peer's keys are read again while linked, so a rotation there is published
/// here well before its first token could reach a site.
pub const PEER_KEYS_INTERVAL: Duration = Duration::from_secs(30);
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// Short: a healed link should bring the partition's revocations within seconds.
const LAST_RETRY: Duration = Duration::from_secs(2);

/// Another datacenter's session service.
#[derive(Debug, Clone)]
pub struct PeerSessions {
    datacenter: String,
    client: SessionJwtClient<Channel>,
    /// Time from a revocation made there to taken in here.
    lag: Option<Arc<Histogram>>,
}

impl PeerSessions {
    /// A client of `datacenter`'s session service, which must prove the session
    /// service's identity.
    pub fn connect(
        datacenter: &str,
        peer: &PeerConfig,
        tls: &TlsFiles,
    ) -> Result<Self, SessionError> {
        let connector = tls
            .connector_to(&ServiceIdentity::session_jwt())
            .map_err(|e| SessionError::Config(format!("peers.{datacenter}: {e}")))?;
        let channel = connector
            .endpoint(&peer.url)
            .map_err(|e| SessionError::Config(format!("peers.{datacenter}.url: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .http2_keep_alive_interval(KEEPALIVE)
            .keep_alive_timeout(KEEPALIVE)
            .keep_alive_while_idle(true)
            .connect_with_connector_lazy(connector);
        Ok(PeerSessions {
            datacenter: datacenter.to_owned(),
            client: SessionJwtClient::new(channel),
            lag: None,
        })
    }

    /// Records the revocation lag from this peer in `lag`.
    pub fn with_lag_metric(mut self, lag: Arc<Histogram>) -> Self {
        self.lag = Some(lag);
        self
    }

    /// The peer's datacenter id.
    pub fn datacenter(&self) -> &str {
        &self.datacenter
    }

    /// Follows the peer until `stop`: its keys now and every [`PEER_KEYS_INTERVAL`], its
    /// revocations as they happen.
    pub async fn follow(self, sessions: Arc<Sessions>, mut stop: StopSignal) {
        let mut retry = FIRST_RETRY;
        loop {
            let linked = tokio::select! {
                linked = self.follow_once(&sessions) => linked,
                _ = stop.stopped() => return,
            };
            if linked {
                retry = FIRST_RETRY;
            }
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = stop.stopped() => return,
            }
            retry = (retry * 2).min(LAST_RETRY);
        }
    }

    /// One subscription, until the link breaks; whether it was ever established.
    async fn follow_once(&self, sessions: &Sessions) -> bool {
        let dc = self.datacenter.as_str();
        if let Err(err) = self.fetch_keys(sessions).await {
            tracing::warn!(peer = dc, %err, "cannot read the peer datacenter's session keys; retrying");
            return false;
        }
        let mut stream = match self
            .client
            .clone()
            .stream_revocations(pb::StreamRevocationsRequest {})
            .await
        {
            Ok(response) => response.into_inner(),
            Err(status) => {
                tracing::warn!(peer = dc, %status, "cannot follow the peer datacenter's revocations; retrying");
                return false;
            }
        };
        tracing::info!(peer = dc, "following the peer datacenter's revocations");
        let mut keys_tick = tokio::time::interval(PEER_KEYS_INTERVAL);
        keys_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        keys_tick.reset();
        loop {
            tokio::select! {
                message = stream.message() => match message {
                    Ok(Some(message)) => {
                        if let Err(err) = self.take_in(sessions, message).await {
                            tracing::warn!(peer = dc, %err, "cannot store a peer datacenter's revocation; subscribing again to receive it again");
                            return true;
                        }
                    }
                    Ok(None) => {
                        tracing::warn!(peer = dc, "the peer datacenter ended its revocation stream; reconnecting");
                        return true;
                    }
                    Err(status) => {
                        tracing::warn!(peer = dc, %status, "the link to the peer datacenter broke; reconnecting");
                        return true;
                    }
                },
                _ = keys_tick.tick() => {
                    if let Err(err) = self.fetch_keys(sessions).await {
                        tracing::warn!(peer = dc, %err, "cannot read the peer datacenter's session keys; keeping the last ones");
                    }
                }
            }
        }
    }

    /// Reads the peer's own keys and publishes them here.
    pub async fn fetch_keys(&self, sessions: &Sessions) -> Result<(), SessionError> {
        let reply = self
            .client
            .clone()
            .get_jwks(pb::GetJwksRequest { own_only: true })
            .await
            .map_err(|status| SessionError::Stash(format!("peer {}: {status}", self.datacenter)))?;
        let jwks = serde_json::from_str(&reply.into_inner().jwks_json).map_err(|e| {
            SessionError::Keys(format!(
                "peer {} published unreadable keys: {e}",
                self.datacenter
            ))
        })?;
        sessions.set_peer_keys(&self.datacenter, jwks)
    }

    /// Takes in one streamed revocation if the peer made it: what the peer took in from
    /// elsewhere (this datacenter included) arrives from its origin directly. Stored
    /// before it is announced, so a restart here never forgets it.
    async fn take_in(
        &self,
        sessions: &Sessions,
        message: pb::Revocation,
    ) -> Result<(), SessionError> {
        if message.origin_datacenter != self.datacenter {
            return Ok(());
        }
        let origin = message.origin_datacenter.clone();
        let Some(event) = tessera_verify::grpc::from_proto(message) else {
            return Ok(());
        };
        let age = sessions.revocation_age(&event);
        if sessions
            .take_in_from_peer(Revocation { event, origin })
            .await?
        {
            if let Some(lag) = &self.lag {
                lag.observe(age);
            }
            tracing::info!(peer = %self.datacenter, lag = ?age, "took in a peer datacenter's revocation");
        }
        Ok(())
    }
}
