//! Retry policies for activities.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How an activity is retried when it fails: attempts and backoff, kept as durable timers.
///
/// ```
/// use durable_runtime::RetryPolicy;
/// use std::time::Duration;
/// let p = RetryPolicy::exponential(4, Duration::from_secs(1)).with_max_delay(Duration::from_secs(3));
/// assert_eq!(p.delay_after(1), Some(Duration::from_secs(1)));
/// assert_eq!(p.delay_after(2), Some(Duration::from_secs(2)));
/// assert_eq!(p.delay_after(3), Some(Duration::from_secs(3))); // capped
/// assert_eq!(p.delay_after(4), None); // no attempts left
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Total attempts, the first one included.
    pub max_attempts: u32,
    /// Delay before the second attempt.
    pub first_delay: Duration,
    /// Factor applied to the delay after each failed attempt.
    pub backoff_coefficient: f64,
    /// Upper bound of the delay.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// `max_attempts` attempts in all, waiting `first_delay`, then twice that, and so on.
    pub fn exponential(max_attempts: u32, first_delay: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            first_delay,
            backoff_coefficient: 2.0,
            max_delay: Duration::from_secs(3600),
        }
    }
    /// `max_attempts` attempts in all, `delay` apart.
    pub fn fixed(max_attempts: u32, delay: Duration) -> Self {
        Self::exponential(max_attempts, delay).with_backoff_coefficient(1.0)
    }
    /// Factor applied to the delay after each failed attempt (at least 1).
    pub fn with_backoff_coefficient(mut self, c: f64) -> Self {
        self.backoff_coefficient = if c.is_finite() && c >= 1.0 { c } else { 1.0 };
        self
    }
    /// Upper bound of the delay between attempts.
    pub fn with_max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }
    /// The delay after failed attempt number `attempt` (1-based), or `None` when none is left.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let factor = self.backoff_coefficient.powi(attempt.saturating_sub(1) as i32);
        let secs = (self.first_delay.as_secs_f64() * factor).min(self.max_delay.as_secs_f64());
        Some(Duration::from_secs_f64(secs.max(0.0)))
    }
}
