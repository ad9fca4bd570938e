//! The login service's tests: one binary, a module per concern. Each test starts the
//! whole stack (stash, session service, login) in-process on loopback ports.

mod accounts;
mod admin;
mod audit;
mod browser;
mod csrf;
mod directory;
mod flow;
mod form;
mod limits;
mod logout;
mod support;
mod token;
mod tokens;
mod tracing;
