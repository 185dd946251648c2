//! Time as the election sees it: a monotonic instant for every deadline, and wall time only to
//! write in the lease for people. Tests use [`FakeClock`] and move time by hand.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// A source of time.
pub trait Clock: Send + Sync {
    /// Monotonic time; every decision of the election is measured with it.
    fn now(&self) -> Instant;
    /// Wall time, written in the lease as `acquired_at` / `renewed_at`; never used to decide.
    fn wall_time(&self) -> SystemTime;
}

/// The real clock. Its monotonic time is tokio's, so it agrees with tokio's timers (and moves with
/// them when a test pauses time).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn wall_time(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct FakeClock {
    elapsed: Arc<Mutex<Duration>>,
    origin: Instant,
    wall_origin: SystemTime,
}

impl FakeClock {
    /// A clock at an arbitrary fixed wall time (2023-11-14T22:13:20Z).
    pub fn new() -> FakeClock {
        FakeClock {
            elapsed: Arc::new(Mutex::new(Duration::ZERO)),
            origin: Instant::now(),
            wall_origin: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }

    /// Moves time forward for every clone of this clock.
    pub fn advance(&self, by: Duration) {
        *self.elapsed.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }

    /// Time moved since the clock was made.
    pub fn elapsed(&self) -> Duration {
        *self.elapsed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        FakeClock::new()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.origin + self.elapsed()
    }

    fn wall_time(&self) -> SystemTime {
        self.wall_origin + self.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_fake_time() {
        let clock = FakeClock::new();
        let clone = clock.clone();
        let (start, wall_start) = (clock.now(), clock.wall_time());
        clone.advance(Duration::from_secs(3));
        assert_eq!(clock.now() - start, Duration::from_secs(3));
        assert_eq!(
            clock.wall_time().duration_since(wall_start).expect("forward"),
            Duration::from_secs(3)
        );
    }
}
