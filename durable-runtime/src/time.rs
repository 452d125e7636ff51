//! Time as the runtime stores it: milliseconds since the Unix epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// A time as [`Millis`] (0 before the epoch).
pub(crate) fn to_millis(t: SystemTime) -> Millis {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// [`Millis`] as a time.
pub(crate) fn from_millis(ms: Millis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}
