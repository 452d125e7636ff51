//! Riding out a backend that cannot be reached for a moment (Redis restarting, a connection
//! reset): calls that fail with a transient error ([`Error::is_transient`]) are made again
//! with exponential backoff until a deadline.
//!
//! Only calls that are safe to repeat are repeated blindly: reads, and writes whose second
//! application changes nothing ([`Repeat::Safe`]). A write that would apply twice
//! ([`Repeat::IfNotSent`]: an event, an entity signal) is repeated only when the error says it
//! never reached the backend; otherwise the caller gets an error saying the outcome is unknown.

use crate::error::{Error, Transient};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// The first pause after a transient error; it doubles up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(50);
/// The longest pause between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// Pauses between attempts, doubling, until a deadline.
#[derive(Debug)]
pub(crate) struct Backoff {
    deadline: Instant,
    delay: Duration,
}

impl Backoff {
    /// Attempts until `deadline`.
    pub(crate) fn until(deadline: Instant) -> Self {
        Self { deadline, delay: FIRST_DELAY }
    }

    /// Attempts for `budget` from now.
    pub(crate) fn within(budget: Duration) -> Self {
        Self::until(Instant::now() + budget)
    }

    /// Pause before the next attempt: `false` (at once) if the deadline has passed.
    pub(crate) async fn pause(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.delay.min(self.deadline - now)).await;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        true
    }
}

/// Whether a call may be made again after a transient error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Always: a read, or a write that changes nothing the second time.
    Safe,
    /// Only if it surely did not reach the backend: applying it twice would do it twice.
    IfNotSent,
}

/// Make `call` until it succeeds, fails with an error that is not transient, or `backoff` runs
/// out (then its last error). `what` names the call in logs and errors.
pub(crate) async fn retry<T, F, Fut>(
    backoff: &mut Backoff,
    what: impl std::fmt::Display,
    repeat: Repeat,
    mut call: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    loop {
        let e = match call().await {
            Err(e) => e,
            ok => return ok,
        };
        match e.transient() {
            None => return Err(e),
            Some(Transient::Unknown) if repeat == Repeat::IfNotSent => return Err(outcome_unknown(e, what)),
            Some(_) => {
                tracing::debug!(call = %what, error = %e, "the backend cannot be reached; trying again");
                if !backoff.pause().await {
                    return Err(e);
                }
            }
        }
    }
}

/// The error of a write that may or may not have been applied, and is not made again.
pub(crate) fn outcome_unknown(e: Error, what: impl std::fmt::Display) -> Error {
    match e {
        Error::Backend(m) => Error::Backend(format!(
            "{m}; the connection dropped after {what} was sent, so it may or may not have been applied, \
             and it was not sent again because applying it twice would do it twice: check before repeating it"
        )),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn err(m: &str) -> Error {
        Error::Backend(format!("redis: HGET: {m}"))
    }

    #[tokio::test]
    async fn safe_calls_are_repeated_until_they_succeed_or_the_deadline() {
        let n = AtomicU32::new(0);
        let r = retry(&mut Backoff::within(Duration::from_secs(5)), "a read", Repeat::Safe, || async {
            if n.fetch_add(1, Ordering::SeqCst) < 3 { Err(err("broken pipe")) } else { Ok(7) }
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(n.load(Ordering::SeqCst), 4);
        let started = Instant::now();
        let r: Result<(), _> =
            retry(&mut Backoff::within(Duration::from_millis(300)), "a read", Repeat::Safe, || async {
                Err(err("Connection refused (os error 111)"))
            })
            .await;
        assert!(r.unwrap_err().to_string().contains("Connection refused"));
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "{took:?}");
    }

    #[tokio::test]
    async fn writes_that_may_have_been_applied_are_not_repeated() {
        let n = AtomicU32::new(0);
        let r: Result<(), _> =
            retry(&mut Backoff::within(Duration::from_secs(5)), "the event", Repeat::IfNotSent, || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(err("broken pipe"))
            })
            .await;
        let e = r.unwrap_err().to_string();
        assert!(e.contains("broken pipe; the connection dropped after the event was sent"), "{e}");
        assert_eq!(n.load(Ordering::SeqCst), 1);
        // Refused before it was sent: repeated.
        let n = AtomicU32::new(0);
        let r = retry(&mut Backoff::within(Duration::from_secs(5)), "the event", Repeat::IfNotSent, || async {
            if n.fetch_add(1, Ordering::SeqCst) < 2 { Err(err("Connection refused (os error 111)")) } else { Ok(()) }
        })
        .await;
        assert!(r.is_ok());
        assert_eq!(n.load(Ordering::SeqCst), 3);
        // Not transient: returned at once.
        let r: Result<(), _> = retry(&mut Backoff::within(Duration::from_secs(5)), "x", Repeat::Safe, || async {
            Err(Error::InstanceNotFound("i".into()))
        })
        .await;
        assert!(matches!(r, Err(Error::InstanceNotFound(_))));
    }
}
