//! The endpoint's request budget: a token bucket taken before any review, so a flood of
//! requests (authenticated or not) costs the API server at most `rate` TokenReviews a second.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `burst` requests at once, refilled at `rate` a second.
#[derive(Debug)]
pub(super) struct Budget {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Budget {
    pub(super) fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: rate.max(0.001),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// One request's share, or how long until there is one.
    pub(super) fn take(&self) -> Result<(), Duration> {
        self.take_at(Instant::now())
    }

    fn take_at(&self, now: Instant) -> Result<(), Duration> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = *state;
        let tokens = (tokens + now.saturating_duration_since(last).as_secs_f64() * self.rate)
            .min(self.burst);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            return Ok(());
        }
        *state = (tokens, now);
        Err(Duration::from_secs_f64((1.0 - tokens) / self.rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let budget = Budget::new(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(budget.take_at(t0).is_ok());
        }
        let wait = budget.take_at(t0).unwrap_err();
        assert!(
            wait <= Duration::from_millis(500) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert!(budget.take_at(t0 + Duration::from_millis(500)).is_ok());
        assert!(budget.take_at(t0 + Duration::from_millis(500)).is_err());
        // Refilled, never above the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(budget.take_at(later).is_ok());
        }
        assert!(budget.take_at(later).is_err());
    }
}
