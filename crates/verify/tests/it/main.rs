//! The verifier's tests: one binary, a module per concern.

mod cookies;
mod fuzz;
mod hostile;
mod support;
mod verification;
