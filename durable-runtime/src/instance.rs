//! Instances: ids, statuses and queries.

use crate::error::Error;
use crate::history::ParentRef;
use crate::time::{Millis, from_millis, to_millis};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::fmt;
use std::time::SystemTime;

/// The longest instance id accepted, in bytes.
pub const MAX_INSTANCE_ID_BYTES: usize = 256;

/// The id of an orchestration instance. Derefs to `str` and displays as the id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceId(String);

impl InstanceId {
    /// A checked instance id: not empty, at most [`MAX_INSTANCE_ID_BYTES`] bytes, no control
    /// characters.
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        validate_instance_id(&id)?;
        Ok(Self(id))
    }
    /// A fresh random id (a UUID).
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The id as a `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Check an instance id: not empty, at most [`MAX_INSTANCE_ID_BYTES`] bytes, no control characters.
pub fn validate_instance_id(id: &str) -> Result<(), Error> {
    let reason = if id.is_empty() {
        Some("it is empty; pass a non-empty id, or use `start` to get a generated one".to_string())
    } else if id.len() > MAX_INSTANCE_ID_BYTES {
        Some(format!(
            "it is {} bytes long, over the limit of {MAX_INSTANCE_ID_BYTES} bytes; use a shorter id (a hash of a long key works)",
            id.len()
        ))
    } else if id.chars().any(char::is_control) {
        Some("it contains control characters; use printable characters only".to_string())
    } else {
        None
    };
    match reason {
        Some(reason) => {
            let shown = if id.len() > 64 {
                let mut end = 64;
                while !id.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{}…", &id[..end])
            } else {
                id.to_string()
            };
            Err(Error::InvalidInstanceId { id: shown, reason })
        }
        None => Ok(()),
    }
}

impl std::ops::Deref for InstanceId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for InstanceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for InstanceId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<InstanceId> for String {
    fn from(id: InstanceId) -> String {
        id.0
    }
}

impl PartialEq<str> for InstanceId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for InstanceId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Where an instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RuntimeStatus {
    /// Created; its first step has not run yet.
    Pending,
    /// Started and not finished.
    Running,
    /// Suspended by `Client::suspend`: it takes no step until resumed; messages wait.
    Suspended,
    /// The orchestrator returned `Ok`.
    Completed,
    /// The orchestrator returned `Err`, panicked, or could not run.
    Failed,
    /// Terminated by `Client::terminate`.
    Terminated,
    /// Called `continue_as_new`; about to start over with the new input.
    ContinuedAsNew,
}

impl RuntimeStatus {
    /// Completed, Failed or Terminated: the instance takes no more steps.
    pub fn is_terminal(self) -> bool {
        matches!(self, RuntimeStatus::Completed | RuntimeStatus::Failed | RuntimeStatus::Terminated)
    }
    /// All statuses.
    pub const ALL: [RuntimeStatus; 7] = [
        RuntimeStatus::Pending,
        RuntimeStatus::Running,
        RuntimeStatus::Suspended,
        RuntimeStatus::Completed,
        RuntimeStatus::Failed,
        RuntimeStatus::Terminated,
        RuntimeStatus::ContinuedAsNew,
    ];
}

impl fmt::Display for RuntimeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What `Client::status` reports about an instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// The orchestrator's name.
    pub name: String,
    /// The instance id.
    pub instance_id: String,
    /// The current execution (a new one starts with each `continue_as_new`).
    pub execution_id: String,
    /// Where it is in its life.
    pub runtime_status: RuntimeStatus,
    /// JSON input of the current execution.
    pub input: String,
    /// JSON output, once completed.
    pub output: Option<String>,
    /// JSON custom status set by the orchestrator.
    pub custom_status: Option<String>,
    /// The failure message, once failed.
    pub error: Option<String>,
    /// Why it is in this status, or why it is not making progress: a suspension or
    /// termination reason, or a version mismatch that keeps it waiting for matching code.
    pub reason: Option<String>,
    /// When it was created (ms since the Unix epoch).
    pub created_ms: Millis,
    /// When its status last changed (ms since the Unix epoch).
    pub updated_ms: Millis,
    /// The parent instance, for a sub-orchestration.
    pub parent: Option<ParentRef>,
    /// The orchestrator version it runs on (`#[orchestrator(version = N)]`; 1 for instances
    /// started before versions were used). 0 until the first step for an instance started by
    /// name: it then runs on the highest version registered on the worker that starts it.
    #[serde(default = "crate::ids::first_version")]
    pub version: u32,
    /// No registered code can run it now (an incompatible change, an unregistered version):
    /// `reason` says why and what to do; it resumes as soon as a worker with matching code runs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blocked: bool,
    /// The trace context it was started in: its steps are children of it (see
    /// [`crate::trace`]). `None` for an entity, and for instances started by a release that
    /// did not record one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::trace::TraceContext>,
}

impl InstanceStatus {
    /// When it was created.
    pub fn created_at(&self) -> SystemTime {
        from_millis(self.created_ms)
    }
    /// When its status last changed.
    pub fn last_updated_at(&self) -> SystemTime {
        from_millis(self.updated_ms)
    }
    /// Whether it has finished: Completed, Failed or Terminated.
    pub fn is_finished(&self) -> bool {
        self.runtime_status.is_terminal()
    }
    /// The output, decoded into `T`. `Error::NoOutput` if it has not completed.
    pub fn output<T: DeserializeOwned>(&self) -> Result<T, Error> {
        match (&self.runtime_status, &self.output) {
            (RuntimeStatus::Completed, Some(json)) => crate::payload::from_json(
                json,
                format!("the output of instance {:?} ({})", self.instance_id, self.name),
            )
            .map_err(Error::Payload),
            _ => Err(Error::NoOutput {
                id: self.instance_id.clone(),
                status: self.runtime_status.to_string(),
                detail: match (&self.error, &self.reason) {
                    (Some(e), _) => format!(": {e}"),
                    (None, Some(r)) => format!(": {r}"),
                    _ => String::new(),
                },
            }),
        }
    }
    /// The custom status, decoded into `T`, if set.
    pub fn custom_status<T: DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        self.custom_status
            .as_deref()
            .map(|json| crate::payload::from_json(json, "the custom status").map_err(Error::Payload))
            .transpose()
    }
    /// The input, decoded into `T`.
    pub fn input<T: DeserializeOwned>(&self) -> Result<T, Error> {
        crate::payload::from_json(&self.input, "the input").map_err(Error::Payload)
    }
}

/// A filter for `Client::list`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceQuery {
    /// Only instances in one of these statuses (all if empty).
    pub statuses: Vec<RuntimeStatus>,
    /// Only instances of this orchestrator.
    pub name: Option<String>,
    /// Only instances created at or after this time (ms since the Unix epoch).
    pub created_from_ms: Option<Millis>,
    /// Only instances created before this time (ms since the Unix epoch).
    pub created_to_ms: Option<Millis>,
    /// Only instances whose id starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id_prefix: Option<String>,
    /// At most this many per page (100 if `None`).
    pub limit: Option<usize>,
    /// Where the previous page ended ([`InstancePage::continuation`]).
    pub continuation: Option<String>,
}

impl InstanceQuery {
    /// All instances, 100 per page.
    pub fn new() -> Self {
        Self::default()
    }
    /// Only instances in this status (call again to add more).
    pub fn with_status(mut self, status: RuntimeStatus) -> Self {
        self.statuses.push(status);
        self
    }
    /// Only instances of this orchestrator.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Only instances created at or after `t`.
    pub fn created_after(mut self, t: SystemTime) -> Self {
        self.created_from_ms = Some(to_millis(t));
        self
    }
    /// Only instances created before `t`.
    pub fn created_before(mut self, t: SystemTime) -> Self {
        self.created_to_ms = Some(to_millis(t));
        self
    }
    /// Only instances whose id starts with `prefix`.
    pub fn with_instance_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.instance_id_prefix = Some(prefix.into());
        self
    }
    /// At most `n` per page.
    pub fn with_limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
    /// The page after the one that returned this continuation.
    pub fn with_continuation(mut self, c: impl Into<String>) -> Self {
        self.continuation = Some(c.into());
        self
    }
    /// Whether `s` passes the filter (continuation aside).
    pub fn matches(&self, s: &InstanceStatus) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&s.runtime_status))
            && self.name.as_ref().is_none_or(|n| *n == s.name)
            && self.created_from_ms.is_none_or(|t| s.created_ms >= t)
            && self.created_to_ms.is_none_or(|t| s.created_ms < t)
            && self.instance_id_prefix.as_ref().is_none_or(|p| s.instance_id.starts_with(p.as_str()))
    }
}

/// The statuses a bulk purge (`Backend::purge_where`) of `query` deletes: the finished ones it
/// names, or all three (Completed, Failed, Terminated) if it names none. `Error::InvalidQuery`
/// if it names a live status (they are never purged: terminate first) or has a continuation
/// (a bulk purge has no pages: it goes on until everything that matches is gone).
pub(crate) fn purge_statuses(query: &InstanceQuery) -> Result<Vec<RuntimeStatus>, Error> {
    if query.continuation.is_some() {
        return Err(Error::InvalidQuery(
            "a bulk purge takes no continuation: it purges every match in one call (use `limit` to purge fewer)"
                .to_string(),
        ));
    }
    let live: Vec<String> = query.statuses.iter().filter(|s| !s.is_terminal()).map(ToString::to_string).collect();
    if !live.is_empty() {
        return Err(Error::InvalidQuery(format!(
            "only finished instances can be purged (Completed, Failed, Terminated), not {}: terminate them first",
            live.join(", ")
        )));
    }
    Ok(if query.statuses.is_empty() {
        RuntimeStatus::ALL.into_iter().filter(|s| s.is_terminal()).collect()
    } else {
        query.statuses.clone()
    })
}

/// One page of `Client::list`, ordered by creation time, then id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstancePage {
    /// The instances.
    pub instances: Vec<InstanceStatus>,
    /// Pass to [`InstanceQuery::with_continuation`] for the next page; `None` on the last.
    pub continuation: Option<String>,
}

impl InstanceStatus {
    /// A status record created at `now`: no output, error, reason or custom status yet.
    pub fn created(
        name: String,
        instance_id: String,
        execution_id: String,
        runtime_status: RuntimeStatus,
        input: String,
        now: Millis,
    ) -> Self {
        InstanceStatus {
            name,
            instance_id,
            execution_id,
            runtime_status,
            input,
            output: None,
            custom_status: None,
            error: None,
            reason: None,
            created_ms: now,
            updated_ms: now,
            parent: None,
            version: crate::ids::FIRST_VERSION,
            blocked: false,
            trace: None,
        }
    }
}

/// The status record of an entity created by its first message: backends call this when a
/// message is sent to an entity instance id (`@name@key`) that does not exist.
pub fn implicit_entity_status(instance_id: &str, now: Millis) -> Option<InstanceStatus> {
    let id = crate::ids::EntityId::from_instance_id(instance_id)?;
    Some(InstanceStatus::created(
        id.name,
        instance_id.to_string(),
        String::new(),
        RuntimeStatus::Running,
        "null".to_string(),
        now,
    ))
}
