//! Pacing of one channel shared by all its workers: a request-rate limit (governor), a
//! bound on requests in flight (semaphore), and the "paused until" gate a 429 closes for
//! every worker at once.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::clock::{Clock, add_std};

/// The pacing state of one channel.
pub struct Throttle {
    limiter: DefaultDirectRateLimiter,
    slots: Semaphore,
    paused_until: Mutex<Option<DateTime<Utc>>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("paused_until", &self.paused_until())
            .finish_non_exhaustive()
    }
}

impl Throttle {
    /// `rate_per_sec` requests per second (bursts up to `concurrency`), at most
    /// `concurrency` requests at once.
    pub fn new(rate_per_sec: f64, concurrency: usize, clock: Arc<dyn Clock>) -> Throttle {
        let rate = if rate_per_sec.is_finite() && rate_per_sec > 0.0 {
            rate_per_sec
        } else {
            1.0
        };
        let period = Duration::from_secs_f64(1.0 / rate).max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(concurrency.clamp(1, u32::MAX as usize) as u32)
            .unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Throttle {
            limiter: RateLimiter::direct(quota),
            slots: Semaphore::new(concurrency.max(1)),
            paused_until: Mutex::new(None),
            clock,
        }
    }

    /// Waits for the pause gate, a rate-limit cell and a concurrency slot; the request may
    /// go out while the returned permit lives.
    pub async fn acquire(&self) -> SemaphorePermit<'_> {
        loop {
            self.wait_unpaused().await;
            self.limiter.until_ready().await;
            // A 429 seen by another worker while this one waited closes the gate again.
            if self.paused_until().is_none_or(|t| t <= self.clock.now()) {
                break;
            }
        }
        // Never closed, so acquire cannot fail; fall back to an unbounded wait otherwise.
        match self.slots.acquire().await {
            Ok(p) => p,
            Err(_) => std::future::pending().await,
        }
    }

    /// Closes the gate for every worker until `now + wait` (never shortens an existing pause).
    pub fn pause_for(&self, wait: Duration) -> DateTime<Utc> {
        let until = add_std(self.clock.now(), wait);
        let mut g = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        let t = match *g {
            Some(t) if t > until => t,
            _ => until,
        };
        *g = Some(t);
        t
    }

    /// The end of the current pause, if one was set.
    pub fn paused_until(&self) -> Option<DateTime<Utc>> {
        *self.paused_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn wait_unpaused(&self) {
        while let Some(t) = self.paused_until() {
            if t <= self.clock.now() {
                return;
            }
            self.clock.sleep_until(t).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use std::time::Instant;

    #[tokio::test]
    async fn pause_holds_every_worker() {
        let t = Arc::new(Throttle::new(10_000.0, 4, Arc::new(SystemClock)));
        t.pause_for(Duration::from_millis(150));
        // A shorter pause does not shorten the gate.
        t.pause_for(Duration::from_millis(10));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let t = t.clone();
            tasks.push(tokio::spawn(async move {
                let _p = t.acquire().await;
                Instant::now()
            }));
        }
        for task in tasks {
            let at = task.await.unwrap();
            assert!(at - started >= Duration::from_millis(140));
        }
    }

    #[tokio::test]
    async fn rate_limits_requests() {
        let t = Throttle::new(100.0, 1, Arc::new(SystemClock));
        let started = Instant::now();
        for _ in 0..11 {
            drop(t.acquire().await);
        }
        // 1 burst cell, then 10 more at 10 ms each.
        assert!(
            started.elapsed() >= Duration::from_millis(90),
            "{:?}",
            started.elapsed()
        );
    }
}
