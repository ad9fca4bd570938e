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
    stat_cpu_seconds(&std::fs::read_to_string("/proc/self/stat").ok()?).map(|(_, cpu)| cpu)
}

/// The CPU time (user and system) used so far by this process's live threads named
/// `thread_name` (as `std::thread::Builder::name` or tokio's `thread_name` set it; Linux
/// keeps the first 15 bytes, and so does the comparison). Lets a benchmark that drives a
/// service in its own process tell the load generator's CPU (its own runtime's threads)
/// from the service's: the rest of `own_cpu_seconds`. Threads that have exited are not
/// counted, so name only long-lived threads. `None` if this is not Linux.
pub fn threads_cpu_seconds(thread_name: &str) -> Option<f64> {
    let wanted = &thread_name.as_bytes()[..thread_name.len().min(15)];
    let mut total = 0.0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        // A thread may exit between the listing and the read: it simply is not counted.
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        if let Some((name, cpu)) = stat_cpu_seconds(&stat) {
            if name.as_bytes() == wanted {
                total += cpu;
            }
        }
    }
    Some(total)
}

/// A multi-threaded tokio runtime of `threads` workers whose threads (workers and
/// blocking pool alike) are all named `name`, so `threads_cpu_seconds(name)` reads what
/// the tasks spawned on it cost: a benchmark runs its callers, or one service, on one.
pub fn named_runtime(name: &str, threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
}

/// The command name and user + system CPU seconds of a `/proc/…/stat` line.
fn stat_cpu_seconds(stat: &str) -> Option<(&str, f64)> {
    // The command name (field 2, in parentheses) may hold spaces and parentheses; the
    // fields after its last `)` are numbers.
    let (before, after_name) = stat.rsplit_once(')')?;
    let name = before.split_once('(')?.1;
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    const TICKS_PER_SECOND: f64 = 100.0;
    Some((name, (user + system) as f64 / TICKS_PER_SECOND))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_thread_name_and_cpu_even_with_parentheses_in_the_name() {
        let line = "4242 (odd) name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0";
        let (name, cpu) = stat_cpu_seconds(line).expect("parsed");
        assert_eq!(name, "odd) name)");
        assert!(
            (cpu - 3.25).abs() < 1e-9,
            "250 + 75 ticks is 3.25 s, got {cpu}"
        );
    }

    #[test]
    fn a_named_threads_cpu_is_counted_under_its_name_and_nowhere_else() {
        let name = "cpu-probe-thread-long-name";
        let worker = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                // Busy until the kernel has charged this thread some ticks, however slow
                // the machine: what is asserted is attribution, not speed. Bounded by the
                // process's own CPU, so a count that never grows fails instead of spinning.
                let process_at_start = own_cpu_seconds().expect("linux");
                let mut spin = 0u64;
                loop {
                    let charged = threads_cpu_seconds(name).expect("linux");
                    let process = own_cpu_seconds().expect("linux") - process_at_start;
                    if charged >= 0.05 || process > 5.0 {
                        return charged;
                    }
                    spin = std::hint::black_box(spin.wrapping_add(1));
                }
            })
            .expect("thread");
        let charged = worker.join().expect("joined");
        assert!(charged >= 0.05, "the named thread was charged {charged} s");
        assert_eq!(threads_cpu_seconds("no-such-thread"), Some(0.0));
        assert!(own_cpu_seconds().expect("linux") >= charged);
    }
}
