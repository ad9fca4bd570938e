//! The harness Tessera's tests and benchmarks share: a throwaway PKI, a real Redis, a
//! throwaway PostgreSQL, the services in-process or as child processes, a scripted HTTP
//! browser, headless Chromium over WebDriver, and small HTTP helpers.
//!
//! Everything binds port 0 (or a unix socket in a temporary directory) and learns the real
//! address from the server itself, so tests never guess ports and never race each other.

mod audit;
mod browser;
mod http;
mod login;
mod otlp;
mod pki;
mod postgres;
mod process;
mod redis_server;
mod requests;
mod session;
mod stash;
mod webdriver;

pub use audit::AuditHarness;
pub use browser::{Answer, Browser};
pub use http::{http_get, HttpResponse};
pub use login::{DemoSiteHandle, LoginStack};
pub use otlp::{OtlpCollector, ReceivedSpan};
pub use pki::TestPki;
pub use postgres::PostgresServer;
pub use process::ServiceProcess;
pub use redis_server::RedisServer;
pub use requests::put_request;
pub use session::SessionHarness;
pub use stash::{bind_loopback, stash_process_env, StashHarness, StashHarnessBuilder};
pub use webdriver::{Chromium, Element};

/// Bounds every wait in the harness: long enough for a loaded CI machine, short enough to
/// fail a hung test with a message instead of hanging CI.
pub const WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);
