use std::net::SocketAddr;
use std::sync::Arc;

use tessera_clock::{SharedClock, SystemClock};
use tessera_proto::session::v1::session_jwt_client::SessionJwtClient;
use tessera_session_jwt::config::SessionConfig;
use tessera_session_jwt::server::{self, Listeners};
use tessera_session_jwt::Sessions;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::TestPki;

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
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), tessera_session_jwt::SessionError>>>,
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
        let state_dir = tempfile::tempdir()?;
        let mut config = SessionConfig::default();
        config.tls.dev_pki_dir = Some(pki.dir().to_owned());
        config.stash.url = format!("https://{stash_addr}");
        config.keys_dir = state_dir.path().join("keys");
        config.secret_file = state_dir.path().join("secret.key");
        adjust(&mut config);
        config.validate()?;
        let listeners = Listeners {
            grpc: TcpListener::bind("127.0.0.1:0").await?,
            admin: TcpListener::bind("127.0.0.1:0").await?,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let started = server::start(
            config,
            clock.unwrap_or_else(SystemClock::shared),
            listeners,
            async move {
                let _ = stopped.await;
            },
        )
        .await?;
        let (grpc_addr, admin_addr, sessions) = (
            started.grpc_addr,
            started.admin_addr,
            started.sessions.clone(),
        );
        let task = tokio::spawn(started.serve());
        Ok(SessionHarness {
            grpc_addr,
            admin_addr,
            sessions,
            pki,
            stop: Some(stop),
            task: Some(task),
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
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

impl Drop for SessionHarness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
