//! The session service's configuration: a TOML file, then `TESSERA_SESSION__<SECTION>__<KEY>`
//! environment overrides.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tessera_mtls::{AccessPolicy, ServiceIdentity, TlsSettings};
use tessera_telemetry::LogFormat;

use crate::sessions::{Datacenters, Settings, MAX_LIFETIME};
use crate::SessionError;

/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "TESSERA_SESSION__";

/// Everything `tessera-session-jwt serve` is configured by.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// The gRPC (mutual TLS) address.
    pub listen: SocketAddr,
    /// The admin HTTP address.
    pub admin_listen: SocketAddr,
    /// `human` or `json`.
    pub log_format: LogFormat,
    /// Access token lifetime (the soft expiry), seconds.
    pub access_token_seconds: u64,
    /// A session's hard lifetime, seconds (at most 23 hours).
    pub session_lifetime_seconds: u64,
    /// A session not refreshed for this long ends, seconds.
    pub session_idle_seconds: u64,
    /// How long concurrent refreshes with one refresh token get the same pair, seconds.
    pub refresh_grace_seconds: u64,
    /// How long a replaced signing key stays published, seconds.
    pub retired_key_publish_seconds: u64,
    /// The directory of signing keys; replicas share it.
    pub keys_dir: PathBuf,
    /// The secret that derives stash tokens; replicas share it.
    pub secret_file: PathBuf,
    /// The token stash sessions live in.
    pub stash: StashConfig,
    /// Certificates.
    pub tls: TlsSettings,
    /// Who may call which RPC.
    pub access: AccessPolicy,
    /// The audit service (events are recorded only when its `url` is set).
    pub audit: tessera_audit_client::AuditSettings,
    /// Session services of other datacenters, by datacenter id: their keys are published
    /// here and their revocations followed.
    pub peers: BTreeMap<String, PeerConfig>,
}

/// One `[peers.<dc>]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// e.g. `https://session-jwt.dc2.internal:7402`.
    pub url: String,
}

/// The `[stash]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StashConfig {
    /// e.g. `https://127.0.0.1:7401`.
    pub url: String,
    /// The stash's datacenter id (tokens the service derives must name it).
    pub datacenter: String,
}

impl Default for StashConfig {
    fn default() -> Self {
        StashConfig {
            url: "https://127.0.0.1:7401".into(),
            datacenter: "dc1".into(),
        }
    }
}

/// The identity of the session service.
pub fn session_identity() -> ServiceIdentity {
    ServiceIdentity::session_jwt()
}

fn ids(names: &[&str]) -> BTreeSet<ServiceIdentity> {
    names
        .iter()
        .filter_map(|n| ServiceIdentity::parse(n).ok())
        .collect()
}

/// The login service may do everything but rotate keys; admins may rotate and read.
pub fn default_access() -> AccessPolicy {
    let mut per_rpc = BTreeMap::new();
    per_rpc.insert("RotateKeys".into(), ids(&["admin"]));
    // Peer datacenters' session services read keys and follow revocations.
    per_rpc.insert(
        "GetJwks".into(),
        ids(&["login", "admin", "audit", "session-jwt"]),
    );
    per_rpc.insert(
        "StreamRevocations".into(),
        ids(&["login", "admin", "audit", "session-jwt"]),
    );
    AccessPolicy {
        default: ids(&["login"]),
        per_rpc,
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7402)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 7482)),
            log_format: LogFormat::default(),
            access_token_seconds: 300,
            session_lifetime_seconds: 12 * 60 * 60,
            session_idle_seconds: 2 * 60 * 60,
            refresh_grace_seconds: 30,
            retired_key_publish_seconds: 13 * 60 * 60,
            keys_dir: PathBuf::from(".tessera/keys/session-jwt"),
            secret_file: PathBuf::from(".tessera/secrets/session-jwt.key"),
            stash: StashConfig::default(),
            tls: TlsSettings::default(),
            access: default_access(),
            audit: tessera_audit_client::AuditSettings::default(),
            peers: BTreeMap::new(),
        }
    }
}

impl SessionConfig {
    /// Reads `path` (if given), applies `TESSERA_SESSION__*` overrides, validates.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SessionError> {
        let config: SessionConfig = tessera_config::load(path, env, ENV_PREFIX)
            .map_err(|e| SessionError::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), SessionError> {
        let bad = |msg: String| Err(SessionError::Config(msg));
        if self.access_token_seconds == 0 {
            return bad("access_token_seconds must be at least 1".into());
        }
        if self.session_lifetime_seconds < self.access_token_seconds
            || self.session_lifetime_seconds > MAX_LIFETIME.as_secs()
        {
            return bad(format!(
                "session_lifetime_seconds must be between access_token_seconds and {}",
                MAX_LIFETIME.as_secs()
            ));
        }
        if self.session_idle_seconds < self.access_token_seconds {
            return bad("session_idle_seconds must be at least access_token_seconds, or sessions end before they can be refreshed".into());
        }
        if !self.stash.url.starts_with("https://") {
            return bad(format!(
                "stash.url {:?} must start with https:// (the stash talks mutual TLS)",
                self.stash.url
            ));
        }
        for (dc, peer) in &self.peers {
            let valid_name = !dc.is_empty()
                && dc.len() <= 32
                && dc
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid_name {
                return bad(format!(
                    "peers.{dc:?}: a datacenter id is 1-32 characters of a-z, 0-9 and -"
                ));
            }
            if *dc == self.stash.datacenter {
                return bad(format!("peers.{dc} names this service's own datacenter (stash.datacenter); list only the other datacenters"));
            }
            if !peer.url.starts_with("https://") {
                return bad(format!(
                    "peers.{dc}.url {:?} must start with https:// (peers talk mutual TLS)",
                    peer.url
                ));
            }
        }
        Ok(())
    }

    /// This datacenter and its peers.
    pub fn datacenters(&self) -> Datacenters {
        Datacenters {
            local: self.stash.datacenter.clone(),
            peers: self.peers.keys().cloned().collect(),
        }
    }

    /// The lifetimes the service runs with.
    pub fn settings(&self) -> Settings {
        Settings {
            soft_ttl: Duration::from_secs(self.access_token_seconds),
            lifetime: Duration::from_secs(self.session_lifetime_seconds),
            idle: Duration::from_secs(self.session_idle_seconds),
            grace: Duration::from_secs(self.refresh_grace_seconds),
        }
    }
}
