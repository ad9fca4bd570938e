//! Starting and running a stash: open the store (purging what expired while it was down),
//! then serve gRPC and the admin port until shutdown, with a purge task running beside.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tessera_clock::SharedClock;
use tessera_proto::stash::v1::token_stash_server::TokenStashServer;
use tessera_telemetry::admin::{self, MetricsSource, Readiness};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;

use crate::config::{Backend, StashConfig};
use crate::grpc::{Peers, StashService};
use crate::store::{EmbeddedStore, RedisStore, Store};
use crate::{Stash, StashError, StashMetrics, TokenSealer};

/// How often expired entries are purged: entries go within about this long of expiry.
pub const PURGE_INTERVAL: Duration = Duration::from_millis(500);

/// The two sockets a stash serves on, bound by the caller so tests can use port 0.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC over mutual TLS.
    pub grpc: TcpListener,
    /// Admin HTTP.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the addresses in `config`.
    pub async fn bind(config: &StashConfig) -> Result<Self, StashError> {
        let bind = |addr: SocketAddr, key: &'static str| async move {
            TcpListener::bind(addr).await.map_err(|e| {
                StashError::Config(format!(
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

/// A stash that has opened its store and is ready to serve.
pub struct StartedStash {
    /// Where gRPC is served.
    pub grpc_addr: SocketAddr,
    /// Where the admin port is served.
    pub admin_addr: SocketAddr,
    /// The datacenter id.
    pub datacenter: String,
    /// Which backend holds the entries.
    pub backend: Backend,
    /// How many expired entries the purge task has removed so far; changes after every
    /// purge that removed something, so tests can wait for a purge instead of sleeping.
    pub purged: watch::Receiver<u64>,
    serve: Pin<Box<dyn Future<Output = Result<(), StashError>> + Send>>,
}

impl std::fmt::Debug for StartedStash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedStash")
            .field("grpc_addr", &self.grpc_addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

impl StartedStash {
    /// Serves until the shutdown future given to [`start`] resolves; requests in flight
    /// then finish, and the store is closed.
    pub async fn serve(self) -> Result<(), StashError> {
        self.serve.await
    }
}

/// Opens the configured store and prepares the server. Nothing is answered before the
/// start-up purge has run, so no client ever sees an entry that expired while the stash
/// was down.
pub async fn start(
    config: StashConfig,
    clock: SharedClock,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<StartedStash, StashError> {
    let tls = config
        .tls
        .resolve(&crate::config::stash_identity())
        .map_err(|e| StashError::Config(format!("tls: {e}")))?;
    let sealer = TokenSealer::load_or_create(&config.tokens.seal_key_file)?;
    let now = clock.now();
    match config.storage.backend {
        Backend::Embedded => {
            let store = EmbeddedStore::open(config.embedded_options(), now).await?;
            prepare(config, clock, listeners, shutdown, store, sealer, tls)
        }
        Backend::Redis => {
            let store = RedisStore::open(config.redis_options(), now).await?;
            prepare(config, clock, listeners, shutdown, store, sealer, tls)
        }
    }
}

struct StashMetricsSource<S>(Arc<Stash<S>>);

impl<S: Store> MetricsSource for StashMetricsSource<S> {
    fn render(&self) -> Pin<Box<dyn Future<Output = String> + Send + '_>> {
        Box::pin(async move {
            // Refresh the gauges; a failed count leaves the last values in place.
            let _ = self.0.stats().await;
            self.0.metrics().registry.render()
        })
    }
}

fn prepare<S: Store>(
    config: StashConfig,
    clock: SharedClock,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
    store: S,
    sealer: TokenSealer,
    tls: tessera_mtls::TlsFiles,
) -> Result<StartedStash, StashError> {
    let grpc_addr = local_addr(&listeners.grpc)?;
    let admin_addr = local_addr(&listeners.admin)?;
    let metrics = Arc::new(StashMetrics::new());
    let clock_for_audit = clock.clone();
    let stash = Arc::new(Stash::new(
        store,
        config.datacenter.clone(),
        sealer,
        clock,
        metrics,
    ));
    let peers = Peers::new(config.datacenter.clone(), &config.peers, &tls)?;
    let audit = config
        .audit
        .start(
            "token-stash",
            config.datacenter.as_str(),
            &tls,
            clock_for_audit,
            &stash.metrics().registry,
        )
        .map_err(|e| StashError::Config(e.to_string()))?;
    let service = StashService::new(stash.clone(), config.access.clone(), peers, audit);
    let server_tls = tls
        .server_config()
        .map_err(|e| StashError::Config(format!("tls: {e}")))?;
    let router = tonic::transport::Server::builder()
        .tls_config(server_tls)
        .map_err(|e| StashError::Config(format!("tls: {e}")))?
        .trace_fn(tessera_telemetry::trace_context::grpc_server_span)
        .add_service(TokenStashServer::new(service));

    let (stop, stopped) = watch::channel(false);
    let (purge_count, purged) = watch::channel(0u64);
    let readiness = Readiness::default();
    let serve = async move {
        let purge = tokio::spawn(purge_loop(stash.clone(), stopped.clone(), purge_count));
        let admin = tokio::spawn(admin::serve(
            listeners.admin,
            readiness.clone(),
            Arc::new(StashMetricsSource(stash.clone())),
            wait_for_stop(stopped.clone()),
        ));
        let stop_on_signal = async move {
            shutdown.await;
            let _ = stop.send(true);
        };
        readiness.set(true);
        let served = router
            .serve_with_incoming_shutdown(
                // Small RPCs must not wait for Nagle's algorithm and delayed ACKs (~40 ms).
                TcpIncoming::from(listeners.grpc).with_nodelay(Some(true)),
                async move {
                    stop_on_signal.await;
                    tracing::info!("shutting down: finishing requests in flight");
                },
            )
            .await;
        readiness.set(false);
        let _ = purge.await;
        let _ = admin.await;
        match Arc::try_unwrap(stash) {
            Ok(stash) => stash.into_store().close().await,
            Err(_) => tracing::warn!(
                "the store is still in use at shutdown; it closes when the last user ends"
            ),
        }
        served.map_err(|e| StashError::Storage(format!("gRPC server failed: {e}")))
    };
    Ok(StartedStash {
        grpc_addr,
        admin_addr,
        datacenter: config.datacenter.to_string(),
        backend: config.storage.backend,
        purged,
        serve: Box::pin(serve),
    })
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, StashError> {
    listener
        .local_addr()
        .map_err(|e| StashError::Config(format!("cannot read the bound address: {e}")))
}

async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

async fn purge_loop<S: Store>(
    stash: Arc<Stash<S>>,
    mut stopped: watch::Receiver<bool>,
    purge_count: watch::Sender<u64>,
) {
    let mut tick = tokio::time::interval(PURGE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                match stash.purge_expired().await {
                    Ok(0) => {}
                    Ok(purged) => {
                        purge_count.send_modify(|total| *total += purged);
                    }
                    Err(err) => tracing::warn!(%err, "purging expired entries failed; will retry"),
                }
            }
            changed = stopped.changed() => {
                if changed.is_err() || *stopped.borrow() {
                    return;
                }
            }
        }
    }
}
