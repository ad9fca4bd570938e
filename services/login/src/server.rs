//! Starting and running the login service.

use std::future::Future;
use std::sync::Arc;

use tessera_clock::SharedClock;
use tessera_service::{Scaffold, Started};

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

pub use tessera_service::Listeners;

/// A login service ready to serve; its handle is the state, for in-process callers and
/// tests.
pub type StartedLogin = Started<Shared>;

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
    // Sign-outs made in a peer datacenter reach the sites of this one's site sessions.
    tokio::spawn(crate::peer_logout::follow(state.clone()));
    let scaffold = Scaffold::new(listeners, Arc::new(metrics.registry.clone()))?;
    let app = http::router(state.clone());
    Ok(scaffold.http(state, app, shutdown))
}
