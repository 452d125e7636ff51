//! A handle's clock: Redis's (`TIME`) as last read, plus the monotonic time since. Every
//! process of a task hub so agrees on when a timer is due, and a step of a machine's wall
//! clock (NTP, a virtual machine resumed, `date -s`) changes nothing: the wall clock is never
//! read. Redis's clock is read again at every heartbeat (a third of the lease), and the scripts
//! that decide by time — which timers are due, which workers are gone — read it themselves.

use super::lock;
use crate::time::Millis;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(super) struct Clock {
    /// Redis's time, and when it was read.
    anchor: Mutex<(Millis, Instant)>,
    /// The latest time handed out: the clock never goes back, even when a new reading of
    /// Redis's clock is behind the estimate (it then stands still until Redis catches up).
    last: AtomicU64,
    /// How far ahead of Redis this handle's clock runs: zero, but for tests of a worker whose
    /// clock is wrong.
    ahead: Duration,
}

impl Clock {
    pub(super) fn new(ahead: Duration) -> Self {
        Self { anchor: Mutex::new((0, Instant::now())), last: AtomicU64::new(0), ahead }
    }

    /// Redis answered `redis_ms` to a request sent at `sent` and answered at `received`.
    pub(super) fn set(&self, redis_ms: Millis, sent: Instant, received: Instant) {
        // Redis read its clock somewhere in between: take the middle.
        let at = sent + received.saturating_duration_since(sent) / 2;
        *lock(&self.anchor) = (redis_ms, at);
    }

    /// Now, in ms since the Unix epoch.
    pub(super) fn now(&self) -> Millis {
        let (ms, at) = *lock(&self.anchor);
        let t = ms + (at.elapsed() + self.ahead).as_millis() as Millis;
        self.last.fetch_max(t, Ordering::SeqCst).max(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_redis_and_never_goes_back() {
        let clock = Clock::new(Duration::ZERO);
        let t0 = Instant::now();
        clock.set(1_000_000, t0, t0);
        let a = clock.now();
        assert!((1_000_000..1_000_000 + 1_000).contains(&a), "{a}");
        // A later reading behind the estimate: the clock stands still, it does not go back.
        clock.set(900_000, Instant::now(), Instant::now());
        assert!(clock.now() >= a);
        // A reading ahead: followed at once.
        clock.set(2_000_000, Instant::now(), Instant::now());
        assert!(clock.now() >= 2_000_000);
    }

    #[test]
    fn a_reading_counts_from_the_middle_of_its_round_trip() {
        let clock = Clock::new(Duration::ZERO);
        let sent = Instant::now();
        let received = sent + Duration::from_millis(400);
        clock.set(5_000, sent, received);
        // Read at `received`, 200 ms after Redis's reading (give or take the test's own time).
        let anchor = lock(&clock.anchor).1;
        assert_eq!(anchor.duration_since(sent), Duration::from_millis(200));
    }
}
