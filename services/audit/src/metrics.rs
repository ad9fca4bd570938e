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
            registry,
        }
    }
}
