//! Error types: what activities, orchestrators, tasks and the runtime report.

use std::fmt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error an activity returns.
///
/// Converts from any `std::error::Error` (so `?` works on I/O and parse errors), from `String`
/// and from `&str`:
///
/// ```
/// use durable_runtime::ActivityError;
/// fn parse(s: &str) -> Result<u32, ActivityError> {
///     if s.is_empty() {
///         return Err("empty input".into());
///     }
///     Ok(s.parse::<u32>()?)
/// }
/// assert_eq!(parse("").unwrap_err().message(), "empty input");
/// assert!(parse("x").unwrap_err().message().contains("invalid digit"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ActivityError {
    message: String,
}

impl ActivityError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
    /// The message, as the orchestrator will see it in [`TaskError::message`].
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: Into<BoxError>> From<E> for ActivityError {
    fn from(e: E) -> Self {
        let e: BoxError = e.into();
        Self { message: e.to_string() }
    }
}

impl fmt::Debug for ActivityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActivityError({:?})", self.message)
    }
}

impl fmt::Display for ActivityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The error an orchestrator returns; the instance then ends `Failed` with this message.
///
/// Converts from any `std::error::Error` — including [`TaskError`], so `?` on an awaited task
/// works — and from `String` and `&str`.
#[derive(Clone, PartialEq, Eq)]
pub struct OrchestrationError {
    message: String,
}

impl OrchestrationError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
    /// The message recorded on the failed instance.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: Into<BoxError>> From<E> for OrchestrationError {
    fn from(e: E) -> Self {
        let e: BoxError = e.into();
        Self { message: e.to_string() }
    }
}

impl fmt::Debug for OrchestrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrchestrationError({:?})", self.message)
    }
}

impl fmt::Display for OrchestrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why a durable task failed, as an orchestrator sees it when it awaits the task.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum TaskErrorKind {
    /// The activity returned an error, or panicked (after its retries, if any).
    ActivityFailed,
    /// The sub-orchestration failed or was terminated.
    SubOrchestrationFailed,
    /// The entity operation failed.
    EntityFailed,
    /// The result did not deserialize into the type the orchestrator expects.
    BadResult,
    /// The task could not be scheduled (unknown name, bad input, …).
    ScheduleFailed,
}

/// A failed durable task: what `.await` on a task gives in its `Err`.
///
/// Displays the failing activity's message, and converts into [`OrchestrationError`] with `?`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskError {
    /// Why it failed.
    pub kind: TaskErrorKind,
    /// The failing task's name (activity, orchestrator or entity operation).
    pub name: String,
    /// The error message, as the activity reported it.
    pub message: String,
}

impl TaskError {
    /// The error message of the failed task.
    pub fn message(&self) -> &str {
        &self.message
    }
    pub(crate) fn new(kind: TaskErrorKind, name: impl Into<String>, message: impl Into<String>) -> Self {
        Self { kind, name: name.into(), message: message.into() }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TaskError {}

/// The runtime's error: what `Client`, `Worker` and the backends return.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An instance id that is empty, too long, or contains control characters.
    #[error("invalid instance id {id:?}: {reason}")]
    InvalidInstanceId {
        /// The id given.
        id: String,
        /// What is wrong with it and what to do.
        reason: String,
    },
    /// Starting an instance whose id is already in use by a live instance.
    #[error("instance {0:?} already exists and has not finished; pick another id, or terminate or purge it first")]
    InstanceAlreadyExists(String),
    /// No instance with this id.
    #[error("no instance with id {0:?}")]
    InstanceNotFound(String),
    /// A schedule refused where it was given: a cron expression, a time zone or an id that is
    /// wrong. `field` names the part (`minute`, `hour`, `day-of-month`, `month`,
    /// `day-of-week`, `second`, `expression`, `time zone`, `id`).
    #[error("invalid schedule: {reason}")]
    InvalidSchedule {
        /// The part of the schedule that is wrong.
        field: String,
        /// What is wrong with it and what is expected.
        reason: String,
    },
    /// Creating a schedule whose id is already in use by a live schedule.
    #[error("schedule {0:?} already exists; pick another id, or delete it first (`Client::delete_schedule`)")]
    ScheduleAlreadyExists(String),
    /// No schedule with this id.
    #[error("no schedule with id {0:?}")]
    ScheduleNotFound(String),
    /// An orchestrator name no worker registered.
    #[error("unknown orchestrator {name:?}: no orchestrator with that name is registered{known}")]
    UnknownOrchestrator {
        /// The name asked for.
        name: String,
        /// The names that are registered, for the message.
        known: String,
    },
    /// A value that could not be serialized or deserialized.
    #[error("{0}")]
    Payload(String),
    /// A payload larger than the configured limit.
    #[error(
        "{what} is {size} bytes, over the limit of {limit} bytes; send a reference (a key or URL) instead of the data, or raise the limit with `max_payload_bytes`"
    )]
    PayloadTooLarge {
        /// What the payload was (input, output, event data …).
        what: String,
        /// Its size in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The operation does not apply to the instance in its current state.
    #[error("instance {id:?} is {status}: {what}")]
    InvalidState {
        /// The instance.
        id: String,
        /// Its current status.
        status: String,
        /// What was attempted and why it does not apply.
        what: String,
    },
    /// Waiting for an instance took longer than the timeout.
    #[error("instance {id:?} did not finish within {timeout:?} (status {status})")]
    Timeout {
        /// The instance.
        id: String,
        /// The timeout given.
        timeout: std::time::Duration,
        /// Its status when the wait gave up.
        status: String,
    },
    /// The instance finished without the output asked for (failed, terminated, …).
    #[error("instance {id:?} has no output: it is {status}{detail}")]
    NoOutput {
        /// The instance.
        id: String,
        /// Its status.
        status: String,
        /// The failure message, if any.
        detail: String,
    },
    /// The worker or backend was shut down.
    #[error("shut down")]
    Shutdown,
    /// An error of the storage backend (connection, protocol, script).
    #[error("backend error: {0}")]
    Backend(String),
    /// A worker tried to commit a step of an instance it no longer holds the lock of (another
    /// worker took it over); nothing was written.
    #[error("the lock on instance {0:?} was lost; the step was not committed and will run again")]
    LockLost(String),
    /// Replaying an instance's history did not reproduce it: the orchestrator's code is not
    /// deterministic, or differs from the code that wrote the history.
    #[error("{0}")]
    Nondeterminism(String),
    /// The worker configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A query that does not apply to the call it was given to (a bulk purge of live
    /// statuses, say): the message says what is wrong and what to do.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
}

/// What a transient error says about the call that got it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transient {
    /// The call never reached the backend (the connection was refused, Redis was still loading
    /// its data): making it again cannot apply it twice.
    NotSent,
    /// The connection dropped while the call was on its way or its reply was (broken pipe,
    /// reset, timeout): the backend may or may not have applied it.
    Unknown,
}

impl Error {
    /// Whether the error says the backend could not be reached for a moment — the connection
    /// was refused, reset or dropped, an I/O error, Redis still loading its data after a
    /// restart — so that the same call may succeed if made again. `Client` retries these
    /// itself (see `Client::with_transient_retry`).
    pub fn is_transient(&self) -> bool {
        self.transient().is_some()
    }

    /// How a transient error left the call, or `None` if the error is not transient.
    ///
    /// Backends report connection failures as [`Error::Backend`] with the driver's message
    /// (`redis: HGET: broken pipe`), so this reads the message.
    pub(crate) fn transient(&self) -> Option<Transient> {
        let Error::Backend(message) = self else { return None };
        let m = message.to_ascii_lowercase();
        // Refused before anything was sent: nothing was applied.
        const NOT_SENT: &[&str] = &["connection refused", "busyloading", "loading the dataset"];
        // The connection broke with the call in flight: it may have been applied.
        const UNKNOWN: &[&str] = &[
            "broken pipe",
            "connection reset",
            "connection aborted",
            "unexpected end of file",
            "not connected",
            "timed out",
            "(os error",
            " - io",
            "tryagain",
            "masterdown",
            "clusterdown",
        ];
        if NOT_SENT.iter().any(|p| m.contains(p)) {
            Some(Transient::NotSent)
        } else if UNKNOWN.iter().any(|p| m.contains(p)) {
            Some(Transient::Unknown)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, Transient};

    #[test]
    fn connection_errors_are_transient_and_others_are_not() {
        let t = |m: &str| Error::Backend(m.to_string()).transient();
        assert_eq!(t("redis: HGET: broken pipe"), Some(Transient::Unknown));
        assert_eq!(t("redis: HGET: Connection reset by peer (os error 104)"), Some(Transient::Unknown));
        assert_eq!(t("redis: connecting: Connection refused (os error 111)"), Some(Transient::NotSent));
        assert_eq!(t("redis: HGET: BusyLoading: Redis is loading the dataset in memory"), Some(Transient::NotSent));
        assert_eq!(t("redis: loading instances: timed out"), Some(Transient::Unknown));
        assert_eq!(t("redis: loading a script: NOPERM this user has no permissions"), None);
        assert_eq!(t("redis: an instance status does not deserialize: EOF"), None);
        assert!(!Error::InstanceNotFound("x".into()).is_transient());
        assert!(!Error::Shutdown.is_transient());
    }
}
