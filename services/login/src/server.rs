//! Starting and running the login service.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tessera_clock::SharedClock;
use tessera_telemetry::admin::{self, MetricsSource, Readiness};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backends::Backends;
use crate::config::{login_identity, LoginConfig};
use crate::directory::Directory;
use crate::flow::FlowSigner;
use crate::http;
use crate::metrics::LoginMetrics;
use crate::password::Passwords;
use crate::signing::{flow_key, LoginKey};
use crate::state::{AppState, Shared};
use crate::LoginError;

/// The two sockets the service serves on, bound by the caller.
#[derive(Debug)]
pub struct Listeners {
    /// Public HTTP.
    pub http: TcpListener,
    /// Admin HTTP.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the addresses in `config`.
    pub async fn bind(config: &LoginConfig) -> Result<Self, LoginError> {
        let bind = |addr: SocketAddr, key: &'static str| async move {
            TcpListener::bind(addr).await.map_err(|e| {
                LoginError::Config(format!(
                    "{key}: cannot listen on {addr}: {e}; choose a free address"
                ))
            })
        };
        Ok(Listeners {
            http: bind(config.listen, "listen").await?,
            admin: bind(config.admin_listen, "admin_listen").await?,
        })
    }
}

/// A login service ready to serve.
pub struct StartedLogin {
    /// Where the public surface is served.
    pub http_addr: SocketAddr,
    /// Where the admin port is served.
    pub admin_addr: SocketAddr,
    /// The state, for in-process callers and tests.
    pub state: Shared,
    serve: Pin<Box<dyn Future<Output = Result<(), LoginError>> + Send>>,
}

impl std::fmt::Debug for StartedLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedLogin")
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

impl StartedLogin {
    /// Serves until the shutdown future given to [`start`] resolves.
    pub async fn serve(self) -> Result<(), LoginError> {
        self.serve.await
    }
}

struct Metrics(Arc<LoginMetrics>);

impl MetricsSource for Metrics {
    fn render(&self) -> Pin<Box<dyn Future<Output = String> + Send + '_>> {
        Box::pin(async move { self.0.registry.render() })
    }
}

/// Opens the directory, loads keys, and prepares the server.
pub async fn start(
    config: LoginConfig,
    clock: SharedClock,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<StartedLogin, LoginError> {
    config.validate()?;
    if config.dev_insecure_http {
        tracing::warn!(public_url = %config.public_url, "DEVELOPMENT MODE: serving plain HTTP on a loopback address; never use this configuration in production");
    }
    let tls = config
        .tls
        .resolve(&login_identity())
        .map_err(|e| LoginError::Config(format!("tls: {e}")))?;
    let backends = Backends::connect(&config, &tls)?;
    let directory = Directory::open(&config.database_url).await?;
    let passwords = tokio::task::spawn_blocking(Passwords::new)
        .await
        .map_err(|e| LoginError::Crypto(e.to_string()))??;
    let flow = FlowSigner::new(flow_key(&config.secrets_dir)?);
    let key = LoginKey::load_or_create(&config.secrets_dir)?;
    let metrics = Arc::new(LoginMetrics::default());
    let audit = config
        .audit
        .start(
            "login",
            &config.stash.datacenter,
            &tls,
            clock.clone(),
            &metrics.registry,
        )
        .map_err(|e| LoginError::Config(e.to_string()))?;
    let state: Shared = Arc::new(AppState::new(
        config,
        directory,
        passwords,
        flow,
        key,
        backends,
        clock,
        metrics.clone(),
        audit,
    )?);
    let http_addr = listeners
        .http
        .local_addr()
        .map_err(|e| LoginError::Config(e.to_string()))?;
    let admin_addr = listeners
        .admin
        .local_addr()
        .map_err(|e| LoginError::Config(e.to_string()))?;
    let readiness = Readiness::default();
    let app = http::router(state.clone());
    let serve = async move {
        let (stop, stopped) = watch::channel(false);
        let admin_stopped = stopped.clone();
        let admin = tokio::spawn(admin::serve(
            listeners.admin,
            readiness.clone(),
            Arc::new(Metrics(metrics)),
            async move {
                let mut stopped = admin_stopped;
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        ));
        readiness.set(true);
        let public = axum::serve(
            listeners.http,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            readiness.set(false);
            let _ = stop.send(true);
        })
        .await;
        let _ = admin.await;
        public.map_err(|e| LoginError::Config(format!("HTTP server: {e}")))
    };
    Ok(StartedLogin {
        http_addr,
        admin_addr,
        state,
        serve: Box::pin(serve),
    })
}
