//! A tiny wiki that signs people in through Tessera with the standard authorization code
//! flow (PKCE S256, `state`, `nonce`), verifies its session JWT locally with
//! `tessera-verify` on every page, refreshes it past its soft expiry, and honours
//! back-channel logout. It is the reference integration: what any site does.

mod flow;
mod pages;
mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_telemetry::metrics::{LabeledCounter, Registry};
use tessera_telemetry::red::HttpRed;

use tessera_clock::SharedClock;
use tessera_verify::{Jwks, KeySource, SiteVerifier, Verifier, VerifierConfig};
use tokio::net::TcpListener;

/// Why the site cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A setting is wrong.
    #[error("configuration error: {0}")]
    Config(String),
    /// Serving failed.
    #[error("server: {0}")]
    Serve(String),
}

impl DemoError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            DemoError::Config(_) => "config",
            DemoError::Serve(_) => "serve",
        }
    }
}

/// How a demo site is set up.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Its client id, also its cookie scope and title (e.g. `wiki-a`).
    pub client_id: String,
    /// The client secret `tessera-login site add` printed.
    pub client_secret: String,
    /// Its own origin as browsers see it, e.g. `http://localhost:7501`.
    pub public_url: String,
    /// The login service's public URL (the OpenID issuer), for browser redirects.
    pub login_url: String,
    /// Where the site's back end reaches the login service (defaults to `login_url`).
    pub login_api_url: String,
}

impl DemoConfig {
    fn validate(&self) -> Result<(), DemoError> {
        for (key, value) in [
            ("public_url", &self.public_url),
            ("login_url", &self.login_url),
            ("login_api_url", &self.login_api_url),
        ] {
            url::Url::parse(value)
                .map_err(|e| DemoError::Config(format!("{key} {value:?}: {e}")))?;
        }
        if self.client_secret.is_empty() {
            return Err(DemoError::Config(
                "client secret is empty: register the site with `tessera-login site add` and pass its secret".into(),
            ));
        }
        Ok(())
    }

    fn origin(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }

    fn issuer(&self) -> &str {
        self.login_url.trim_end_matches('/')
    }
}

/// A key set published over HTTP: the session keys (for the site's verifier) or the
/// login's ID-token keys. Remembers the last set fetched.
#[derive(Debug)]
struct HttpKeys {
    http: reqwest::Client,
    url: String,
    /// The last fetched set, and when. A std mutex: replaced or cloned, never held
    /// across I/O.
    last: Mutex<(Option<tessera_clock::UnixMillis>, Jwks)>,
}

impl HttpKeys {
    fn new(http: &reqwest::Client, url: String) -> Self {
        HttpKeys {
            http: http.clone(),
            url,
            last: Mutex::new((None, Jwks::default())),
        }
    }

    async fn get(&self) -> Result<Jwks, String> {
        self.http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .error_for_status()
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())
    }
}

impl KeySource for HttpKeys {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Jwks, String>> + Send + '_>> {
        Box::pin(self.get())
    }
}

/// The site's routes, as its request metrics name them.
const ROUTES: &[&str] = &[
    "/",
    "/signin",
    "/callback",
    "/signout",
    "/backchannel-logout",
];

/// What the site reports on `/metrics` (its admin port).
#[derive(Debug, Clone)]
pub struct SiteMetrics {
    /// The registry they render from.
    pub registry: Registry,
    /// Rate, errors and duration of the site's routes.
    pub http: HttpRed,
    /// Session tokens the site's verifier refused, by error code.
    pub jwt_rejections: Arc<LabeledCounter>,
}

impl SiteMetrics {
    fn new() -> Self {
        let registry = Registry::default();
        SiteMetrics {
            http: HttpRed::register(&registry, ROUTES),
            jwt_rejections: registry.register(LabeledCounter::new(
                "tessera_site_jwt_rejections_total",
                "Session tokens the site refused, by error code (soft_expired ones are refreshed, not refused).",
                "code",
            )),
            registry,
        }
    }
}

/// What request handlers share.
#[derive(Debug)]
pub(crate) struct Site {
    config: DemoConfig,
    verifier: SiteVerifier,
    id_keys: HttpKeys,
    http: reqwest::Client,
    clock: SharedClock,
    metrics: SiteMetrics,
}

impl Site {
    /// The login's keys for ID and logout tokens, fetched when they lack the key `token`
    /// names, at most once per ten seconds (a flood of forged `kid`s is not a flood of
    /// fetches).
    async fn jwks_for(&self, token: &str) -> Jwks {
        let now = self.clock.now();
        let kid = header_kid(token);
        {
            let mut last = self.id_keys.last.lock().unwrap_or_else(|e| e.into_inner());
            let known = kid
                .as_deref()
                .is_some_and(|kid| last.1.keys.iter().any(|k| k.kid == kid));
            let recent = last
                .0
                .is_some_and(|at| now.saturating_since(at) < Duration::from_secs(10));
            if known || recent {
                return last.1.clone();
            }
            last.0 = Some(now);
        }
        if let Ok(jwks) = self.id_keys.get().await {
            self.id_keys
                .last
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .1 = jwks;
        }
        self.id_keys
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }
}

fn header_kid(token: &str) -> Option<String> {
    use base64::Engine as _;
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("kid")?.as_str().map(str::to_owned)
}

/// A demo site ready to serve.
pub struct StartedSite {
    /// Where it serves.
    pub addr: SocketAddr,
    /// Its metrics, for an admin port.
    pub metrics: SiteMetrics,
    serve: Pin<Box<dyn Future<Output = Result<(), DemoError>> + Send>>,
}

impl std::fmt::Debug for StartedSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedSite")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl StartedSite {
    /// Serves until the shutdown future resolves.
    pub async fn serve(self) -> Result<(), DemoError> {
        self.serve.await
    }
}

/// Prepares the site on `listener`.
pub fn start(
    config: DemoConfig,
    listener: TcpListener,
    clock: SharedClock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<StartedSite, DemoError> {
    config.validate()?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| DemoError::Config(format!("HTTP client: {e}")))?;
    let api = config.login_api_url.trim_end_matches('/');
    let session_keys = Arc::new(HttpKeys::new(&http, format!("{api}/session-keys.json")));
    let id_keys = HttpKeys::new(&http, format!("{api}/jwks.json"));
    let verifier = SiteVerifier::new(
        Arc::new(Verifier::new(VerifierConfig::new(config.client_id.clone()))),
        session_keys,
        clock.clone(),
        Duration::from_secs(10),
    );
    let addr = listener
        .local_addr()
        .map_err(|e| DemoError::Serve(e.to_string()))?;
    let metrics = SiteMetrics::new();
    let site = Arc::new(Site {
        config,
        verifier,
        id_keys,
        http,
        clock,
        metrics: metrics.clone(),
    });
    let app = routes::router(site);
    let serve = async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| DemoError::Serve(e.to_string()))
    };
    Ok(StartedSite {
        addr,
        metrics,
        serve: Box::pin(serve),
    })
}
