//! The audit service in a test: an in-process harness. Behind the `test-util` feature.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::config::AuditConfig;
use crate::log::AuditLog;
use crate::server::{self, Listeners};
use tessera_clock::SystemClock;
use tokio::net::TcpListener;

use tessera_service::{Running, ShutdownSwitch};
use tessera_testkit::TestPki;

/// An audit service in this process, keeping its log in a given folder (so a test can
/// stop it and start it again on the same log and address).
#[derive(Debug)]
pub struct AuditHarness {
    /// Where gRPC is served.
    pub grpc_addr: SocketAddr,
    /// Where the admin port (API, dashboard) is served.
    pub admin_addr: SocketAddr,
    /// The log.
    pub log: AuditLog,
    /// The admin token.
    pub admin_token: String,
    running: Running,
}

impl AuditHarness {
    /// Starts on ephemeral ports with its log and secrets under `dir`.
    pub async fn start(pki: Arc<TestPki>, dir: &Path) -> anyhow::Result<Self> {
        Self::start_at(pki, dir, "127.0.0.1:0".parse()?).await
    }

    /// Starts with gRPC on `grpc_addr` (e.g. the address of an earlier run).
    pub async fn start_at(
        pki: Arc<TestPki>,
        dir: &Path,
        grpc_addr: SocketAddr,
    ) -> anyhow::Result<Self> {
        let mut config = AuditConfig::default();
        config.tls.dev_pki_dir = Some(pki.dir().to_owned());
        config.data_dir = dir.join("data");
        config.secrets_dir = dir.join("secrets");
        config.retention_days = 0;
        let listeners = Listeners {
            main: TcpListener::bind(grpc_addr).await?,
            admin: TcpListener::bind("127.0.0.1:0").await?,
        };
        let (switch, shutdown) = ShutdownSwitch::new();
        let started = server::start(config, SystemClock::shared(), listeners, shutdown).await?;
        Ok(AuditHarness {
            grpc_addr: started.addr,
            admin_addr: started.admin_addr,
            log: started.handle.log.clone(),
            admin_token: started.handle.admin_token.clone(),
            running: Running::spawn(started, switch),
        })
    }

    /// `https://<grpc address>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.grpc_addr)
    }

    /// Stops the service and waits until it no longer serves.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        Ok(self.running.shutdown().await?)
    }
}
