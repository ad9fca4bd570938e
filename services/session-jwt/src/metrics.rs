//! What the session service reports on `/metrics`.

use std::sync::Arc;

use tessera_telemetry::metrics::{Counter, LabeledCounter, Registry};

/// The session service's metrics.
#[derive(Debug)]
pub struct SessionMetrics {
    /// The registry they render from.
    pub registry: Registry,
    /// Sessions started.
    pub issued: Arc<Counter>,
    /// Refreshes answered with a pair (including grace-window repeats).
    pub refreshed: Arc<Counter>,
    /// Revocations by scope.
    pub revoked: Arc<LabeledCounter>,
    /// Failed calls by error code (e.g. `refresh_token_reused`, `bad_signature`).
    pub failures: Arc<LabeledCounter>,
}

impl Default for SessionMetrics {
    fn default() -> Self {
        let registry = Registry::default();
        SessionMetrics {
            issued: registry.register(Counter::new(
                "tessera_session_issued_total",
                "Sessions started.",
            )),
            refreshed: registry.register(Counter::new(
                "tessera_session_refreshed_total",
                "Refreshes answered with a token pair.",
            )),
            revoked: registry.register(LabeledCounter::new(
                "tessera_session_revocations_total",
                "Revocations by scope.",
                "scope",
            )),
            failures: registry.register(LabeledCounter::new(
                "tessera_session_failures_total",
                "Failed calls by error code.",
                "reason",
            )),
            registry,
        }
    }
}
