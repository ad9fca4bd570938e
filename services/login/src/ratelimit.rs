//! Sign-in attempt limits per client IP and per account (rule F6: credential stuffing),
//! counted in fixed one-minute windows in memory. Each replica counts for itself, so a
//! deployment of N replicas allows at most N times the configured rate.

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

#[cfg(test)]
mod tests {
    use super::*;

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
