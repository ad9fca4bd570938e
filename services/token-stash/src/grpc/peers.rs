//! Clients of the stashes of other datacenters, over mutual TLS.

use std::collections::BTreeMap;
use std::time::Duration;
use tessera_service::ServiceError as _;

use tessera_mtls::{ServiceIdentity, TlsFiles};
use tessera_proto::stash::v1::token_stash_client::TokenStashClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::config::PeerConfig;
use crate::{DatacenterId, StashError, Token};

type Interceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

/// A client of one peer stash, forwarding the caller's trace context.
pub type PeerClient = TokenStashClient<InterceptedService<Channel, Interceptor>>;

/// How long to wait for a peer to accept a connection before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a forwarded call may take in all.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a call about a token must run.
#[derive(Debug)]
pub enum PeerRoute {
    /// Here: this datacenter minted the token.
    Local,
    /// At the token's home datacenter, through this client.
    Remote {
        /// The home datacenter.
        datacenter: String,
        /// A client of its stash.
        client: PeerClient,
    },
}

/// The peer stashes, by datacenter id. Connections are made on first use and kept.
#[derive(Debug, Clone)]
pub struct Peers {
    local: DatacenterId,
    clients: BTreeMap<String, PeerClient>,
}

impl Peers {
    /// Clients of every configured peer, presenting `tls`'s certificate.
    pub fn new(
        local: DatacenterId,
        peers: &BTreeMap<String, PeerConfig>,
        tls: &TlsFiles,
    ) -> Result<Self, StashError> {
        let mut clients = BTreeMap::new();
        // A peer is another datacenter's stash: it must prove that identity.
        let connector = tls
            .connector_to(&ServiceIdentity::token_stash())
            .map_err(|e| StashError::Config(format!("peers: {e}")))?;
        for (dc, peer) in peers {
            let channel = connector
                .lazy_channel(&peer.url, CONNECT_TIMEOUT, CALL_TIMEOUT)
                .map_err(|e| StashError::Config(format!("peers.{dc}.url: {e}")))?;
            let interceptor: Interceptor = tessera_telemetry::trace_context::propagate;
            clients.insert(
                dc.clone(),
                TokenStashClient::with_interceptor(channel, interceptor),
            );
        }
        Ok(Peers { local, clients })
    }

    /// Where calls about `token` run.
    pub fn route(&self, token: &Token) -> Result<PeerRoute, StashError> {
        let home = token.home();
        if home == self.local.as_str() {
            return Ok(PeerRoute::Local);
        }
        match self.clients.get(home) {
            Some(client) => Ok(PeerRoute::Remote {
                datacenter: home.to_owned(),
                client: client.clone(),
            }),
            None => Err(StashError::UnknownDatacenter {
                dc: home.to_owned(),
            }),
        }
    }
}

/// The status to answer with when a forwarded call failed: the peer's own answer, except
/// that a peer that could not be reached (or answered that it cannot serve) is named.
pub fn forwarded_status(datacenter: &str, status: tonic::Status) -> tonic::Status {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown => {
            StashError::PeerUnavailable {
                dc: datacenter.to_owned(),
                detail: status.message().to_owned(),
            }
            .to_status()
        }
        _ => status,
    }
}
