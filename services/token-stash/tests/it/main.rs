//! The token stash's integration tests: one binary, one module per concern.

mod admin;
mod concurrency;
mod conformance;
mod contract;
mod durability;
mod failover;
mod mtls;
mod peers;
mod silent_link;
mod support;
mod tracing;
