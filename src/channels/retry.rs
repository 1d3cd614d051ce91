//! Retry policy as data: how long to wait
//! (exponential backoff with full jitter, or what the provider asks for in `Retry-After` /
//! `X-RateLimit-Reset`), and how many attempts a recipient gets.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::header::HeaderMap;

/// Attempts and backoff of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests per recipient per run (429s do not count).
    pub max_attempts: u32,
    /// Backoff ceiling of the first retry.
    pub base: Duration,
    /// Largest backoff ever.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The exponential ceiling after `attempt` failed attempts (1-based): `base * 2^(attempt-1)`, capped.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Full jitter: uniform in `[0, ceiling(attempt)]` (AWS architecture blog, "Exponential
    /// Backoff And Jitter"), which spreads retrying workers apart.
    pub fn backoff(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        if ceiling.is_zero() {
            return ceiling;
        }
        Duration::from_nanos(rng.random_range(0..=ceiling.as_nanos().min(u64::MAX as u128) as u64))
    }

    /// The wait before the next attempt: the provider's ask if it gave one (at most
    /// [`MAX_PROVIDER_WAIT`], so a bogus header cannot park a channel for a day; the run's
    /// time budget bounds it too), else the jittered backoff.
    pub fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        match retry_after {
            Some(d) => d.min(MAX_PROVIDER_WAIT),
            None => self.backoff(attempt, rng),
        }
    }
}

/// The longest `Retry-After` honoured.
pub const MAX_PROVIDER_WAIT: Duration = Duration::from_secs(15 * 60);

/// The wait a response asks for: `Retry-After` (delta-seconds or an HTTP date), else
/// `X-RateLimit-Reset` (epoch seconds when it looks like one, else delta-seconds).
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(d) = get("retry-after").and_then(|v| parse_retry_after(v, now)) {
        return Some(d);
    }
    get("x-ratelimit-reset").and_then(|v| parse_rate_limit_reset(v, now))
}

/// `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT` (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at: DateTime<Utc> = httpdate::parse_http_date(value).ok()?.into();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Values above this are epoch seconds (2001-09-09), below it a number of seconds to wait.
const EPOCH_THRESHOLD: f64 = 1_000_000_000.0;

/// `X-RateLimit-Reset: 1700000000` (epoch seconds) or `X-RateLimit-Reset: 30` (seconds).
pub fn parse_rate_limit_reset(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)?;
    if v >= EPOCH_THRESHOLD {
        let at = DateTime::<Utc>::from_timestamp_millis((v * 1000.0) as i64)?;
        Some((at - now).to_std().unwrap_or(Duration::ZERO))
    } else {
        Some(Duration::from_secs_f64(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2015, 10, 21, 7, 27, 0).unwrap()
    }

    #[test]
    fn backoff_is_capped_full_jitter() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
        };
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(3), Duration::from_millis(400));
        assert_eq!(p.ceiling(10), Duration::from_millis(1000));
        assert_eq!(p.ceiling(u32::MAX), Duration::from_millis(1000));
        let mut rng = rand::rng();
        let draws: Vec<_> = (0..200).map(|_| p.backoff(4, &mut rng)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_millis(800)));
        assert!(
            draws.iter().any(|d| *d < Duration::from_millis(400)),
            "jittered"
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3)), &mut rng),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(86_400)), &mut rng),
            MAX_PROVIDER_WAIT
        );
    }

    #[test]
    fn parses_retry_after_seconds_and_dates() {
        assert_eq!(
            parse_retry_after("120", now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now()),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now()), None);
        assert_eq!(parse_retry_after("-5", now()), None);
    }

    #[test]
    fn parses_rate_limit_reset_epoch_and_delta() {
        let epoch = now().timestamp() + 30;
        assert_eq!(
            parse_rate_limit_reset(&epoch.to_string(), now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_rate_limit_reset("7", now()),
            Some(Duration::from_secs(7))
        );
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h, now()), Some(Duration::from_secs(2)));
        h.insert("retry-after", HeaderValue::from_static("5"));
        assert_eq!(retry_after(&h, now()), Some(Duration::from_secs(5)));
    }
}
