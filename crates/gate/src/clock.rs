//! Where the service gets the time ([`Clock`]) and fresh ids ([`IdSource`]): passed in, so tests
//! fix the time and the garage's rules never read a clock or draw randomness themselves.

use std::fmt;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

/// The time records are written at (charges settled, receipts issued). The decision itself is
/// made at the read's own time, which the camera stamped.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that says what it is told: for tests and benchmarks.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> FixedClock {
        FixedClock(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.time() = at;
    }

    pub fn advance(&self, by: TimeDelta) {
        let mut time = self.time();
        *time += by;
    }

    fn time(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A plain value behind the lock: a panic elsewhere cannot leave it half-written.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.time()
    }
}

/// Sixteen fresh bytes for a session id or a link token. A link token is what an unregistered
/// driver pays by, so in service it must be unguessable: [`RandomIds`].
pub trait IdSource: Send + Sync + fmt::Debug {
    fn fresh(&self) -> [u8; 16];
}

/// Ids from the operating system's random generator.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn fresh(&self) -> [u8; 16] {
        rand::random()
    }
}
