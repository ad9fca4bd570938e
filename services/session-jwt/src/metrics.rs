//! What the session service reports on `/metrics`.

use std::sync::Arc;

use tessera_telemetry::metrics::{Counter, Histogram, LabeledCounter, Registry};

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
    /// Time from a revocation made in a peer datacenter to taken in here.
    pub revocation_lag: Arc<Histogram>,
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
            revocation_lag: registry.register(Histogram::new(
                "tessera_session_revocation_lag_seconds",
                "Time from a revocation made in a peer datacenter to taken in here (by the two datacenters' clocks).",
                &[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0],
            )),
            registry,
        }
    }
}
