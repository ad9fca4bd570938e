//! The login service's configuration: a TOML file, then `TESSERA_LOGIN__<SECTION>__<KEY>`
//! environment overrides, validated at start-up.
//!
//! The defaults are production-safe: there is no default public URL, and plain-HTTP
//! development mode must be switched on explicitly *and* only works on a loopback URL, so
//! a production configuration cannot fall into it by accident.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tessera_mtls::{ServiceIdentity, TlsSettings};
use tessera_telemetry::LogFormat;

use tessera_audit_client::AuditSettings;

use crate::LoginError;

/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "TESSERA_LOGIN__";

/// Everything `tessera-login serve` is configured by.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// The public HTTP address.
    pub listen: SocketAddr,
    /// The admin HTTP address (health, metrics).
    pub admin_listen: SocketAddr,
    /// `human` or `json`.
    pub log_format: LogFormat,
    /// The URL browsers and sites reach the login service at; the OpenID issuer.
    /// Must be `https://` unless `dev_insecure_http` is set.
    pub public_url: String,
    /// Serve a loopback `http://` public URL for local development. Refused for any
    /// other host. Browsers treat `localhost` as secure, so `__Host-` cookies still work.
    pub dev_insecure_http: bool,
    /// The user directory and site registry: `sqlite://<path>` or `postgres://…`.
    pub database_url: String,
    /// Where the flow-signing and ID-token keys live; replicas share it.
    pub secrets_dir: PathBuf,
    /// The audience of central (login-domain) sessions.
    pub central_audience: String,
    /// How long an authorization code can be redeemed, seconds.
    pub code_ttl_seconds: u64,
    /// How long a login form stays valid, seconds.
    pub form_ttl_seconds: u64,
    /// ID token lifetime, seconds.
    pub id_token_seconds: u64,
    /// Sign-in attempts (form posts) allowed per client IP per minute.
    pub attempts_per_ip_per_minute: u32,
    /// Wrong passwords for one account from one network (IPv4 address, IPv6 /64) before
    /// each further attempt from there waits, twice as long each time (up to 15
    /// minutes). Keyed by account *and* network, so nobody elsewhere can lock a person
    /// out.
    pub account_failures_before_backoff: u32,
    /// Wrong second-factor codes for one account before it waits, twice as long each
    /// time (up to 15 minutes); counted in the directory, so across every replica.
    pub totp_failures_before_backoff: u32,
    /// A header carrying the client IP chain, set by a reverse proxy (e.g.
    /// `x-forwarded-for`). Believed only from `trusted_proxies`. Unset: the peer address.
    pub client_ip_header: Option<String>,
    /// The reverse proxies whose `client_ip_header` is believed: addresses or blocks
    /// (`10.0.0.0/8`, `2001:db8::/32`).
    pub trusted_proxies: Vec<String>,
    /// How long a back-channel logout POST to one site may take, milliseconds.
    pub backchannel_timeout_ms: u64,
    /// CA certificates (PEM) trusted for back-channel logout deliveries besides the
    /// public web's roots, for sites whose certificates a private CA issued.
    pub backchannel_ca_file: Option<PathBuf>,
    /// The session service.
    pub session_jwt: Upstream,
    /// The token stash.
    pub stash: Upstream,
    /// The audit service (events are recorded only when its `url` is set).
    pub audit: AuditSettings,
    /// Certificates for the internal mutual TLS calls.
    pub tls: TlsSettings,
}

/// An internal gRPC service reached over mutual TLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// e.g. `https://127.0.0.1:7402`.
    pub url: String,
    /// For the stash: its datacenter id (derived tokens must name it).
    #[serde(default = "default_datacenter")]
    pub datacenter: String,
}

fn default_datacenter() -> String {
    "dc1".into()
}

/// The identity of the login service.
pub fn login_identity() -> ServiceIdentity {
    ServiceIdentity::login()
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7400)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 7480)),
            log_format: LogFormat::default(),
            public_url: String::new(),
            dev_insecure_http: false,
            database_url: "sqlite://.tessera/login/directory.db".into(),
            secrets_dir: PathBuf::from(".tessera/secrets/login"),
            central_audience: "tessera-login".into(),
            code_ttl_seconds: 60,
            form_ttl_seconds: 600,
            id_token_seconds: 300,
            attempts_per_ip_per_minute: 60,
            account_failures_before_backoff: 5,
            totp_failures_before_backoff: 5,
            client_ip_header: None,
            trusted_proxies: Vec::new(),
            backchannel_timeout_ms: 2000,
            backchannel_ca_file: None,
            session_jwt: Upstream {
                url: "https://127.0.0.1:7402".into(),
                datacenter: default_datacenter(),
            },
            stash: Upstream {
                url: "https://127.0.0.1:7401".into(),
                datacenter: default_datacenter(),
            },
            audit: AuditSettings::default(),
            tls: TlsSettings::default(),
        }
    }
}

impl LoginConfig {
    /// Reads `path` (if given), applies `TESSERA_LOGIN__*` overrides, validates.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, LoginError> {
        let config: LoginConfig = tessera_config::load(path, env, ENV_PREFIX)
            .map_err(|e| LoginError::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads the configuration without validating it: for the administrative commands,
    /// which need only the database.
    pub fn load_unvalidated(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, LoginError> {
        tessera_config::load(path, env, ENV_PREFIX).map_err(|e| LoginError::Config(e.to_string()))
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), LoginError> {
        let bad = |msg: String| Err(LoginError::Config(msg));
        let url = match url::Url::parse(&self.public_url) {
            Ok(url) => url,
            Err(_) if self.public_url.is_empty() => {
                return bad("public_url is not set: give the URL browsers reach the login service at, e.g. https://login.example.org".into())
            }
            Err(e) => return bad(format!("public_url {:?}: {e}", self.public_url)),
        };
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return bad(format!(
                "public_url {:?} must be an origin only (scheme, host, port), with no path",
                self.public_url
            ));
        }
        match (url.scheme(), self.dev_insecure_http) {
            ("https", _) => {}
            ("http", true) if is_loopback(&url) => {}
            ("http", true) => {
                return bad(format!(
                    "dev_insecure_http only works with a loopback public_url (localhost, 127.0.0.1, [::1]), not {:?}; production needs https://",
                    self.public_url
                ))
            }
            ("http", false) => {
                return bad(format!(
                    "public_url {:?} is plain http: use https://, or for local development on localhost set dev_insecure_http = true",
                    self.public_url
                ))
            }
            (other, _) => return bad(format!("public_url scheme {other:?} is not https")),
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return bad(
                "database_url must start with sqlite: or postgres:// (e.g. sqlite://.tessera/login/directory.db)"
                    .into(),
            );
        }
        if !(10..=600).contains(&self.code_ttl_seconds) {
            return bad("code_ttl_seconds must be between 10 and 600".into());
        }
        if !(60..=3600).contains(&self.form_ttl_seconds) {
            return bad("form_ttl_seconds must be between 60 and 3600".into());
        }
        if self.attempts_per_ip_per_minute == 0
            || self.account_failures_before_backoff == 0
            || self.totp_failures_before_backoff == 0
        {
            return bad(
                "attempts_per_ip_per_minute and *_failures_before_backoff must be at least 1"
                    .into(),
            );
        }
        self.trusted_proxy_blocks()?;
        if self.client_ip_header.is_some() && self.trusted_proxies.is_empty() {
            return bad("client_ip_header is set but trusted_proxies is empty: name the proxies whose header is believed (anyone else could write it)".into());
        }
        if self.dev_insecure_http && !self.listen.ip().is_loopback() {
            return bad(format!(
                "dev_insecure_http serves plain HTTP, so listen must be a loopback address, not {}",
                self.listen
            ));
        }
        for (key, upstream) in [("session_jwt", &self.session_jwt), ("stash", &self.stash)] {
            if !upstream.url.starts_with("https://") {
                return bad(format!(
                    "{key}.url {:?} must start with https:// (internal calls use mutual TLS)",
                    upstream.url
                ));
            }
        }
        Ok(())
    }

    /// `trusted_proxies`, parsed.
    pub fn trusted_proxy_blocks(&self) -> Result<Vec<crate::client_ip::Block>, LoginError> {
        self.trusted_proxies
            .iter()
            .map(|text| crate::client_ip::Block::try_from(text.as_str()))
            .collect()
    }

    /// This configuration with its secrets hidden, for printing.
    pub fn redacted(&self) -> Self {
        LoginConfig {
            database_url: tessera_config::redact_url(&self.database_url),
            ..self.clone()
        }
    }

    /// The issuer: the public URL without its trailing slash.
    pub fn issuer(&self) -> String {
        self.public_url.trim_end_matches('/').to_owned()
    }

    /// How long a code lives.
    pub fn code_ttl(&self) -> Duration {
        Duration::from_secs(self.code_ttl_seconds)
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(public_url: &str, dev: bool) -> Result<(), LoginError> {
        LoginConfig {
            public_url: public_url.into(),
            dev_insecure_http: dev,
            ..LoginConfig::default()
        }
        .validate()
    }

    #[test]
    fn there_is_no_default_public_url_so_production_must_name_one() {
        let err = with("", false).expect_err("no default");
        assert!(err.to_string().contains("public_url is not set"), "{err}");
        assert!(with("https://login.example.org", false).is_ok());
    }

    #[test]
    fn plain_http_needs_dev_mode_and_dev_mode_needs_a_loopback_url() {
        let err = with("http://localhost:7400", false).expect_err("http without dev mode");
        assert!(err.to_string().contains("dev_insecure_http"), "{err}");
        assert!(with("http://localhost:7400", true).is_ok());
        assert!(with("http://127.0.0.1:7400", true).is_ok());
        let err = with("http://login.example.org", true).expect_err("dev mode off loopback");
        assert!(
            err.to_string().contains("only works with a loopback"),
            "{err}"
        );
        let err = with("https://login.example.org/sso", false).expect_err("a path");
        assert!(err.to_string().contains("origin only"), "{err}");
    }

    #[test]
    fn development_mode_must_listen_on_loopback_and_printing_hides_passwords() {
        let exposed = LoginConfig {
            public_url: "http://localhost:7400".into(),
            dev_insecure_http: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 7400)),
            ..LoginConfig::default()
        };
        let err = exposed
            .validate()
            .expect_err("plain HTTP on every interface");
        assert!(
            err.to_string().contains("listen must be a loopback"),
            "{err}"
        );
        let config = LoginConfig {
            database_url: "postgres://tessera:hunter2@db.example/login".into(),
            ..LoginConfig::default()
        };
        let printed = format!("{:?}", config.redacted());
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("postgres://tessera:***@db.example/login"));
    }

    #[test]
    fn a_forwarding_header_needs_the_proxies_it_is_believed_from() {
        let config = LoginConfig {
            public_url: "https://login.example.org".into(),
            client_ip_header: Some("x-forwarded-for".into()),
            ..LoginConfig::default()
        };
        let err = config.validate().expect_err("no trusted proxies");
        assert!(err.to_string().contains("trusted_proxies"), "{err}");
    }

    #[test]
    fn internal_calls_must_use_mutual_tls() {
        let mut config = LoginConfig {
            public_url: "https://login.example.org".into(),
            ..LoginConfig::default()
        };
        config.stash.url = "http://127.0.0.1:7401".into();
        let err = config.validate().expect_err("plain stash");
        assert!(err.to_string().contains("stash.url"), "{err}");
    }
}
