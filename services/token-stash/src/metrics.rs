//! What the stash reports on `/metrics`.

use tessera_service::ServiceError as _;
use tessera_telemetry::metrics::{
    Counter, Gauge, Histogram, HistogramVec, LabeledCounter, Registry,
};

use crate::StashError;

/// From a neighbouring rack to a continent away, and a peer that times out.
const FORWARD_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0,
];
const PUT_TO_TAKE_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The stash's metrics, all registered in one [`Registry`].
#[derive(Debug)]
pub struct StashMetrics {
    /// The registry they render from.
    pub registry: Registry,
    /// Values stored.
    pub puts: std::sync::Arc<Counter>,
    /// Applies that stored all of their puts.
    pub applies: std::sync::Arc<Counter>,
    /// Single-use values taken.
    pub takes: std::sync::Arc<Counter>,
    /// Reusable values read.
    pub gets: std::sync::Arc<Counter>,
    /// Entries deleted.
    pub deletes: std::sync::Arc<Counter>,
    /// Expired entries purged.
    pub purged: std::sync::Arc<Counter>,
    /// Failed operations by reason (the error's code).
    pub failures: std::sync::Arc<LabeledCounter>,
    /// Failed puts and Applies by reason: the writes the stash had to refuse. An Apply
    /// refused because a required entry is gone counts only in `failures`.
    pub write_failures: std::sync::Arc<LabeledCounter>,
    /// Calls forwarded to a token's home datacenter, by RPC.
    pub forwarded: std::sync::Arc<LabeledCounter>,
    /// How long forwarded calls took, answer or failure, by RPC.
    pub forward_seconds: std::sync::Arc<HistogramVec>,
    /// Live entries at the last count.
    pub live_entries: std::sync::Arc<Gauge>,
    /// Live value bytes at the last count.
    pub live_bytes: std::sync::Arc<Gauge>,
    /// Time from a value's put to its take.
    pub put_to_take: std::sync::Arc<Histogram>,
}

impl Default for StashMetrics {
    fn default() -> Self {
        StashMetrics::new()
    }
}

impl StashMetrics {
    /// A fresh set of metrics.
    pub fn new() -> Self {
        let registry = Registry::default();
        StashMetrics {
            puts: registry.register(Counter::new("tessera_stash_puts_total", "Values stored.")),
            applies: registry.register(Counter::new(
                "tessera_stash_applies_total",
                "Applies committed (their puts also count as puts).",
            )),
            takes: registry.register(Counter::new(
                "tessera_stash_takes_total",
                "Single-use values taken.",
            )),
            gets: registry.register(Counter::new(
                "tessera_stash_gets_total",
                "Reusable values read.",
            )),
            deletes: registry.register(Counter::new(
                "tessera_stash_deletes_total",
                "Entries deleted.",
            )),
            purged: registry.register(Counter::new(
                "tessera_stash_purged_total",
                "Expired entries purged.",
            )),
            failures: registry.register(LabeledCounter::new(
                "tessera_stash_failures_total",
                "Failed stash operations by reason.",
                "reason",
            )),
            write_failures: registry.register(LabeledCounter::new(
                "tessera_stash_write_failures_total",
                "Writes (puts, Applies) the stash refused or could not store, by reason.",
                "reason",
            )),
            forwarded: registry.register(LabeledCounter::new(
                "tessera_stash_forwarded_total",
                "Calls forwarded to the token's home datacenter, by RPC.",
                "rpc",
            )),
            forward_seconds: registry.register(HistogramVec::new(
                "tessera_stash_forward_seconds",
                "Time a call forwarded to the token's home datacenter took, by RPC.",
                "rpc",
                FORWARD_BUCKETS,
                16,
            )),
            live_entries: registry.register(Gauge::new(
                "tessera_stash_live_entries",
                "Entries not yet expired.",
            )),
            live_bytes: registry.register(Gauge::new(
                "tessera_stash_live_bytes",
                "Bytes of values not yet expired.",
            )),
            put_to_take: registry.register(Histogram::new(
                "tessera_stash_put_to_take_seconds",
                "Time from a value's put to its take.",
                PUT_TO_TAKE_BUCKETS,
            )),
            registry,
        }
    }

    /// Counts a failed operation.
    pub fn failure(&self, operation: &'static str, err: &StashError) {
        self.failures.inc(err.code());
        if operation == "put" || operation == "apply" {
            self.write_failures.inc(err.code());
        }
    }
}
