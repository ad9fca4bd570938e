//! The verifier's tests: one binary, a module per concern.

mod cookies;
mod fuzz;
mod hostile;
mod jws;
mod site;
mod support;
mod typing;
mod verification;
