//! Starting and running a stash: open the store (purging what expired while it was down),
//! then serve gRPC and the admin port until shutdown, with a purge task running beside.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tessera_clock::SharedClock;
use tessera_proto::stash::v1::token_stash_server::TokenStashServer;
use tessera_service::{Scaffold, Started, StopSignal};
use tessera_telemetry::admin::MetricsSource;
use tokio::sync::watch;

use crate::config::{Backend, StashConfig};
use crate::grpc::{Peers, StashService};
use crate::store::{EmbeddedStore, RedisStore, Store};
use crate::{Stash, StashError, StashMetrics, TokenSealer};

/// How often expired entries are purged: entries go within about this long of expiry.
pub const PURGE_INTERVAL: Duration = Duration::from_millis(500);

pub use tessera_service::Listeners;

/// What a started stash exposes to in-process callers.
#[derive(Debug)]
pub struct StashHandle {
    /// The datacenter id.
    pub datacenter: String,
    /// Which backend holds the entries.
    pub backend: Backend,
    /// How many expired entries the purge task has removed so far; changes after every
    /// purge that removed something, so tests can wait for a purge instead of sleeping.
    pub purged: watch::Receiver<u64>,
}

/// A stash that has opened its store and is ready to serve; serving ends with the
/// store closed.
pub type StartedStash = Started<StashHandle>;

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
    let router = tessera_service::grpc_server(&tls, &stash.metrics().registry)?
        .add_service(TokenStashServer::new(service));

    let mut scaffold = Scaffold::new(listeners, Arc::new(StashMetricsSource(stash.clone())))?;
    let (purge_count, purged) = watch::channel(0u64);
    let purging = stash.clone();
    scaffold
        .tasks()
        .spawn("purge", |stop| purge_loop(purging, stop, purge_count));
    let handle = StashHandle {
        datacenter: config.datacenter.to_string(),
        backend: config.storage.backend,
        purged,
    };
    Ok(scaffold.grpc(handle, router, shutdown, async move {
        match Arc::try_unwrap(stash) {
            Ok(stash) => stash.into_store().close().await,
            Err(_) => tracing::warn!(
                "the store is still in use at shutdown; it closes when the last user ends"
            ),
        }
    }))
}

async fn purge_loop<S: Store>(
    stash: Arc<Stash<S>>,
    mut stop: StopSignal,
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
            _ = stop.stopped() => return,
        }
    }
}
