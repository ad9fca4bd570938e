//! The state every request handler shares, and the audit events handlers witness.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, HeaderMap};
use tessera_clock::{SharedClock, UnixMillis};
use tessera_verify::Jwks;

use crate::backends::Backends;
use crate::config::LoginConfig;
use crate::directory::Directory;
use crate::flow::FlowSigner;
use crate::metrics::LoginMetrics;
use crate::password::Passwords;
use crate::ratelimit::{FailureBackoff, RateLimiter};
use crate::signing::LoginKey;

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
    /// Wrong passwords per account and network.
    pub account_backoff: FailureBackoff,
    /// The proxies whose client-address header is believed.
    pub trusted_proxies: Vec<crate::client_ip::Block>,
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
        let http = backchannel_client(&config)?;
        Ok(AppState {
            issuer: config.issuer(),
            ip_limiter: RateLimiter::new(config.attempts_per_ip_per_minute, minute),
            account_backoff: FailureBackoff::new(config.account_failures_before_backoff),
            trusted_proxies: config.trusted_proxy_blocks()?,
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

    /// The session service's keys, which sites verify session tokens with (published
    /// apart from the ID-token keys, so neither kind can pass for the other).
    pub async fn session_keys(&self) -> Result<Jwks, crate::LoginError> {
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
        let jwks = self.backends.session_jwks().await?;
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

/// The client of back-channel logout deliveries: sites' `https://` addresses, trusting
/// the public web's roots and `backchannel_ca_file`'s; never following a redirect.
fn backchannel_client(config: &LoginConfig) -> Result<reqwest::Client, crate::LoginError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_millis(config.backchannel_timeout_ms))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = &config.backchannel_ca_file {
        let bad = |why: String| {
            crate::LoginError::Config(format!("backchannel_ca_file {}: {why}", path.display()))
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| bad(format!("not PEM certificates ({e})")))?;
        if roots.is_empty() {
            return Err(bad("holds no certificate".into()));
        }
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
    }
    builder
        .build()
        .map_err(|e| crate::LoginError::Config(format!("HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_ca_file(path: &std::path::Path) -> Result<reqwest::Client, crate::LoginError> {
        backchannel_client(&LoginConfig {
            backchannel_ca_file: Some(path.to_owned()),
            ..LoginConfig::default()
        })
    }

    #[test]
    fn a_backchannel_ca_file_that_is_missing_or_holds_no_certificate_stops_the_start() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("missing.pem");
        let err = with_ca_file(&missing).expect_err("a missing file");
        assert!(err.to_string().contains("backchannel_ca_file"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").expect("write");
        let err = with_ca_file(&empty).expect_err("no certificate");
        assert!(err.to_string().contains("holds no certificate"), "{err}");
        let ca = dir.path().join("ca.pem");
        let web_ca = tessera_mtls::DevCa::generate("A site's CA").expect("CA");
        std::fs::write(&ca, web_ca.cert_pem()).expect("write");
        assert!(with_ca_file(&ca).is_ok());
    }
}
