//! The harness Tessera's tests and benchmarks share: a throwaway PKI, a real Redis, the
//! token stash in-process or as a child process, and small HTTP helpers.
//!
//! Everything binds port 0 (or a unix socket in a temporary directory) and learns the real
//! address from the server itself, so tests never guess ports and never race each other.

mod http;
mod otlp;
mod pki;
mod process;
mod redis_server;
mod requests;
mod session;
mod stash;

pub use http::{http_get, HttpResponse};
pub use otlp::{OtlpCollector, ReceivedSpan};
pub use pki::TestPki;
pub use process::ServiceProcess;
pub use redis_server::RedisServer;
pub use requests::put_request;
pub use session::SessionHarness;
pub use stash::{bind_loopback, stash_process_env, StashHarness, StashHarnessBuilder};

/// Bounds every wait in the harness: long enough for a loaded CI machine, short enough to
/// fail a hung test with a message instead of hanging CI.
pub const WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);
