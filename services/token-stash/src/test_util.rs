//! The stash in a test: an in-process harness on loopback port 0, request builders, and
//! the environment for running the binary. Behind the `test-util` feature.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Backend, PeerConfig, StashConfig};
use crate::server::{self, Listeners};
use tessera_clock::{SharedClock, SystemClock};
use tessera_mtls::{AccessPolicy, TlsFiles};
use tessera_proto::stash::v1::token_stash_client::TokenStashClient;
use tokio::sync::watch;
use tonic::transport::Channel;

use tessera_service::{Running, ShutdownSwitch};
use tessera_testkit::TestPki;

/// Builds a [`StashHarness`]: an in-process token stash on loopback port 0.
#[derive(Debug)]
pub struct StashHarnessBuilder {
    pki: Arc<TestPki>,
    config: StashConfig,
    clock: SharedClock,
    listeners: Option<Listeners>,
    data_dir: Option<PathBuf>,
}

/// A token stash running in this process, stopped on [`StashHarness::shutdown`] or drop.
#[derive(Debug)]
pub struct StashHarness {
    /// Where gRPC is served.
    pub grpc_addr: SocketAddr,
    /// Where the admin port is served.
    pub admin_addr: SocketAddr,
    /// The cumulative count of purged entries, updated by the purge task.
    pub purged: watch::Receiver<u64>,
    pki: Arc<TestPki>,
    running: Running,
    _state_dir: tempfile::TempDir,
}

/// Binds loopback port 0 for gRPC and admin.
pub async fn bind_loopback() -> anyhow::Result<Listeners> {
    Ok(Listeners::loopback().await?)
}

impl StashHarness {
    /// A builder for a stash in datacenter `dc1` on the embedded backend.
    pub fn builder(pki: Arc<TestPki>) -> StashHarnessBuilder {
        let mut config = StashConfig::default();
        config.tls.dev_pki_dir = Some(pki.dir().to_owned());
        StashHarnessBuilder {
            pki,
            config,
            clock: SystemClock::shared(),
            listeners: None,
            data_dir: None,
        }
    }

    /// Sockets bound ahead of start, so that peers can be told each other's addresses.
    pub async fn bind() -> anyhow::Result<Listeners> {
        bind_loopback().await
    }

    /// A client presenting the certificate of `service` (e.g. `login`).
    pub async fn client(&self, service: &str) -> anyhow::Result<TokenStashClient<Channel>> {
        let channel = self
            .pki
            .channel(&self.pki.files(service), self.grpc_addr)
            .await?;
        Ok(TokenStashClient::new(channel))
    }

    /// The PKI this stash trusts.
    pub fn pki(&self) -> &Arc<TestPki> {
        &self.pki
    }

    /// Asks the stash to stop, waits for requests in flight and the store to close.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        Ok(self.running.shutdown().await?)
    }
}

impl StashHarnessBuilder {
    /// Sets the datacenter id.
    pub fn datacenter(mut self, dc: &str) -> Self {
        self.config.datacenter = dc
            .try_into()
            .unwrap_or_else(|e| panic!("test datacenter {dc:?}: {e}"));
        self
    }

    /// Uses the Redis backend at `url`, under its own key prefix.
    pub fn redis(mut self, url: &str, key_prefix: &str) -> Self {
        self.config.storage.backend = Backend::Redis;
        self.config.storage.redis_url = url.to_owned();
        self.config.storage.redis_key_prefix = key_prefix.to_owned();
        self
    }

    /// Keeps the embedded backend's data in `dir` (to reopen it later).
    pub fn data_dir(mut self, dir: PathBuf) -> Self {
        self.data_dir = Some(dir);
        self
    }

    /// Limits the stash to `entries` live entries.
    pub fn capacity(mut self, entries: u64) -> Self {
        self.config.storage.capacity_entries = entries;
        self
    }

    /// Uses `clock` for expiry.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the access policy.
    pub fn access(mut self, access: AccessPolicy) -> Self {
        self.config.access = access;
        self
    }

    /// Adds a peer stash for datacenter `dc` at `addr`.
    pub fn peer(mut self, dc: &str, addr: SocketAddr) -> Self {
        self.config.peers.insert(
            dc.to_owned(),
            PeerConfig {
                url: format!("https://{addr}"),
            },
        );
        self
    }

    /// Serves and calls with these certificate files instead of the stash's own.
    pub fn tls_files(mut self, files: &TlsFiles) -> Self {
        self.config.tls.ca_file = Some(files.ca_file.clone());
        self.config.tls.cert_file = Some(files.cert_file.clone());
        self.config.tls.key_file = Some(files.key_file.clone());
        self
    }

    /// Writes audit events to the audit service at `url`, spooling in `spool_dir`.
    pub fn audit(mut self, url: &str, spool_dir: PathBuf) -> Self {
        self.config.audit.url = url.to_owned();
        self.config.audit.spool_dir = spool_dir;
        self
    }

    /// Serves on sockets bound earlier with [`StashHarness::bind`].
    pub fn listeners(mut self, listeners: Listeners) -> Self {
        self.listeners = Some(listeners);
        self
    }

    /// Starts the stash; returns once it is ready to answer.
    pub async fn start(mut self) -> anyhow::Result<StashHarness> {
        let state_dir = tempfile::tempdir()?;
        self.config.storage.data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| state_dir.path().join("data"));
        self.config.tokens.seal_key_file = state_dir.path().join("seal.key");
        self.config.validate()?;
        let listeners = match self.listeners.take() {
            Some(listeners) => listeners,
            None => bind_loopback().await?,
        };
        let (switch, shutdown) = ShutdownSwitch::new();
        let started = server::start(self.config, self.clock, listeners, shutdown).await?;
        let grpc_addr = started.addr;
        let admin_addr = started.admin_addr;
        let purged = started.handle.purged.clone();
        Ok(StashHarness {
            grpc_addr,
            admin_addr,
            purged,
            pki: self.pki,
            running: Running::spawn(started, switch),
            _state_dir: state_dir,
        })
    }
}

/// Environment for running the `tessera-token-stash` binary on free loopback ports with
/// its state in `state_dir`, trusting `pki`; on Redis when `redis_url` is given.
pub fn stash_process_env(
    pki: &TestPki,
    state_dir: &std::path::Path,
    redis_url: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("TESSERA_STASH__LISTEN", "127.0.0.1:0".to_owned()),
        ("TESSERA_STASH__ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "TESSERA_STASH__STORAGE__DATA_DIR",
            state_dir.join("data").display().to_string(),
        ),
        (
            "TESSERA_STASH__TOKENS__SEAL_KEY_FILE",
            state_dir.join("seal.key").display().to_string(),
        ),
        (
            "TESSERA_STASH__TLS__DEV_PKI_DIR",
            pki.dir().display().to_string(),
        ),
        ("RUST_LOG", "warn".to_owned()),
    ];
    if let Some(url) = redis_url {
        env.push(("TESSERA_STASH__STORAGE__BACKEND", "redis".to_owned()));
        env.push(("TESSERA_STASH__STORAGE__REDIS_URL", url.to_owned()));
    }
    env
}

use tessera_proto::stash::v1 as pb;

/// A stash `Put` request.
pub fn put_request(
    namespace: &str,
    value: impl Into<Vec<u8>>,
    ttl_seconds: u32,
    single_use: bool,
    owner: &str,
) -> pb::PutRequest {
    pb::PutRequest {
        namespace: namespace.into(),
        value: value.into(),
        ttl_seconds,
        single_use,
        owner: owner.into(),
        token: String::new(),
    }
}
