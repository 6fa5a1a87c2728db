//! Flood protection for the Teams API: a token bucket per bearer token (each carrier has one),
//! and one shared by every request without a valid token, taken from before any other work.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// How fast one caller may call the Teams API: `burst` requests at once, then
/// `requests_per_second` on average. Past that, requests get `429` with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// How fast the bucket refills, requests per second (real time); at least 1.
    pub requests_per_second: u32,
    /// How many requests the bucket holds when full; at least 1.
    pub burst: u32,
}

impl RateLimit {
    /// Checks the values; returns what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.requests_per_second == 0 {
            return Err("rate_limit.requests_per_second must be at least 1".into());
        }
        if self.burst == 0 {
            return Err("rate_limit.burst must be at least 1".into());
        }
        Ok(())
    }
}

/// The buckets, keyed by carrier index; `None` is the bucket of requests without a valid token.
/// Keying by carrier rather than by the token sent keeps the map as small as the carrier list,
/// whatever tokens a flood makes up.
pub(crate) struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<BTreeMap<Option<u16>, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(BTreeMap::new()),
        }
    }

    /// Takes one request's token from `caller`'s bucket at `now`; when there is none, says how
    /// long until there is.
    pub(crate) fn take(&self, caller: Option<u16>, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.limit.burst);
        let rate = f64::from(self.limit.requests_per_second.max(1));
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        let bucket = buckets.entry(caller).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        // Workers read the clock before taking the lock, so `now` can be a little behind.
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = bucket.at.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

/// A wait as a `Retry-After` value: whole seconds, rounded up, at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(requests_per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter::new(RateLimit {
            requests_per_second,
            burst,
        })
    }

    #[test]
    fn a_full_bucket_lets_a_burst_through_then_refills_at_the_rate() {
        let limiter = limiter(2, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take(Some(0), t0), Ok(()));
        }
        assert_eq!(
            limiter.take(Some(0), t0),
            Err(Duration::from_millis(500)),
            "one token comes back every 1/2 s"
        );
        assert_eq!(
            limiter.take(Some(0), t0 + Duration::from_millis(250)),
            Err(Duration::from_millis(250))
        );
        assert_eq!(
            limiter.take(Some(0), t0 + Duration::from_millis(500)),
            Ok(())
        );
        // Refilling stops at the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(limiter.take(Some(0), later), Ok(()));
        }
        assert!(limiter.take(Some(0), later).is_err());
    }

    #[test]
    fn each_caller_has_its_own_bucket_and_the_unknown_share_one() {
        let limiter = limiter(1, 1);
        let t0 = Instant::now();
        assert_eq!(limiter.take(Some(0), t0), Ok(()));
        assert!(limiter.take(Some(0), t0).is_err());
        assert_eq!(limiter.take(Some(1), t0), Ok(()));
        assert_eq!(limiter.take(None, t0), Ok(()));
        assert!(limiter.take(None, t0).is_err());
    }

    #[test]
    fn a_clock_read_before_the_last_one_does_not_underflow() {
        let limiter = limiter(1, 1);
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(limiter.take(Some(0), t1), Ok(()));
        assert!(limiter.take(Some(0), t0).is_err());
    }

    #[test]
    fn retry_after_is_whole_seconds_and_never_zero() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
    }

    #[test]
    fn zero_values_are_refused() {
        let zero_rate = RateLimit {
            requests_per_second: 0,
            burst: 1,
        };
        assert!(
            zero_rate
                .check()
                .unwrap_err()
                .contains("requests_per_second")
        );
        let zero_burst = RateLimit {
            requests_per_second: 1,
            burst: 0,
        };
        assert!(zero_burst.check().unwrap_err().contains("burst"));
    }
}
