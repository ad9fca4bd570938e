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

/// The environment variable that skews a service's clock, for simulating a datacenter
/// whose clock is off (containers share the host's clock, so skew cannot be had any other
/// way). Seconds, may be negative. A simulation setting: never set it in production.
pub const SIMULATED_OFFSET_VAR: &str = "TESSERA_SIMULATION_CLOCK_OFFSET_SECONDS";

/// A simulation setting that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    /// The offset is not a whole number of seconds within a day either way.
    #[error("{SIMULATED_OFFSET_VAR}={value:?} is not a whole number of seconds between -86400 and 86400; unset it, or set e.g. 300 or -300")]
    BadOffset {
        /// What was set.
        value: String,
    },
}

impl ClockError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ClockError::BadOffset { .. } => "bad_clock_offset",
        }
    }
}

/// The clock a service runs on: the system clock, skewed by [`SIMULATED_OFFSET_VAR`]
/// when the environment `vars` set it. The offset is returned too, so the service can say
/// loudly that it is simulating.
pub fn service_clock(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(SharedClock, Option<i64>), ClockError> {
    let Some((_, value)) = vars.into_iter().find(|(k, _)| k == SIMULATED_OFFSET_VAR) else {
        return Ok((SystemClock::shared(), None));
    };
    let seconds: i64 = value
        .trim()
        .parse()
        .ok()
        .filter(|s: &i64| s.abs() <= 86_400)
        .ok_or_else(|| ClockError::BadOffset {
            value: value.clone(),
        })?;
    Ok((
        Arc::new(OffsetClock {
            offset_millis: seconds * 1000,
        }),
        Some(seconds),
    ))
}

/// [`service_clock`] over this process's environment, saying loudly (in the log, so call
/// it once logging is set up) when the clock is skewed.
pub fn service_clock_from_env() -> Result<SharedClock, ClockError> {
    let (clock, offset) = service_clock(std::env::vars())?;
    if let Some(seconds) = offset {
        tracing::warn!(
            seconds,
            setting = SIMULATED_OFFSET_VAR,
            "SIMULATION: this service's clock is skewed; never set this in production"
        );
    }
    Ok(clock)
}

/// The system clock moved by a fixed offset: one datacenter running ahead or behind.
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock {
    offset_millis: i64,
}

impl OffsetClock {
    /// The system clock moved by `offset_millis` (negative: behind).
    pub fn new(offset_millis: i64) -> Self {
        OffsetClock { offset_millis }
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> UnixMillis {
        UnixMillis(
            SystemClock
                .now()
                .0
                .saturating_add_signed(self.offset_millis),
        )
    }

    fn instant(&self) -> Instant {
        SystemClock.instant()
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

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_simulated_offset_moves_the_service_clock_by_that_much() {
        let (ahead, offset) =
            service_clock(vars(&[(SIMULATED_OFFSET_VAR, "300")])).expect("offset accepted");
        assert_eq!(offset, Some(300));
        let (behind, _) =
            service_clock(vars(&[(SIMULATED_OFFSET_VAR, " -300 ")])).expect("offset accepted");
        let gap = ahead.now().saturating_since(behind.now());
        // Both read the system clock a moment apart: the gap is ten minutes, give or take.
        assert!(gap >= Duration::from_secs(600), "gap {gap:?}");
        assert!(gap < Duration::from_secs(601), "gap {gap:?}");
    }

    #[test]
    fn without_the_setting_the_service_clock_is_the_system_clock() {
        let (clock, offset) = service_clock(vars(&[("PATH", "/bin")])).expect("no setting");
        assert_eq!(offset, None);
        assert!(clock.now().saturating_since(SystemClock.now()) < Duration::from_secs(1));
    }

    #[test]
    fn a_malformed_or_huge_offset_is_refused_naming_the_setting() {
        for bad in ["5m", "", "86401", "-99999999999"] {
            let err = service_clock(vars(&[(SIMULATED_OFFSET_VAR, bad)])).expect_err("refused");
            assert_eq!(err.code(), "bad_clock_offset");
            assert!(err.to_string().contains(SIMULATED_OFFSET_VAR), "{err}");
        }
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
