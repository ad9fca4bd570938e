//! What the visitors themselves saw, counted as they go: sign-ins started and finished,
//! single-sign-on hops, refresh storms and how many pairs each produced, what stuffing
//! got back, every 5xx, and each request's latency per second of the run (for the chart).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Counts kept by every visitor.
#[derive(Debug, Default)]
pub struct Tally {
    /// Password posts by people (the right password).
    pub sign_ins_started: AtomicU64,
    /// Of those, the ones that ended on the site's signed-in page.
    pub sign_ins_completed: AtomicU64,
    /// Of the completed ones, those signed in on a site of another datacenter than the
    /// login that minted the code.
    pub cross_dc_sign_ins: AtomicU64,
    /// Single-sign-on hops to the second site that ended signed in, without a form.
    pub sso_hops: AtomicU64,
    /// Hops that showed a form or an error instead.
    pub sso_hops_failed: AtomicU64,
    /// Site visits past the soft expiry that came back signed in with new cookies.
    pub refreshes: AtomicU64,
    /// Such visits that came back signed out or failed.
    pub refreshes_failed: AtomicU64,
    /// Refresh storms run.
    pub storms: AtomicU64,
    /// Storms whose tabs were handed more than one distinct refresh token.
    pub storms_split: AtomicU64,
    /// The most distinct refresh tokens one storm's tabs were handed.
    pub storm_most_pairs: AtomicU64,
    /// Sign-outs that ended signed out.
    pub sign_outs: AtomicU64,
    /// Wrong-password posts by stuffers.
    pub stuffing_posts: AtomicU64,
    /// Of those, refused with 429.
    pub stuffing_limited: AtomicU64,
    /// Of those, answered other than 401 or 429 (never expected).
    pub stuffing_succeeded: AtomicU64,
    /// Anonymous visits (scrapers' GETs).
    pub anonymous_visits: AtomicU64,
    /// Responses with a 5xx status, any visitor.
    pub server_errors: AtomicU64,
    /// Requests that got no response at all (connection refused or reset, timeout).
    pub transport_errors: AtomicU64,
}

impl Tally {
    /// The shared tally.
    pub fn get() -> &'static Tally {
        static TALLY: OnceLock<Tally> = OnceLock::new();
        TALLY.get_or_init(Tally::default)
    }

    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Raises `counter` to `value` if it is lower.
    pub fn raise(counter: &AtomicU64, value: u64) {
        counter.fetch_max(value, Ordering::Relaxed);
    }

    /// The value of `counter`.
    pub fn read(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Every request's latency, by second of the run, for the throughput and p99 chart.
#[derive(Debug)]
pub struct Timeline {
    started: Instant,
    /// Second → latencies in milliseconds. A std mutex: held for one push.
    seconds: Mutex<BTreeMap<u64, Vec<u32>>>,
}

/// One second of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Second {
    /// Seconds since the run began.
    pub at: u64,
    /// Requests answered in it.
    pub requests: usize,
    /// Their 99th-percentile latency, milliseconds.
    pub p99_ms: u32,
}

impl Timeline {
    /// The shared timeline, started at first use.
    pub fn get() -> &'static Timeline {
        static TIMELINE: OnceLock<Timeline> = OnceLock::new();
        TIMELINE.get_or_init(|| Timeline {
            started: Instant::now(),
            seconds: Mutex::new(BTreeMap::new()),
        })
    }

    /// Records a request answered now that took `latency_ms`.
    pub fn record(&self, latency_ms: u64) {
        let second = self.started.elapsed().as_secs();
        let latency = u32::try_from(latency_ms).unwrap_or(u32::MAX);
        let mut seconds = self.seconds.lock().unwrap_or_else(|e| e.into_inner());
        seconds.entry(second).or_default().push(latency);
    }

    /// Each second's throughput and p99, gaps included as zero.
    pub fn seconds(&self) -> Vec<Second> {
        let seconds = self.seconds.lock().unwrap_or_else(|e| e.into_inner());
        let Some(last) = seconds.keys().next_back().copied() else {
            return Vec::new();
        };
        (0..=last)
            .map(|at| match seconds.get(&at) {
                Some(latencies) => Second {
                    at,
                    requests: latencies.len(),
                    p99_ms: percentile(latencies, 0.99),
                },
                None => Second {
                    at,
                    requests: 0,
                    p99_ms: 0,
                },
            })
            .collect()
    }
}

/// The `q` quantile of `values` (nearest rank).
pub fn percentile(values: &[u32], q: f64) -> u32 {
    if values.is_empty() {
        return 0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_99th_percentile_is_the_value_below_which_99_in_100_fall() {
        let values: Vec<u32> = (1..=200).collect();
        assert_eq!(percentile(&values, 0.99), 198);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.99), 0);
    }
}
