//! Starting and running the audit service.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tessera_clock::SharedClock;
use tessera_proto::audit::v1::audit_server::AuditServer;
use tessera_telemetry::admin::{self, MetricsSource, Readiness};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;

use crate::config::{audit_identity, AuditConfig};
use crate::grpc::AuditService;
use crate::http::{routes, Dashboard};
use crate::log::AuditLog;
use crate::metrics::AuditMetrics;
use crate::AuditError;

/// The two sockets the service serves on, bound by the caller.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC over mutual TLS.
    pub grpc: TcpListener,
    /// Admin HTTP (health, metrics, query API, dashboard).
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the addresses in `config`.
    pub async fn bind(config: &AuditConfig) -> Result<Self, AuditError> {
        let bind = |addr: SocketAddr, key: &'static str| async move {
            TcpListener::bind(addr).await.map_err(|e| {
                AuditError::Config(format!(
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

/// An audit service ready to serve.
pub struct StartedAudit {
    /// Where gRPC is served.
    pub grpc_addr: SocketAddr,
    /// Where the admin port is served.
    pub admin_addr: SocketAddr,
    /// The log, for in-process callers and tests.
    pub log: AuditLog,
    /// The admin token of the query API and dashboard.
    pub admin_token: String,
    serve: Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send>>,
}

impl std::fmt::Debug for StartedAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedAudit")
            .field("grpc_addr", &self.grpc_addr)
            .finish_non_exhaustive()
    }
}

impl StartedAudit {
    /// Serves until the shutdown future given to [`start`] resolves.
    pub async fn serve(self) -> Result<(), AuditError> {
        self.serve.await
    }
}

struct Metrics(Arc<AuditMetrics>);

impl MetricsSource for Metrics {
    fn render(&self) -> Pin<Box<dyn Future<Output = String> + Send + '_>> {
        Box::pin(async move { self.0.registry.render() })
    }
}

/// The admin token in `dir/admin.token`, created (random, mode 0600) if missing.
fn admin_token(dir: &std::path::Path) -> Result<String, AuditError> {
    let (secret, created) = tessera_config::secret::load_or_create_secret(&dir.join("admin.token"))
        .map_err(|e| AuditError::Config(format!("secrets_dir: {e}")))?;
    if created {
        tracing::warn!(path = %dir.join("admin.token").display(), "generated the audit admin token");
    }
    Ok(tessera_config::secret::encode_hex(&secret))
}

/// Opens the log and prepares the server.
pub async fn start(
    config: AuditConfig,
    clock: SharedClock,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<StartedAudit, AuditError> {
    let tls = config
        .tls
        .resolve(&audit_identity())
        .map_err(|e| AuditError::Config(format!("tls: {e}")))?;
    let log = AuditLog::open(&config.data_dir)?;
    let token = admin_token(&config.secrets_dir)?;
    let (ip_key, _) =
        tessera_config::secret::load_or_create_secret(&config.secrets_dir.join("ip-hash.key"))
            .map_err(|e| AuditError::Config(format!("secrets_dir: {e}")))?;
    let metrics = Arc::new(AuditMetrics::default());
    let service = AuditService::new(
        log.clone(),
        config.access.clone(),
        config.client_ip_mode,
        ip_key,
        metrics.clone(),
    );
    let server_tls = tls
        .server_config()
        .map_err(|e| AuditError::Config(format!("tls: {e}")))?;
    let router = tonic::transport::Server::builder()
        .tls_config(server_tls)
        .map_err(|e| AuditError::Config(format!("tls: {e}")))?
        .trace_fn(tessera_telemetry::trace_context::grpc_server_span)
        .add_service(AuditServer::new(service));
    let grpc_addr = listeners
        .grpc
        .local_addr()
        .map_err(|e| AuditError::Config(e.to_string()))?;
    let admin_addr = listeners
        .admin
        .local_addr()
        .map_err(|e| AuditError::Config(e.to_string()))?;
    let dashboard = Arc::new(Dashboard {
        log: log.clone(),
        admin_token: token.clone(),
        clock: clock.clone(),
    });
    let readiness = Readiness::default();
    let retention = config.retention_days;
    let pruned_log = log.clone();
    let serve = async move {
        let (stop, stopped) = watch::channel(false);
        let admin_stopped = stopped.clone();
        let admin = tokio::spawn(admin::serve_with(
            listeners.admin,
            readiness.clone(),
            Arc::new(Metrics(metrics)),
            routes(dashboard),
            async move {
                let mut stopped = admin_stopped;
                let _ = stopped.wait_for(|s| *s).await;
            },
        ));
        let retention_task = tokio::spawn(async move {
            if retention == 0 {
                return;
            }
            let keep = i64::try_from(retention * 86_400_000).unwrap_or(i64::MAX);
            loop {
                let cutoff = clock.now().as_i64().saturating_sub(keep);
                match pruned_log.prune(cutoff).await {
                    Ok(0) => {}
                    Ok(cut) => tracing::info!(cut, "retention: cut records past their age"),
                    Err(err) => tracing::error!(error = %err, "retention failed"),
                }
                // Retention is coarse by nature; once an hour is plenty.
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        });
        readiness.set(true);
        let incoming = TcpIncoming::from(listeners.grpc).with_nodelay(Some(true));
        let served = router
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                readiness.set(false);
                let _ = stop.send(true);
            })
            .await;
        retention_task.abort();
        let _ = admin.await;
        served.map_err(|e| AuditError::Storage(format!("gRPC server: {e}")))
    };
    Ok(StartedAudit {
        grpc_addr,
        admin_addr,
        log,
        admin_token: token,
        serve: Box::pin(serve),
    })
}
