//! Tessera's audit service: an append-only, hash-chained log of security events that
//! every Tessera service writes to over mutual TLS. A record is acknowledged only once it
//! is durable; `tessera-audit verify` finds any edited, dropped or reordered record and
//! says where. Operators read it through a JSON query API and an HTML dashboard on the
//! admin port, behind an admin credential.

pub mod config;
mod error;
pub mod event;
pub mod grpc;
pub mod http;
pub mod log;
pub mod metrics;
pub mod query;
pub mod server;

pub use error::{AuditError, ServiceError};
#[cfg(feature = "test-util")]
pub mod test_util;
