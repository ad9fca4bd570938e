//! What the audit service reports on `/metrics`.

use std::sync::Arc;

use tessera_telemetry::metrics::{Counter, Registry};

/// The audit service's metrics.
#[derive(Debug)]
pub struct AuditMetrics {
    /// The registry they render from.
    pub registry: Registry,
    /// Events stored.
    pub stored: Arc<Counter>,
    /// Batches refused as invalid.
    pub refused: Arc<Counter>,
    /// Events refused one by one (their batch's other events were stored).
    pub events_refused: Arc<Counter>,
}

impl Default for AuditMetrics {
    fn default() -> Self {
        let registry = Registry::default();
        AuditMetrics {
            stored: registry.register(Counter::new(
                "tessera_audit_events_stored_total",
                "Events stored durably.",
            )),
            refused: registry.register(Counter::new(
                "tessera_audit_batches_refused_total",
                "Batches refused as invalid.",
            )),
            events_refused: registry.register(Counter::new(
                "tessera_audit_events_refused_total",
                "Events refused as invalid one by one; the rest of their batch was stored.",
            )),
            registry,
        }
    }
}
