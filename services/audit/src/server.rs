//! Starting and running the audit service.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tessera_clock::SharedClock;
use tessera_proto::audit::v1::audit_server::AuditServer;
use tessera_service::{Scaffold, Started, StopSignal};

use crate::config::{audit_identity, AuditConfig};
use crate::grpc::AuditService;
use crate::http::{routes, Dashboard};
use crate::log::AuditLog;
use crate::metrics::AuditMetrics;
use crate::AuditError;

pub use tessera_service::Listeners;

/// What a started audit service exposes to in-process callers and tests.
#[derive(Debug)]
pub struct AuditHandle {
    /// The log.
    pub log: AuditLog,
    /// The admin token of the query API and dashboard.
    pub admin_token: String,
}

/// An audit service ready to serve.
pub type StartedAudit = Started<AuditHandle>;

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
    let router = tessera_service::grpc_server(&tls, &metrics.registry)?
        .add_service(AuditServer::new(service));
    let dashboard = Arc::new(Dashboard {
        log: log.clone(),
        admin_token: token.clone(),
        clock: clock.clone(),
        trace_viewer_url: config.trace_viewer_url.clone(),
    });
    let mut scaffold = Scaffold::new(listeners, Arc::new(metrics.registry.clone()))?
        .admin_routes(routes(dashboard));
    let retention = config.retention_days;
    if retention > 0 {
        let pruned_log = log.clone();
        scaffold.tasks().spawn("retention", |stop| {
            keep_retention(pruned_log, clock, retention, stop)
        });
    }
    let handle = AuditHandle {
        log,
        admin_token: token,
    };
    Ok(scaffold.grpc(handle, router, shutdown, async {}))
}

/// Cuts records older than `days`, once an hour: retention is coarse by nature.
async fn keep_retention(log: AuditLog, clock: SharedClock, days: u64, mut stop: StopSignal) {
    let keep = i64::try_from(days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
    loop {
        let cutoff = clock.now().as_i64().saturating_sub(keep);
        match log.prune(cutoff).await {
            Ok(0) => {}
            Ok(cut) => tracing::info!(cut, "retention: cut records past their age"),
            Err(err) => tracing::error!(error = %err, "retention failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.stopped() => return,
        }
    }
}
