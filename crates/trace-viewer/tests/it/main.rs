//! The observability of `just up`'s stack, end to end: a sign-in is one trace in the
//! viewer, every metric the dashboards and alerts use is on a live `/metrics`, and
//! promtool accepts the Prometheus configuration, the alert rules (and their unit tests)
//! and every dashboard query.

mod dashboards;
mod promtool;
mod traces;
mod up;
