//! Wall-clock time behind a trait, so the scheduler, leases and run history can be driven by a fake clock in tests instead of waiting real minutes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::future::BoxFuture;
use tokio::sync::Notify;

/// The source of "now" and of sleeping until a wall-clock instant.
///
/// Everything time-related in scheduling (fire times, retry backoff, run timeouts,
/// lease renewal, shutdown grace) goes through one `Clock`, the one the
/// [`State`](crate::state::State) was opened with.
pub trait Clock: Send + Sync {
    /// The current wall-clock time.
    fn now(&self) -> DateTime<Utc>;

    /// A future that completes once [`now`](Clock::now) has reached `deadline`
    /// (at once if it already has).
    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()>;

    /// A future that completes after `duration` of this clock's time.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.sleep_until(add_std(self.now(), duration))
    }
}

/// `t + d`, saturating at the far future instead of overflowing.
pub fn add_std(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The real system clock.
///
/// Long sleeps are taken in slices of at most a minute and re-check the wall clock,
/// so a fire time is not missed by much after a suspend or an NTP step (tokio's
/// timers follow a monotonic clock, not the wall clock).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

const MAX_SLICE: Duration = Duration::from_secs(60);

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            loop {
                let left = (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(MAX_SLICE)).await;
            }
        })
    }
}

/// A controllable clock for tests.
///
/// Its time is `start + elapsed tokio time + jumps`. Under a paused tokio runtime
/// (`#[tokio::test(start_paused = true)]`) tokio time only moves when every task is
/// idle, and then jumps straight to the next timer: a test that sleeps for hours
/// finishes at once and deterministically. [`FakeClock::advance`] and
/// [`FakeClock::set`] move the wall clock directly (simulating downtime or a
/// clock step) and wake sleepers whose deadline has passed.
#[derive(Clone)]
pub struct FakeClock {
    inner: Arc<FakeInner>,
}

struct FakeInner {
    origin: tokio::time::Instant,
    offset: Mutex<DateTime<Utc>>,
    jumped: Notify,
}

impl FakeClock {
    /// A fake clock reading `start` now.
    pub fn new(start: DateTime<Utc>) -> Self {
        FakeClock {
            inner: Arc::new(FakeInner {
                origin: tokio::time::Instant::now(),
                offset: Mutex::new(start),
                jumped: Notify::new(),
            }),
        }
    }

    /// Moves the wall clock forward by `d` without tokio time passing.
    pub fn advance(&self, d: Duration) {
        {
            let mut offset = self.inner.offset.lock().unwrap_or_else(|e| e.into_inner());
            *offset = add_std(*offset, d);
        }
        self.inner.jumped.notify_waiters();
    }

    /// Sets the wall clock to `t` (forwards or backwards).
    pub fn set(&self, t: DateTime<Utc>) {
        let delta = t - self.now();
        {
            let mut offset = self.inner.offset.lock().unwrap_or_else(|e| e.into_inner());
            *offset += delta;
        }
        self.inner.jumped.notify_waiters();
    }

    fn now_inner(inner: &FakeInner) -> DateTime<Utc> {
        let start = *inner.offset.lock().unwrap_or_else(|e| e.into_inner());
        add_std(start, inner.origin.elapsed())
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        Self::now_inner(&self.inner)
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        Box::pin(async move {
            loop {
                // Registered before reading the time, so a jump in between is not lost.
                let jumped = inner.jumped.notified();
                let left = (deadline - Self::now_inner(&inner))
                    .to_std()
                    .unwrap_or(Duration::ZERO);
                if left.is_zero() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(left) => {}
                    _ = jumped => {}
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test(start_paused = true)]
    async fn fake_clock_sleeps_without_real_waiting() {
        let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let clock = FakeClock::new(start);
        let real = std::time::Instant::now();
        clock.sleep(Duration::from_secs(6 * 3600)).await;
        assert!(clock.now() >= start + TimeDelta::hours(6));
        assert!(real.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn advance_wakes_a_sleeper() {
        let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let clock = FakeClock::new(start);
        let sleeper = tokio::spawn(clock.sleep_until(start + TimeDelta::days(10)));
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(10 * 86_400));
        sleeper.await.unwrap();
        // Woken by the jump, not by ten days of tokio time.
        assert!(clock.now() < start + TimeDelta::days(10) + TimeDelta::seconds(1));
    }

    #[tokio::test(start_paused = true)]
    async fn set_moves_the_clock() {
        let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let clock = FakeClock::new(start);
        let later = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
        clock.set(later);
        assert_eq!(clock.now(), later);
    }
}
