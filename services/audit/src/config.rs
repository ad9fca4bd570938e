//! The audit service's configuration: a TOML file, then `TESSERA_AUDIT__<KEY>`
//! environment overrides.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tessera_mtls::{AccessPolicy, ServiceIdentity, TlsSettings};
use tessera_telemetry::LogFormat;

use crate::event::IpMode;
use crate::AuditError;

/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "TESSERA_AUDIT__";

/// Everything `tessera-audit serve` is configured by.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// gRPC (mutual TLS).
    pub listen: SocketAddr,
    /// Admin HTTP: health, metrics, the query API and the dashboard.
    pub admin_listen: SocketAddr,
    /// `human` or `json`.
    pub log_format: LogFormat,
    /// Where the log lives.
    pub data_dir: PathBuf,
    /// Records older than this many days are cut (0: keep everything).
    pub retention_days: u64,
    /// `truncate` or `hash`.
    pub client_ip_mode: IpMode,
    /// The admin credential of the query API and the dashboard (created if missing),
    /// and the key of hashed client IPs.
    pub secrets_dir: PathBuf,
    /// Certificates.
    pub tls: TlsSettings,
    /// Who may call which RPC.
    pub access: AccessPolicy,
    /// The datacenter it serves, as its traces name it.
    pub datacenter: String,
    /// A trace viewer's UI (Jaeger's `/trace/<id>` pages), e.g. `http://127.0.0.1:7416`:
    /// the dashboard links each event that has a trace id there.
    pub trace_viewer_url: Option<String>,
}

/// The identity of the audit service.
pub fn audit_identity() -> ServiceIdentity {
    ServiceIdentity::audit()
}

/// Every Tessera service may append; only an admin may query.
pub fn default_access() -> AccessPolicy {
    let ids = |names: &[&str]| -> BTreeSet<ServiceIdentity> {
        names
            .iter()
            .filter_map(|n| ServiceIdentity::parse(n).ok())
            .collect()
    };
    let mut per_rpc = BTreeMap::new();
    per_rpc.insert(
        "Append".into(),
        ids(&["login", "session-jwt", "token-stash", "audit", "admin"]),
    );
    per_rpc.insert("Query".into(), ids(&["admin"]));
    AccessPolicy {
        default: BTreeSet::new(),
        per_rpc,
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7403)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 7483)),
            log_format: LogFormat::default(),
            data_dir: PathBuf::from(".tessera/data/audit"),
            retention_days: 400,
            client_ip_mode: IpMode::default(),
            secrets_dir: PathBuf::from(".tessera/secrets/audit"),
            tls: TlsSettings::default(),
            access: default_access(),
            datacenter: "dc1".into(),
            trace_viewer_url: None,
        }
    }
}

impl AuditConfig {
    /// Reads `path` (if given), applies `TESSERA_AUDIT__*` overrides.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, AuditError> {
        tessera_config::load(path, env, ENV_PREFIX).map_err(|e| AuditError::Config(e.to_string()))
    }
}
