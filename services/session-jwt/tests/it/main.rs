//! The session service's integration tests: one binary, a module per concern.

mod audit;
mod datacenters;
mod issue;
mod keys;
mod refresh;
mod revoke;
mod support;
