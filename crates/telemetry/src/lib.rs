//! Logs, traces, metrics and the admin port, set up the same way in every Tessera service.
//!
//! - [`init`] installs `tracing` with an env filter (`RUST_LOG`), human or JSON logs, and,
//!   when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, OTLP export of spans.
//! - [`trace_context`] carries W3C trace context across gRPC hops.
//! - [`metrics`] is a small Prometheus text registry; [`admin`] serves it with health and
//!   readiness on the service's admin port.

pub mod admin;
pub mod metrics;
pub mod red;
pub mod sampling;
pub mod trace_context;

mod error;
mod init;
mod runtime;
mod shutdown;

pub use error::TelemetryError;
pub use init::{init, LogFormat, ServiceIdentity, TelemetryGuard};
pub use runtime::run_service;
pub use shutdown::shutdown_signal;
