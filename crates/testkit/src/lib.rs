//! What Tessera's tests and benchmarks share that is not a service: a throwaway PKI, a
//! real Redis, a throwaway PostgreSQL, child processes, a controllable network link, a
//! scripted HTTP browser, headless Chromium over WebDriver, an OTLP collector and small
//! HTTP helpers. Each service's own in-process harness lives in that service, behind its
//! `test-util` feature, so a test links only the services it is about.
//!
//! Everything binds port 0 (or a unix socket in a temporary directory) and learns the real
//! address from the server itself, so tests never guess ports and never race each other.

mod browser;
mod http;
mod link;
mod otlp;
mod pkce;
mod pki;
mod postgres;
mod process;
mod redis_server;
mod webdriver;

pub use browser::{Answer, Browser};
pub use http::{http_get, metric_sum, HttpResponse};
pub use link::Link;
pub use otlp::{OtlpCollector, ReceivedSpan};
pub use pkce::Pkce;
pub use pki::TestPki;
pub use postgres::PostgresServer;
pub use process::ServiceProcess;
pub use redis_server::RedisServer;
pub use webdriver::{Chromium, Element};

/// Bounds every wait in the harness: long enough for a loaded CI machine, short enough to
/// fail a hung test with a message instead of hanging CI.
pub const WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits until `condition` holds, checking it again whenever it does not (every 20 ms),
/// and fails naming `what` after [`WAIT_LIMIT`]. For state another process or task
/// changes without telling the test (a peer's stream, a replica's sync).
pub async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {WAIT_LIMIT:?} for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The resident memory of process `pid` (`VmRSS` in `/proc`), for benchmarks that report
/// what a process holds; `None` if it has exited or this is not Linux.
pub fn resident_bytes(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The CPU time (user and system) this process has used so far, for benchmarks that
/// report what a measured stretch cost in CPU as well as in wall time. Resolution: a
/// clock tick (10 ms on Linux); `None` if this is not Linux.
pub fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after it are numbers.
    let after_name = stat.rsplit_once(')')?.1;
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    const TICKS_PER_SECOND: f64 = 100.0;
    Some((user + system) as f64 / TICKS_PER_SECOND)
}
