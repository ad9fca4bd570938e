//! Sign-in limits (rule F6: credential stuffing): attempts per client network in fixed
//! one-minute windows, and wrong passwords per account *and* network with exponential
//! backoff, so a guesser is slowed without anyone being able to lock a person out from
//! elsewhere. Both live in memory per replica (N replicas allow N times the rate); the
//! second factor's failures are counted in the directory instead, across replicas.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tessera_clock::UnixMillis;

/// How many keys a limiter remembers before it forgets finished windows.
const PRUNE_AT: usize = 100_000;

/// A fixed-window counter per key.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    /// Key → (window start, attempts in it). A std mutex: held for one map operation,
    /// never across an `.await`.
    counts: Mutex<HashMap<String, (UnixMillis, u32)>>,
}

impl RateLimiter {
    /// At most `limit` attempts per key per `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        RateLimiter {
            limit,
            window,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt for `key` at `now`; `Err(retry_after)` if over the limit.
    pub fn attempt(&self, key: &str, now: UnixMillis) -> Result<(), Duration> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() >= PRUNE_AT {
            let window = self.window;
            counts.retain(|_, (start, _)| now.saturating_since(*start) < window);
        }
        let entry = counts.entry(key.to_owned()).or_insert((now, 0));
        if now.saturating_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            let elapsed = now.saturating_since(entry.0);
            let wait = self.window.saturating_sub(elapsed);
            return Err(Duration::from_secs(
                wait.as_millis().div_ceil(1000).max(1) as u64
            ));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// The first wait after the free failures; each further failure doubles it.
pub const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait.
pub const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);

/// The wait after `failures` failures in a row when `free` attempts are allowed
/// without waiting: none before the `free`-th failure, then [`FIRST_WAIT`], doubling
/// with each further failure up to [`LONGEST_WAIT`].
pub fn backoff(failures: u32, free: u32) -> Duration {
    match failures.checked_sub(free) {
        None => Duration::ZERO,
        Some(over) => FIRST_WAIT
            .saturating_mul(1u32 << over.min(20))
            .min(LONGEST_WAIT),
    }
}

/// Failures per key with exponential backoff (wrong passwords per account and
/// network). Only failures count, and a success forgets them.
#[derive(Debug)]
pub struct FailureBackoff {
    free: u32,
    /// Key → (failures, waiting until). A std mutex: held for one map operation, never
    /// across an `.await`.
    entries: Mutex<HashMap<String, (u32, UnixMillis)>>,
}

impl FailureBackoff {
    /// `free` failures per key before waits begin.
    pub fn new(free: u32) -> Self {
        FailureBackoff {
            free,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` while `key` must wait.
    pub fn check(&self, key: &str, now: UnixMillis) -> Result<(), Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some((_, until)) if *until > now => Err(Duration::from_secs(
                until
                    .saturating_since(now)
                    .as_millis()
                    .div_ceil(1000)
                    .max(1) as u64,
            )),
            _ => Ok(()),
        }
    }

    /// Counts a failure for `key` at `now`.
    pub fn failed(&self, key: &str, now: UnixMillis) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= PRUNE_AT {
            // Forget keys whose wait ended long ago.
            entries.retain(|_, (_, until)| now.saturating_since(*until) < LONGEST_WAIT);
        }
        let entry = entries.entry(key.to_owned()).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now.saturating_add(backoff(entry.0, self.free));
    }

    /// Forgets the failures of `key`.
    pub fn succeeded(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_begin_after_the_free_failures_and_double_up_to_a_cap() {
        assert_eq!(backoff(2, 3), Duration::ZERO);
        assert_eq!(backoff(3, 3), Duration::from_secs(1));
        assert_eq!(backoff(4, 3), Duration::from_secs(2));
        assert_eq!(backoff(12, 3), Duration::from_secs(512));
        assert_eq!(backoff(40, 3), LONGEST_WAIT);
        let limiter = FailureBackoff::new(3);
        let start = UnixMillis(1_000_000);
        for _ in 0..3 {
            assert_eq!(limiter.check("alice|203.0.113.9", start), Ok(()));
            limiter.failed("alice|203.0.113.9", start);
        }
        assert_eq!(
            limiter.check("alice|203.0.113.9", start),
            Err(Duration::from_secs(1))
        );
        assert_eq!(
            limiter.check("alice|198.51.100.1", start),
            Ok(()),
            "the same account from another network is not locked out"
        );
        limiter.succeeded("alice|203.0.113.9");
        assert_eq!(limiter.check("alice|203.0.113.9", start), Ok(()));
    }

    #[test]
    fn attempts_beyond_the_limit_wait_for_the_window_to_end() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        let start = UnixMillis(1_000_000);
        for _ in 0..3 {
            assert_eq!(limiter.attempt("10.0.0.1", start), Ok(()));
        }
        assert_eq!(
            limiter.attempt("10.0.0.1", start.saturating_add(Duration::from_secs(20))),
            Err(Duration::from_secs(40))
        );
        assert_eq!(
            limiter.attempt("10.0.0.2", start),
            Ok(()),
            "other keys unaffected"
        );
        assert_eq!(
            limiter.attempt("10.0.0.1", start.saturating_add(Duration::from_secs(60))),
            Ok(())
        );
    }
}
