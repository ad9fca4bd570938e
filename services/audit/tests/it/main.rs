//! The audit service's tests: one binary, a module per concern.

mod chain;
mod dashboard;
mod ingest;
mod support;
