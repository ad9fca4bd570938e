//! What the login service reports on `/metrics`.

use std::sync::Arc;

use tessera_telemetry::metrics::{Counter, Histogram, LabeledCounter, Registry};
use tessera_telemetry::red::HttpRed;

/// The routes of the public surface, as its request metrics name them.
pub const PUBLIC_ROUTES: &[&str] = &[
    "/",
    "/.well-known/openid-configuration",
    "/jwks.json",
    "/session-keys.json",
    "/authorize",
    "/login",
    "/login/totp",
    "/token",
    "/userinfo",
    "/revoke",
    "/logout",
];

/// The login service's metrics.
#[derive(Debug)]
pub struct LoginMetrics {
    /// The registry they render from.
    pub registry: Registry,
    /// HTTP requests by whether they carried a valid session (`anon`/`authenticated`).
    pub requests: Arc<LabeledCounter>,
    /// Sign-in attempts by outcome.
    pub logins: Arc<LabeledCounter>,
    /// Authorization codes issued.
    pub codes_issued: Arc<Counter>,
    /// Code redemptions refused, by reason.
    pub code_failures: Arc<LabeledCounter>,
    /// Time from a code minted to its redemption.
    pub code_redeem_seconds: Arc<Histogram>,
    /// Requests refused by a rate limit, by limit.
    pub rate_limited: Arc<LabeledCounter>,
    /// Back-channel logout deliveries, by outcome.
    pub backchannel: Arc<LabeledCounter>,
    /// The sign-in funnel: `form_shown`, `posted`, `succeeded`, `redeemed`.
    pub funnel: Arc<LabeledCounter>,
    /// Rate, errors and duration of the public routes.
    pub http: HttpRed,
}

impl Default for LoginMetrics {
    fn default() -> Self {
        let registry = Registry::default();
        LoginMetrics {
            requests: registry.register(LabeledCounter::new(
                "tessera_login_requests_total",
                "Login-domain page and OAuth requests, by session state.",
                "visitor",
            )),
            logins: registry.register(LabeledCounter::new(
                "tessera_login_attempts_total",
                "Sign-in attempts by outcome.",
                "outcome",
            )),
            codes_issued: registry.register(Counter::new(
                "tessera_login_codes_issued_total",
                "Authorization codes issued.",
            )),
            code_failures: registry.register(LabeledCounter::new(
                "tessera_login_code_redemption_failures_total",
                "Authorization code redemptions refused, by reason.",
                "reason",
            )),
            code_redeem_seconds: registry.register(Histogram::new(
                "tessera_login_code_mint_to_redeem_seconds",
                "Time from an authorization code minted to its redemption.",
                &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
            )),
            rate_limited: registry.register(LabeledCounter::new(
                "tessera_login_rate_limited_total",
                "Sign-in attempts refused by a rate limit.",
                "limit",
            )),
            backchannel: registry.register(LabeledCounter::new(
                "tessera_login_backchannel_logout_total",
                "Back-channel logout deliveries by outcome.",
                "outcome",
            )),
            funnel: registry.register(LabeledCounter::new(
                "tessera_login_funnel_total",
                "Sign-ins by how far they got: form_shown, posted, succeeded (a code issued after a password or TOTP), redeemed (the site exchanged the code).",
                "step",
            )),
            http: HttpRed::register(&registry, PUBLIC_ROUTES),
            registry,
        }
    }
}
