//! The session service in a test: an in-process harness on loopback port 0. Behind the
//! `test-util` feature.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::SessionConfig;
use crate::server::{self, Listeners};
use crate::Sessions;
use tessera_clock::{SharedClock, SystemClock};
use tessera_proto::session::v1::session_jwt_client::SessionJwtClient;
use tonic::transport::Channel;

use tessera_service::{Running, ShutdownSwitch};
use tessera_testkit::TestPki;

/// A session service in this process, using the stash at a given address; stopped on
/// drop.
#[derive(Debug)]
pub struct SessionHarness {
    /// Where gRPC is served.
    pub grpc_addr: SocketAddr,
    /// Where the admin port is served.
    pub admin_addr: SocketAddr,
    /// The service's state.
    pub sessions: Arc<Sessions>,
    pki: Arc<TestPki>,
    running: Running,
    _state_dir: tempfile::TempDir,
}

impl SessionHarness {
    /// Starts the service against the stash at `stash_addr` (datacenter `dc1`) with
    /// `clock`, changing the defaults with `adjust`.
    pub async fn start(
        pki: Arc<TestPki>,
        stash_addr: SocketAddr,
        clock: Option<SharedClock>,
        adjust: impl FnOnce(&mut SessionConfig),
    ) -> anyhow::Result<Self> {
        Self::start_on(Listeners::loopback().await?, pki, stash_addr, clock, adjust).await
    }

    /// [`SessionHarness::start`] on sockets bound ahead, so that peers can be told the
    /// address first.
    pub async fn start_on(
        listeners: Listeners,
        pki: Arc<TestPki>,
        stash_addr: SocketAddr,
        clock: Option<SharedClock>,
        adjust: impl FnOnce(&mut SessionConfig),
    ) -> anyhow::Result<Self> {
        let state_dir = tempfile::tempdir()?;
        let mut config = SessionConfig::default();
        config.tls.dev_pki_dir = Some(pki.dir().to_owned());
        config.stash.url = format!("https://{stash_addr}");
        config.keys_dir = state_dir.path().join("keys");
        config.secret_file = state_dir.path().join("secret.key");
        adjust(&mut config);
        config.validate()?;
        let (switch, shutdown) = ShutdownSwitch::new();
        let started = server::start(
            config,
            clock.unwrap_or_else(SystemClock::shared),
            listeners,
            shutdown,
        )
        .await?;
        let (grpc_addr, admin_addr, sessions) =
            (started.addr, started.admin_addr, started.handle.clone());
        Ok(SessionHarness {
            grpc_addr,
            admin_addr,
            sessions,
            pki,
            running: Running::spawn(started, switch),
            _state_dir: state_dir,
        })
    }

    /// A client presenting the certificate of `service`.
    pub async fn client(&self, service: &str) -> anyhow::Result<SessionJwtClient<Channel>> {
        let channel = self
            .pki
            .channel_to(&self.pki.files(service), self.grpc_addr, "session-jwt")
            .await?;
        Ok(SessionJwtClient::new(channel))
    }

    /// Stops the service and waits for it.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        Ok(self.running.shutdown().await?)
    }
}
