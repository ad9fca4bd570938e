//! The stash's configuration: a TOML file, then environment overrides, validated once at
//! start-up with errors that name the key and the fix.
//!
//! Any key can be overridden from the environment as `TESSERA_STASH__<SECTION>__<KEY>`,
//! e.g. `TESSERA_STASH__STORAGE__BACKEND=redis` or `TESSERA_STASH__LISTEN=0.0.0.0:7401`.
//! Values are read as TOML (numbers, booleans, arrays) and otherwise as strings.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tessera_mtls::{AccessPolicy, ServiceIdentity, TlsSettings};
use tessera_telemetry::LogFormat;

use crate::store::{EmbeddedStoreOptions, RedisStoreOptions};
use crate::{DatacenterId, StashError};

/// The prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "TESSERA_STASH__";

/// Everything `tessera-token-stash serve` is configured by.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StashConfig {
    /// This stash's datacenter id; tokens it mints start with it.
    #[serde(default = "default_datacenter")]
    pub datacenter: DatacenterId,
    /// The gRPC (mutual TLS) address.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The admin HTTP address: /healthz, /readyz, /metrics.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: SocketAddr,
    /// `human` or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Where entries live.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Token memory and sealing.
    #[serde(default)]
    pub tokens: TokensConfig,
    /// Certificates.
    #[serde(default)]
    pub tls: TlsSettings,
    /// Who may call which RPC.
    #[serde(default = "default_access")]
    pub access: AccessPolicy,
    /// Stashes of other datacenters, by datacenter id.
    #[serde(default)]
    pub peers: BTreeMap<String, PeerConfig>,
    /// The audit service (events are recorded only when its `url` is set).
    #[serde(default)]
    pub audit: tessera_audit_client::AuditSettings,
}

/// Which backend stores entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A data directory; nothing to install.
    #[default]
    Embedded,
    /// A Redis server whose `maxmemory-policy` is `noeviction`.
    Redis,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Embedded => "embedded",
            Backend::Redis => "redis",
        })
    }
}

/// The `[storage]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `embedded` (default) or `redis`.
    pub backend: Backend,
    /// The embedded backend's data directory.
    pub data_dir: PathBuf,
    /// The Redis URL, for the `redis` backend.
    pub redis_url: String,
    /// Prefix of every Redis key this stash writes.
    pub redis_key_prefix: String,
    /// The most live entries; past it puts fail and nothing stored is touched.
    pub capacity_entries: u64,
    /// Redis only: how many replicas must hold each put, take and delete before it is
    /// answered (Redis `WAIT`). 0 answers once the primary has it, which a failover to a
    /// replica that had not caught up can undo; set it to the number of replicas that
    /// can be promoted.
    pub redis_wait_replicas: u32,
    /// Redis only: how long a write waits for those replicas; one not confirmed in time is
    /// answered `UNAVAILABLE`, never as done.
    pub redis_wait_timeout_ms: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: Backend::Embedded,
            data_dir: PathBuf::from(".tessera/data/token-stash"),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_key_prefix: "tessera:stash:".into(),
            capacity_entries: 1_000_000,
            redis_wait_replicas: 0,
            redis_wait_timeout_ms: 1000,
        }
    }
}

/// The `[tokens]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// The key sealing tokens in the owner index; created if missing. Replicas sharing a
    /// store must share it.
    pub seal_key_file: PathBuf,
    /// How long consumed and expired tokens are remembered (at least 600).
    pub remember_seconds: u64,
    /// The most remembered tokens (embedded backend); the oldest are forgotten first.
    pub max_remembered: u64,
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            seal_key_file: PathBuf::from(".tessera/secrets/token-stash-seal.key"),
            remember_seconds: 600,
            max_remembered: 1_000_000,
        }
    }
}

/// One `[peers.<dc>]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// e.g. `https://stash.dc2.internal:7401`.
    pub url: String,
}

/// The identity of every token stash: `spiffe://tessera/token-stash`.
pub fn stash_identity() -> ServiceIdentity {
    ServiceIdentity::token_stash()
}

fn default_datacenter() -> DatacenterId {
    DatacenterId::try_from("dc1").unwrap_or_else(|_| unreachable!("a valid literal"))
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7401))
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7481))
}

/// Login, session-jwt and peer stashes may use the stash; Stats is also open to admins.
pub fn default_access() -> AccessPolicy {
    let ids = |names: &[&str]| -> BTreeSet<ServiceIdentity> {
        names
            .iter()
            .filter_map(|n| ServiceIdentity::parse(n).ok())
            .collect()
    };
    let mut policy = AccessPolicy {
        default: ids(&["login", "session-jwt", "token-stash"]),
        per_rpc: BTreeMap::new(),
    };
    policy.per_rpc.insert(
        "Stats".into(),
        ids(&["admin", "login", "session-jwt", "token-stash"]),
    );
    policy
}

impl Default for StashConfig {
    fn default() -> Self {
        StashConfig {
            datacenter: default_datacenter(),
            listen: default_listen(),
            admin_listen: default_admin_listen(),
            log_format: LogFormat::default(),
            storage: StorageConfig::default(),
            tokens: TokensConfig::default(),
            tls: TlsSettings::default(),
            access: default_access(),
            peers: BTreeMap::new(),
            audit: tessera_audit_client::AuditSettings::default(),
        }
    }
}

impl StashConfig {
    /// This configuration with its secrets hidden, for printing.
    pub fn redacted(&self) -> Self {
        let mut config = self.clone();
        config.storage.redis_url = tessera_config::redact_url(&self.storage.redis_url);
        config
    }

    /// Reads `path` (if given), applies `TESSERA_STASH__*` overrides from `env`, and
    /// validates the result.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, StashError> {
        let config: StashConfig = tessera_config::load(path, env, ENV_PREFIX)
            .map_err(|e| StashError::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), StashError> {
        if self.storage.capacity_entries == 0 {
            return Err(StashError::Config(
                "storage.capacity_entries is 0; set it to the most live entries to accept".into(),
            ));
        }
        if self.tokens.remember_seconds < 600 {
            return Err(StashError::Config(format!(
                "tokens.remember_seconds is {}; it must be at least 600 so that a reused or late token is reported as such",
                self.tokens.remember_seconds
            )));
        }
        if self.storage.backend == Backend::Redis && self.storage.redis_url.is_empty() {
            return Err(StashError::Config(
                "storage.redis_url is empty; set it to the Redis URL, e.g. redis://127.0.0.1:6379"
                    .into(),
            ));
        }
        if self.storage.redis_wait_replicas > 0 && self.storage.redis_wait_timeout_ms == 0 {
            return Err(StashError::Config(
                "storage.redis_wait_timeout_ms is 0, which makes Redis wait forever for replicas; set it to how long a write may wait, e.g. 1000".into(),
            ));
        }
        for (dc, peer) in &self.peers {
            let peer_dc = DatacenterId::try_from(dc.as_str())
                .map_err(|e| StashError::Config(format!("peers.{dc}: {e}")))?;
            if peer_dc == self.datacenter {
                return Err(StashError::Config(format!(
                    "peers.{dc} names this stash's own datacenter; list only other datacenters"
                )));
            }
            if !peer.url.starts_with("https://") {
                return Err(StashError::Config(format!(
                    "peers.{dc}.url {:?} must start with https:// (peers talk mutual TLS)",
                    peer.url
                )));
            }
        }
        Ok(())
    }

    /// The embedded backend's options.
    pub fn embedded_options(&self) -> EmbeddedStoreOptions {
        EmbeddedStoreOptions {
            data_dir: self.storage.data_dir.clone(),
            capacity: self.storage.capacity_entries,
            remember_for: Duration::from_secs(self.tokens.remember_seconds),
            max_remembered: self.tokens.max_remembered,
        }
    }

    /// The Redis backend's options.
    pub fn redis_options(&self) -> RedisStoreOptions {
        RedisStoreOptions {
            url: self.storage.redis_url.clone(),
            key_prefix: self.storage.redis_key_prefix.clone(),
            capacity: self.storage.capacity_entries,
            remember_for: Duration::from_secs(self.tokens.remember_seconds),
            wait_replicas: self.storage.redis_wait_replicas,
            wait_timeout: Duration::from_millis(self.storage.redis_wait_timeout_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let config = StashConfig::load(None, env(&[])).expect("defaults load");
        assert_eq!(config.datacenter.as_str(), "dc1");
        assert_eq!(config.storage.backend, Backend::Embedded);
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("stash.toml");
        std::fs::write(
            &path,
            "datacenter = \"dc-a\"\n[storage]\ncapacity_entries = 5\n",
        )
        .expect("write");
        let config = StashConfig::load(
            Some(&path),
            env(&[
                ("TESSERA_STASH__STORAGE__BACKEND", "redis"),
                ("TESSERA_STASH__STORAGE__CAPACITY_ENTRIES", "7"),
                ("UNRELATED", "x"),
            ]),
        )
        .expect("loads");
        assert_eq!(config.datacenter.as_str(), "dc-a");
        assert_eq!(config.storage.backend, Backend::Redis);
        assert_eq!(config.storage.capacity_entries, 7);
    }

    #[test]
    fn waiting_for_replicas_reaches_the_store_and_never_waits_forever() {
        let config = StashConfig::load(
            None,
            env(&[
                ("TESSERA_STASH__STORAGE__REDIS_WAIT_REPLICAS", "2"),
                ("TESSERA_STASH__STORAGE__REDIS_WAIT_TIMEOUT_MS", "250"),
            ]),
        )
        .expect("loads");
        let options = config.redis_options();
        assert_eq!(options.wait_replicas, 2);
        assert_eq!(options.wait_timeout, Duration::from_millis(250));
        let err = StashConfig::load(
            None,
            env(&[
                ("TESSERA_STASH__STORAGE__REDIS_WAIT_REPLICAS", "1"),
                ("TESSERA_STASH__STORAGE__REDIS_WAIT_TIMEOUT_MS", "0"),
            ]),
        )
        .expect_err("WAIT 0 blocks forever");
        assert!(err.to_string().contains("redis_wait_timeout_ms"), "{err}");
    }

    #[test]
    fn errors_name_the_key() {
        let err = StashConfig::load(
            None,
            env(&[("TESSERA_STASH__STORAGE__BACKEND", "memcached")]),
        )
        .expect_err("unknown backend");
        assert!(err.to_string().contains("memcached"), "{err}");
        let err = StashConfig::load(
            None,
            env(&[("TESSERA_STASH__STORAGE__CAPACITY_ENTRIES", "0")]),
        )
        .expect_err("zero capacity");
        assert!(
            err.to_string().contains("storage.capacity_entries"),
            "{err}"
        );
        let err = StashConfig::load(None, env(&[("TESSERA_STASH__LISTEN_ADDR", "x")]))
            .expect_err("unknown key");
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }
}
