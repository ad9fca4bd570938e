//! The public HTTP surface: OpenID Connect endpoints and the pages people see.

mod authorize;
pub(crate) mod codes;
mod discovery;
mod logout;
pub mod pages;
mod session_cookie;
mod token;
mod userinfo;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tessera_clock::{SharedClock, UnixMillis};
use tessera_verify::Jwks;

use crate::backends::Backends;
use crate::config::LoginConfig;
use crate::directory::Directory;
use crate::flow::FlowSigner;
use crate::metrics::LoginMetrics;
use crate::password::Passwords;
use crate::ratelimit::RateLimiter;
use crate::signing::LoginKey;

pub use codes::{CodeGrant, SiteSession};

/// Everything a request handler needs. Shared as `Arc<AppState>`.
#[derive(Debug)]
pub struct AppState {
    /// The configuration.
    pub config: LoginConfig,
    /// The OpenID issuer (public URL, no trailing slash).
    pub issuer: String,
    /// Users and sites.
    pub directory: Directory,
    /// argon2id.
    pub passwords: Passwords,
    /// Signed login-form state.
    pub flow: FlowSigner,
    /// ID-token and logout-token key.
    pub key: LoginKey,
    /// Session service and stash.
    pub backends: Backends,
    /// Time.
    pub clock: SharedClock,
    /// Metrics.
    pub metrics: Arc<LoginMetrics>,
    /// Attempts per client IP.
    pub ip_limiter: RateLimiter,
    /// Attempts per account.
    pub account_limiter: RateLimiter,
    /// For back-channel logout deliveries.
    pub http: reqwest::Client,
    /// Security events for the audit log (never waits on it).
    pub audit: tessera_audit_client::AuditSink,
    /// The published keys, refetched from the session service at most every 10 s. A std
    /// mutex: held to read or replace the cached value, never across the fetch.
    jwks_cache: Mutex<Option<(UnixMillis, Jwks)>>,
}

/// The shared state.
pub type Shared = Arc<AppState>;

impl AppState {
    /// Assembles the state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: LoginConfig,
        directory: Directory,
        passwords: Passwords,
        flow: FlowSigner,
        key: LoginKey,
        backends: Backends,
        clock: SharedClock,
        metrics: Arc<LoginMetrics>,
        audit: tessera_audit_client::AuditSink,
    ) -> Result<Self, crate::LoginError> {
        let minute = Duration::from_secs(60);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.backchannel_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| crate::LoginError::Config(format!("HTTP client: {e}")))?;
        Ok(AppState {
            issuer: config.issuer(),
            ip_limiter: RateLimiter::new(config.attempts_per_ip_per_minute, minute),
            account_limiter: RateLimiter::new(config.attempts_per_account_per_minute, minute),
            config,
            directory,
            passwords,
            flow,
            key,
            backends,
            clock,
            metrics,
            http,
            audit,
            jwks_cache: Mutex::new(None),
        })
    }

    /// Whether the development banner shows.
    pub fn dev(&self) -> bool {
        self.config.dev_insecure_http
    }

    /// The JWKS sites verify with: the session keys and the login key.
    pub async fn jwks(&self) -> Result<Jwks, crate::LoginError> {
        let now = self.clock.now();
        if let Some((at, jwks)) = self
            .jwks_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            if now.saturating_since(*at) < Duration::from_secs(10) {
                return Ok(jwks.clone());
            }
        }
        let mut jwks = self.backends.session_jwks().await?;
        jwks.keys.push(self.key.jwk());
        *self.jwks_cache.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, jwks.clone()));
        Ok(jwks)
    }
}

/// One audit event, as the login service witnessed it.
#[derive(Debug, Default)]
pub struct Witnessed<'a> {
    pub kind: &'a str,
    pub failure: bool,
    pub reason: &'a str,
    pub user_id: &'a str,
    pub user_name: &'a str,
    pub site: &'a str,
    pub client_ip: &'a str,
    pub headers: Option<&'a HeaderMap>,
}

impl AppState {
    /// Records `event` for the audit log (never waits).
    pub fn witness(&self, event: Witnessed<'_>) {
        let user_agent = event
            .headers
            .and_then(|h| h.get(header::USER_AGENT))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        self.audit.record(tessera_proto::audit::v1::Event {
            kind: event.kind.to_owned(),
            outcome: if event.failure { "failure" } else { "success" }.to_owned(),
            reason: event.reason.to_owned(),
            user_id: event.user_id.to_owned(),
            user_name: event.user_name.chars().take(64).collect(),
            site: event.site.to_owned(),
            client_ip: event.client_ip.to_owned(),
            user_agent_class: user_agent_class(user_agent).to_owned(),
            ..Default::default()
        });
    }
}

/// `browser`, `bot`, `app` or `unknown`, from a `User-Agent`.
pub fn user_agent_class(user_agent: &str) -> &'static str {
    let lower = user_agent.to_ascii_lowercase();
    if lower.is_empty() {
        "unknown"
    } else if [
        "bot", "crawl", "spider", "curl", "wget", "python", "scrapy", "headless",
    ]
    .iter()
    .any(|marker| lower.contains(marker))
    {
        "bot"
    } else if lower.starts_with("mozilla/") {
        "browser"
    } else {
        "app"
    }
}

/// The router of the public surface.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(discovery::home))
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/jwks.json", get(discovery::jwks))
        .route("/authorize", get(authorize::authorize))
        .route("/login", post(authorize::password))
        .route("/login/totp", post(authorize::totp))
        .route("/token", post(token::token))
        .route(
            "/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route("/revoke", post(userinfo::revoke))
        .route("/logout", get(logout::logout).post(logout::confirm))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(traced))
        .with_state(state)
}

/// Every request runs in a span joined to the caller's trace (W3C `traceparent`), and the
/// gRPC calls it makes carry that trace on, so one sign-in is one trace.
async fn traced(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument as _;
    let span = tessera_telemetry::trace_context::http_server_span(
        request.method(),
        request.uri().path(),
        request.headers(),
    );
    next.run(request).instrument(span).await
}

async fn not_found(axum::extract::State(state): axum::extract::State<Shared>) -> Response {
    pages::page(
        StatusCode::NOT_FOUND,
        "Not found",
        &pages::problem(
            "Page not found",
            "There is nothing at this address. Sign in from the site you were using.",
            None,
        ),
        state.dev(),
    )
}

/// The client IP a request counts against: the peer, or the last entry of the trusted
/// proxy header when one is configured.
pub fn client_ip(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> String {
    if let Some(name) = &state.config.client_ip_header {
        if let Some(value) = headers.get(name.as_str()).and_then(|v| v.to_str().ok()) {
            if let Some(last) = value
                .rsplit(',')
                .next()
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                return last.chars().take(64).collect();
            }
        }
    }
    peer.ip().to_string()
}

/// `429` with `Retry-After`, as a page.
pub fn too_many(state: &AppState, retry_after: Duration, who: &str) -> Response {
    let seconds = retry_after.as_secs().max(1);
    let mut response = pages::page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        &pages::problem(
            "Too many sign-in attempts",
            &format!("There were too many sign-in attempts {who}. Wait {seconds} seconds, then try again."),
            None,
        ),
        state.dev(),
    );
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// A `303 See Other` to `location`, setting `cookies`.
pub fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    pages::no_store(headers);
    response
}

/// A page for a backend failure: the person can only try again later.
pub fn unavailable(state: &AppState, err: &crate::LoginError) -> Response {
    tracing::error!(error = %err, code = err.code(), "request failed");
    pages::page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        &pages::problem(
            "Sign-in is temporarily unavailable",
            "Something on our side is not answering. Nothing was lost; wait a moment and try again.",
            None,
        ),
        state.dev(),
    )
}
