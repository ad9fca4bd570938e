//! Starting and running the session service.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tessera_clock::SharedClock;
use tessera_proto::session::v1::session_jwt_server::SessionJwtServer;
use tessera_service::{Scaffold, Started, StopSignal};

use crate::config::{session_identity, SessionConfig};
use crate::derive::load_derivation;
use crate::grpc::SessionService;
use crate::keys::KeyRing;
use crate::metrics::SessionMetrics;
use crate::peers::PeerSessions;
use crate::sessions::Sessions;
use crate::stash::Stash;
use crate::SessionError;

pub use tessera_service::Listeners;

/// A session service ready to serve; its handle is the state, for in-process callers and
/// tests.
pub type StartedSessions = Started<Arc<Sessions>>;

/// Loads keys and revocations in force, then prepares the server.
pub async fn start(
    config: SessionConfig,
    clock: SharedClock,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<StartedSessions, SessionError> {
    let tls = config
        .tls
        .resolve(&session_identity())
        .map_err(|e| SessionError::Config(format!("tls: {e}")))?;
    let stash = Stash::connect(&config.stash.url, &tls)?;
    let keys = KeyRing::open(
        &config.keys_dir,
        Duration::from_secs(config.retired_key_publish_seconds),
        clock.now(),
    )?;
    let derive = load_derivation(&config.secret_file, &config.stash.datacenter)?;
    let sessions = Arc::new(
        Sessions::start(
            stash,
            keys,
            derive,
            clock.clone(),
            config.settings(),
            config.datacenters(),
        )
        .await?,
    );
    let metrics = Arc::new(SessionMetrics::default());
    let peers = config
        .peers
        .iter()
        .map(|(dc, peer)| {
            PeerSessions::connect(dc, peer, &tls)
                .map(|peer| peer.with_lag_metric(metrics.revocation_lag.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let audit = config
        .audit
        .start(
            "session-jwt",
            &config.stash.datacenter,
            &tls,
            clock.clone(),
            &metrics.registry,
        )
        .map_err(|e| SessionError::Config(e.to_string()))?;
    let service = SessionService::new(
        sessions.clone(),
        config.access.clone(),
        metrics.clone(),
        audit,
    );
    let router = tessera_service::grpc_server(&tls, &metrics.registry)?
        .add_service(SessionJwtServer::new(service));
    let mut scaffold = Scaffold::new(listeners, Arc::new(metrics.registry.clone()))?;
    let keys = sessions.clone();
    scaffold
        .tasks()
        .spawn("key-reload", |stop| reload_keys(keys, stop));
    let feed = sessions.revocations().clone();
    scaffold
        .tasks()
        .spawn("revocation-replicas", |stop| feed.follow_replicas(stop));
    for peer in peers {
        let sessions = sessions.clone();
        scaffold
            .tasks()
            .spawn("peer-datacenter", |stop| peer.follow(sessions, stop));
    }
    Ok(scaffold.grpc(sessions, router, shutdown, async {}))
}

/// How often the key directory is read again, so a rotation made by one replica reaches
/// the others.
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

async fn reload_keys(sessions: Arc<Sessions>, mut stop: StopSignal) {
    let mut tick = tokio::time::interval(KEY_RELOAD_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(err) = sessions.reload_keys() {
                    tracing::warn!(%err, "reloading signing keys failed; keeping the ones loaded");
                }
            }
            _ = stop.stopped() => return,
        }
    }
}
