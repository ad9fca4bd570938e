//! Time as a parameter.
//!
//! Everything in Tessera that judges expiry asks a [`Clock`] for the current time instead
//! of reading the system clock itself, so that tests move time forward instead of
//! sleeping. This crate is the only place allowed to read the system clock (see
//! `clippy.toml`).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: the unit every Tessera expiry is stored in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// This instant moved forward by `duration`, saturating instead of overflowing.
    pub fn saturating_add(self, duration: Duration) -> Self {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        UnixMillis(self.0.saturating_add(millis))
    }

    /// How long after `earlier` this instant is; zero if it is not after it.
    pub fn saturating_since(self, earlier: UnixMillis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// The value as a signed integer, as protobuf `int64` fields carry it.
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for UnixMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A source of wall-clock time and of monotonic instants for measuring durations.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current wall-clock time.
    fn now(&self) -> UnixMillis;

    /// A monotonic instant, for latency measurements only (never for expiry).
    fn instant(&self) -> Instant;
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl SystemClock {
    /// A shared handle to the system clock.
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // this is the clock module
    fn now(&self) -> UnixMillis {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        UnixMillis(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }

    #[allow(clippy::disallowed_methods)] // this is the clock module
    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to: tests of expiry advance it instead of sleeping.
///
/// It starts at the system time of its creation so that values it produces are plausible
/// to components (such as Redis) that also know the real time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now_millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A manual clock starting at the current system time.
    pub fn starting_now() -> Self {
        Self::starting_at(SystemClock.now())
    }

    /// A manual clock starting at `start`.
    pub fn starting_at(start: UnixMillis) -> Self {
        ManualClock {
            now_millis: Arc::new(AtomicU64::new(start.0)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let millis = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.now_millis.fetch_add(millis, Ordering::SeqCst);
    }

    /// A shared handle to this clock; advancing `self` moves every handle.
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixMillis {
        UnixMillis(self.now_millis.load(Ordering::SeqCst))
    }

    fn instant(&self) -> Instant {
        SystemClock.instant()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::starting_at(UnixMillis(1_000));
        let handle = clock.shared();
        assert_eq!(handle.now(), UnixMillis(1_000));
        clock.advance(Duration::from_secs(2));
        assert_eq!(handle.now(), UnixMillis(3_000));
    }

    #[test]
    fn unix_millis_arithmetic_saturates() {
        assert_eq!(
            UnixMillis(u64::MAX).saturating_add(Duration::from_secs(1)),
            UnixMillis(u64::MAX)
        );
        assert_eq!(
            UnixMillis(5).saturating_since(UnixMillis(10)),
            Duration::ZERO
        );
    }
}
