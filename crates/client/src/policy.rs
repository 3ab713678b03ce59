//! When a token source refreshes and how long it waits after a failure.

use std::time::Duration;

use rand::Rng;

/// When a cached token is replaced.
///
/// A token's lifetime is taken as the issuer's `expires_in` less one second
/// (it counts whole seconds, so up to one may be gone already). It is
/// refreshed once `refresh_fraction` of that lifetime has passed,
/// plus a random share of up to `jitter` of its lifetime, so replicas that
/// started together do not all ask the issuer at the same moment. It is
/// served until `expiry_margin` before it expires (a tenth of the lifetime
/// when that is shorter), which absorbs network delays between
/// here and the callee.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshPolicy {
    /// Share of the lifetime after which a refresh starts (default 0.75).
    pub refresh_fraction: f64,
    /// Largest random share of the lifetime added to it (default 0.05).
    pub jitter: f64,
    /// How long before its expiry a token is no longer handed out
    /// (default 5 s, at most a tenth of the lifetime).
    pub expiry_margin: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            refresh_fraction: 0.75,
            jitter: 0.05,
            expiry_margin: Duration::from_secs(5),
        }
    }
}

impl RefreshPolicy {
    /// `(refresh after, stop serving after)` for a token the issuer said
    /// expires in `expires_in`.
    pub(crate) fn schedule(&self, expires_in: Duration) -> (Duration, Duration) {
        // `expires_in` counts whole seconds from a whole-second issue time:
        // up to one second of it may be gone already.
        let lifetime = if expires_in > Duration::from_secs(1) {
            expires_in - Duration::from_secs(1)
        } else {
            expires_in / 2
        };
        let fraction = self.refresh_fraction.clamp(0.0, 1.0);
        let jitter = self.jitter.clamp(0.0, 1.0 - fraction);
        let share = fraction + rand::rng().random_range(0.0..=jitter);
        let usable = lifetime.saturating_sub(self.expiry_margin.min(lifetime / 10));
        (lifetime.mul_f64(share).min(usable), usable)
    }
}

/// How long a token source waits after a failed fetch.
///
/// Transient failures (issuer unreachable, 5xx, rate limited) wait
/// `initial`, doubling per consecutive failure up to `max`; permanent ones
/// (`invalid_client`, `invalid_scope`) wait `permanent_initial`, doubling up
/// to `permanent_max`. Each wait is randomised to between half and all of
/// its value (jitter), and is never shorter than a `Retry-After` the issuer
/// sent. While waiting, callers without a valid token get
/// [`TokenError::BackingOff`](crate::TokenError::BackingOff) at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First wait after a transient failure (default 200 ms).
    pub initial: Duration,
    /// Longest wait after transient failures (default 30 s).
    pub max: Duration,
    /// First wait after a permanent failure (default 10 s).
    pub permanent_initial: Duration,
    /// Longest wait after permanent failures (default 5 min).
    pub permanent_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
            permanent_initial: Duration::from_secs(10),
            permanent_max: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th consecutive failure (1-based).
    pub(crate) fn delay(
        &self,
        failures: u32,
        permanent: bool,
        retry_after: Option<Duration>,
    ) -> Duration {
        let (initial, max) = if permanent {
            (self.permanent_initial, self.permanent_max)
        } else {
            (self.initial, self.max)
        };
        let doublings = failures.saturating_sub(1).min(30);
        let ceiling = initial.saturating_mul(1 << doublings).min(max);
        let jittered = ceiling.mul_f64(rand::rng().random_range(0.5..=1.0));
        jittered.max(retry_after.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_starts_between_the_fraction_and_the_jitter() {
        let policy = RefreshPolicy::default();
        for _ in 0..100 {
            let (refresh, usable) = policy.schedule(Duration::from_secs(3601));
            assert!(refresh >= Duration::from_secs(2700) && refresh <= Duration::from_secs(2880));
            assert_eq!(usable, Duration::from_secs(3595));
        }
        // A short lifetime keeps a proportionate margin.
        let (refresh, usable) = policy.schedule(Duration::from_secs(5));
        assert!(refresh >= Duration::from_secs(3) && refresh <= Duration::from_millis(3600));
        assert_eq!(usable, Duration::from_millis(3600));
    }

    #[test]
    fn waits_double_up_to_the_ceiling_and_honour_retry_after() {
        let policy = RetryPolicy::default();
        let first = policy.delay(1, false, None);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
        let fourth = policy.delay(4, false, None);
        assert!(fourth >= Duration::from_millis(800) && fourth <= Duration::from_millis(1600));
        assert!(policy.delay(40, false, None) <= Duration::from_secs(30));
        assert!(policy.delay(1, true, None) >= Duration::from_secs(5));
        assert_eq!(
            policy.delay(1, false, Some(Duration::from_secs(60))),
            Duration::from_secs(60)
        );
    }
}
