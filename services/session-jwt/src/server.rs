//! Starting and running the session service.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tessera_clock::SharedClock;
use tessera_proto::session::v1::session_jwt_server::SessionJwtServer;
use tessera_telemetry::admin::{self, MetricsSource, Readiness};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;

use crate::config::{session_identity, SessionConfig};
use crate::derive::load_derivation;
use crate::grpc::SessionService;
use crate::keys::KeyRing;
use crate::metrics::SessionMetrics;
use crate::sessions::Sessions;
use crate::stash::Stash;
use crate::SessionError;

/// The two sockets the service serves on, bound by the caller.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC over mutual TLS.
    pub grpc: TcpListener,
    /// Admin HTTP.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the addresses in `config`.
    pub async fn bind(config: &SessionConfig) -> Result<Self, SessionError> {
        let bind = |addr: SocketAddr, key: &'static str| async move {
            TcpListener::bind(addr).await.map_err(|e| {
                SessionError::Config(format!(
                    "{key}: cannot listen on {addr}: {e}; choose a free address"
                ))
            })
        };
        Ok(Listeners {
            grpc: bind(config.listen, "listen").await?,
            admin: bind(config.admin_listen, "admin_listen").await?,
        })
    }
}

/// A session service ready to serve.
pub struct StartedSessions {
    /// Where gRPC is served.
    pub grpc_addr: SocketAddr,
    /// Where the admin port is served.
    pub admin_addr: SocketAddr,
    /// The state, for in-process callers and tests.
    pub sessions: Arc<Sessions>,
    serve: Pin<Box<dyn Future<Output = Result<(), SessionError>> + Send>>,
}

impl std::fmt::Debug for StartedSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedSessions")
            .field("grpc_addr", &self.grpc_addr)
            .finish_non_exhaustive()
    }
}

impl StartedSessions {
    /// Serves until the shutdown future given to [`start`] resolves.
    pub async fn serve(self) -> Result<(), SessionError> {
        self.serve.await
    }
}

struct Metrics(Arc<SessionMetrics>);

impl MetricsSource for Metrics {
    fn render(&self) -> Pin<Box<dyn Future<Output = String> + Send + '_>> {
        Box::pin(async move { self.0.registry.render() })
    }
}

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
    let stash_tls = tls
        .client_config(&config.stash.server_name)
        .map_err(|e| SessionError::Config(format!("tls: {e}")))?;
    let stash = Stash::connect(&config.stash.url, stash_tls)?;
    let keys = KeyRing::open(
        &config.keys_dir,
        Duration::from_secs(config.retired_key_publish_seconds),
        clock.now(),
    )?;
    let derive = load_derivation(&config.secret_file, &config.stash.datacenter)?;
    let sessions =
        Arc::new(Sessions::start(stash, keys, derive, clock.clone(), config.settings()).await?);
    let metrics = Arc::new(SessionMetrics::default());
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
    let server_tls = tls
        .server_config()
        .map_err(|e| SessionError::Config(format!("tls: {e}")))?;
    let router = tonic::transport::Server::builder()
        .tls_config(server_tls)
        .map_err(|e| SessionError::Config(format!("tls: {e}")))?
        .trace_fn(tessera_telemetry::trace_context::grpc_server_span)
        .add_service(SessionJwtServer::new(service));
    let grpc_addr = listeners
        .grpc
        .local_addr()
        .map_err(|e| SessionError::Config(e.to_string()))?;
    let admin_addr = listeners
        .admin
        .local_addr()
        .map_err(|e| SessionError::Config(e.to_string()))?;
    let readiness = Readiness::default();
    let sessions_for_reload = sessions.clone();
    let serve = async move {
        let (stop, stopped) = watch::channel(false);
        let stopped_for_reload = stopped.clone();
        let admin = tokio::spawn(admin::serve(
            listeners.admin,
            readiness.clone(),
            Arc::new(Metrics(metrics)),
            async move {
                let mut stopped = stopped;
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        ));
        let reload = tokio::spawn(keep_in_step_with_replicas(
            sessions_for_reload,
            stopped_for_reload,
        ));
        readiness.set(true);
        let served = router
            .serve_with_incoming_shutdown(
                // Small RPCs must not wait for Nagle's algorithm and delayed ACKs.
                TcpIncoming::from(listeners.grpc).with_nodelay(Some(true)),
                async move {
                    shutdown.await;
                    let _ = stop.send(true);
                    tracing::info!("shutting down: finishing requests in flight");
                },
            )
            .await;
        readiness.set(false);
        let _ = admin.await;
        let _ = reload.await;
        served.map_err(|e| SessionError::Config(format!("gRPC server failed: {e}")))
    };
    Ok(StartedSessions {
        grpc_addr,
        admin_addr,
        sessions,
        serve: Box::pin(serve),
    })
}

/// How often the key directory is read again, so a rotation made by one replica reaches
/// the others.
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(10);
/// How often revocations stored by other replicas are read, so a logout anywhere reaches
/// every subscriber within about a second.
const REVOCATION_SYNC_INTERVAL: Duration = Duration::from_millis(500);

async fn keep_in_step_with_replicas(sessions: Arc<Sessions>, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(KEY_RELOAD_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut revocations = tokio::time::interval(REVOCATION_SYNC_INTERVAL);
    revocations.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(err) = sessions.reload_keys() {
                    tracing::warn!(%err, "reloading signing keys failed; keeping the ones loaded");
                }
            }
            _ = revocations.tick() => {
                if let Err(err) = sessions.sync_revocations().await {
                    tracing::warn!(%err, "reading other replicas' revocations failed; will retry");
                }
                sessions.prune();
            }
            changed = stopped.changed() => {
                if changed.is_err() || *stopped.borrow() {
                    return;
                }
            }
        }
    }
}
