//! The history of an orchestration instance: an append-only log of what happened to it.
//!
//! The history is the audit log users read (`Client::history`), and the source of truth the
//! engine can rebuild an instance's state from (see [`crate::engine::replay`]). Each step of an
//! orchestration appears as an [`EventKind::OrchestratorStarted`] event (whose timestamp is the
//! step's `ctx.now()`), followed by the messages the step consumed and what the step asked for.

use crate::ids::EntityId;
use crate::time::Millis;
use serde::{Deserialize, Serialize};

/// One entry of an instance's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// Position in the history, from 0 (restarts at 0 when the instance continues as new).
    pub seq: u64,
    /// When it was recorded, in milliseconds since the Unix epoch (the backend's clock).
    pub timestamp_ms: Millis,
    /// What happened.
    pub kind: EventKind,
}

impl HistoryEvent {
    /// The time it was recorded.
    pub fn timestamp(&self) -> std::time::SystemTime {
        crate::time::from_millis(self.timestamp_ms)
    }

    /// The event's type (`TaskScheduled`, …) and its fields as `name=value`, payloads as
    /// compact JSON: how a table shows it.
    pub fn describe(&self) -> (String, String) {
        let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&self.kind) else {
            return (format!("{:?}", self.kind), String::new());
        };
        let mut kind = String::new();
        let mut details = Vec::new();
        for (k, v) in fields {
            match (k.as_str(), v) {
                ("type", serde_json::Value::String(t)) => kind = t,
                (_, serde_json::Value::Null) => {}
                // Strings as they are: payloads (JSON text) show as the JSON they hold.
                (_, serde_json::Value::String(s)) => details.push(format!("{k}={}", shorten(&s))),
                (_, v) => details.push(format!("{k}={}", shorten(&v.to_string()))),
            }
        }
        (kind, details.join(" "))
    }
}

/// A time offset in ms as `+1.234s`, `+2m03.456s` or `+72h00m00.000s`.
fn offset_text(ms: Millis) -> String {
    let (s, ms) = (ms / 1000, ms % 1000);
    match s {
        0..60 => format!("+{s}.{ms:03}s"),
        60..3600 => format!("+{}m{:02}.{ms:03}s", s / 60, s % 60),
        _ => format!("+{}h{:02}m{:02}.{ms:03}s", s / 3600, s % 3600 / 60, s % 60),
    }
}

/// At most 60 characters of `s`, with `…` if it was longer.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A history as a table — `#`, the time since its first event, the event, its details — as
/// `durable history` and the dashboard show it:
///
/// ```text
///  #  TIME     EVENT                DETAILS
///  0  +0.000s  ExecutionStarted     input=["Tokyo","Seattle","London"] name=hello_cities
///  1  +0.000s  OrchestratorStarted
///  2  +0.000s  TaskScheduled        attempt=1 id=0 input="Tokyo" name=say_hello
///  3  +0.004s  TaskCompleted        id=0 result="Hello Tokyo!"
/// ```
///
/// ```no_run
/// # async fn f(client: durable_runtime::Client, id: &str) -> Result<(), durable_runtime::Error> {
/// print!("{}", durable_runtime::HistoryTable(&client.history(id).await?));
/// # Ok(()) }
/// ```
pub struct HistoryTable<'a>(pub &'a [HistoryEvent]);

impl std::fmt::Display for HistoryTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let start = self.0.first().map_or(0, |e| e.timestamp_ms);
        let rows: Vec<[String; 4]> = self
            .0
            .iter()
            .map(|e| {
                let (kind, details) = e.describe();
                let offset = e.timestamp_ms.saturating_sub(start);
                [e.seq.to_string(), offset_text(offset), kind, details]
            })
            .collect();
        let header = ["#", "TIME", "EVENT", "DETAILS"];
        let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).chain([header[c].len()]).max().unwrap_or(0);
        let (w0, w1, w2) = (width(0), width(1), width(2));
        writeln!(f, "{:>w0$}  {:<w1$}  {:<w2$}  {}", header[0], header[1], header[2], header[3])?;
        for [seq, time, kind, details] in rows {
            writeln!(f, "{}", format!("{seq:>w0$}  {time:<w1$}  {kind:<w2$}  {details}").trim_end())?;
        }
        Ok(())
    }
}

/// The parent of a sub-orchestration: where its outcome is reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    /// The parent's instance id.
    pub instance_id: String,
    /// The parent's execution that started the child.
    pub execution_id: String,
    /// The parent's task id waiting for the child.
    pub task_id: u64,
}

/// What happened, in one history event. Payloads (inputs, outputs, results, event data) are
/// JSON text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum EventKind {
    /// The execution started.
    ExecutionStarted {
        /// Orchestrator name.
        name: String,
        /// JSON input.
        input: String,
        /// The parent instance, for a sub-orchestration.
        parent: Option<ParentRef>,
        /// The trace context it was started in (`traceparent`), if one was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trace: Option<crate::trace::TraceContext>,
    },
    /// A step of the orchestrator began; the event's timestamp is the step's `ctx.now()`.
    OrchestratorStarted,
    /// An activity was scheduled (attempt `attempt`, from 1).
    TaskScheduled {
        /// Task id.
        id: u64,
        /// Activity name.
        name: String,
        /// JSON input.
        input: String,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// An activity returned.
    TaskCompleted {
        /// Task id.
        id: u64,
        /// JSON result.
        result: String,
    },
    /// An activity attempt failed (returned an error or panicked).
    TaskFailed {
        /// Task id.
        id: u64,
        /// The attempt that failed.
        attempt: u32,
        /// The error message.
        message: String,
    },
    /// A failed activity will be tried again after a backoff.
    TaskRetryScheduled {
        /// Task id.
        id: u64,
        /// The attempt that will run.
        next_attempt: u32,
        /// When, in milliseconds since the Unix epoch.
        fire_at: Millis,
    },
    /// A durable timer was created.
    TimerCreated {
        /// Task id.
        id: u64,
        /// When it fires, in milliseconds since the Unix epoch.
        fire_at: Millis,
    },
    /// A durable timer fired (also the backoff timer of a retried activity).
    TimerFired {
        /// Task id.
        id: u64,
    },
    /// A timer nobody waits for any more was cancelled.
    TimerCancelled {
        /// Task id.
        id: u64,
    },
    /// An external event was delivered (to a waiting task, or buffered until someone waits).
    EventRaised {
        /// Event name.
        name: String,
        /// JSON data.
        data: String,
    },
    /// The orchestrator raised an event on another instance.
    EventSent {
        /// The target instance.
        instance_id: String,
        /// Event name.
        name: String,
        /// JSON data.
        data: String,
    },
    /// A sub-orchestration was started.
    SubOrchestrationCreated {
        /// Task id.
        id: u64,
        /// Orchestrator name.
        name: String,
        /// The child's instance id.
        instance_id: String,
        /// JSON input.
        input: String,
    },
    /// A sub-orchestration completed.
    SubOrchestrationCompleted {
        /// Task id.
        id: u64,
        /// JSON output.
        result: String,
    },
    /// A sub-orchestration failed or was terminated.
    SubOrchestrationFailed {
        /// Task id.
        id: u64,
        /// The failure message.
        message: String,
    },
    /// The orchestrator set (or cleared, with `None`) its custom status.
    CustomStatusSet {
        /// JSON value, or `None` when cleared.
        status: Option<String>,
    },
    /// The instance was suspended.
    ExecutionSuspended {
        /// Why.
        reason: String,
    },
    /// The instance was resumed.
    ExecutionResumed {
        /// Why.
        reason: String,
    },
    /// The instance was terminated.
    ExecutionTerminated {
        /// Why.
        reason: String,
    },
    /// The orchestrator returned `Ok`.
    ExecutionCompleted {
        /// JSON output.
        output: String,
    },
    /// The orchestrator returned `Err`, panicked, or could not run.
    ExecutionFailed {
        /// The failure message.
        message: String,
    },
    /// The orchestrator called `continue_as_new`: the history starts over with this input.
    ContinuedAsNew {
        /// The new JSON input.
        input: String,
    },
    /// A failed instance was rewound: its failed tasks run again.
    ExecutionRewound {
        /// Why.
        reason: String,
    },
    /// An entity operation was called (task `id` waits for its result).
    EntityCalled {
        /// Task id.
        id: u64,
        /// The entity.
        entity: EntityId,
        /// The operation.
        op: String,
        /// JSON input.
        input: String,
    },
    /// An entity operation was signaled (no result).
    EntitySignaled {
        /// The entity.
        entity: EntityId,
        /// The operation.
        op: String,
        /// JSON input.
        input: String,
    },
    /// Locks on entities were requested (task `id` completes once all are held).
    EntityLockRequested {
        /// Task id.
        id: u64,
        /// The entities, sorted.
        entities: Vec<EntityId>,
    },
    /// The locks of lock task `id` were released.
    EntityUnlocked {
        /// The lock task's id.
        id: u64,
    },
    /// An entity operation returned.
    EntityCompleted {
        /// Task id.
        id: u64,
        /// JSON result.
        result: String,
    },
    /// An entity operation failed.
    EntityFailed {
        /// Task id.
        id: u64,
        /// Failure message.
        message: String,
    },
    /// All entities of lock task `id` are held.
    EntityLockAcquired {
        /// The lock task's id.
        id: u64,
    },
}

impl EventKind {
    /// Whether this event ends an execution (completed, failed, terminated, continued as new).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventKind::ExecutionCompleted { .. }
                | EventKind::ExecutionFailed { .. }
                | EventKind::ExecutionTerminated { .. }
                | EventKind::ContinuedAsNew { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_table_shows_offsets_events_and_their_details() {
        let events = [
            HistoryEvent {
                seq: 0,
                timestamp_ms: 1_000,
                kind: EventKind::ExecutionStarted {
                    name: "greet".into(),
                    input: "[\"Oslo\"]".into(),
                    parent: None,
                    trace: None,
                },
            },
            HistoryEvent { seq: 1, timestamp_ms: 1_000, kind: EventKind::OrchestratorStarted },
            HistoryEvent {
                seq: 2,
                timestamp_ms: 3_250,
                kind: EventKind::ExecutionCompleted { output: format!("\"{}\"", "x".repeat(100)) },
            },
        ];
        let table = HistoryTable(&events).to_string();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "#  TIME     EVENT                DETAILS");
        assert_eq!(lines[1], "0  +0.000s  ExecutionStarted     input=[\"Oslo\"] name=greet");
        assert_eq!(lines[2], "1  +0.000s  OrchestratorStarted");
        assert!(lines[3].starts_with("2  +2.250s  ExecutionCompleted   output=\"xxx"), "{}", lines[3]);
        assert!(lines[3].ends_with("x…") && lines[3].chars().count() < 110, "long payloads are cut: {}", lines[3]);
        assert!(HistoryTable(&[]).to_string().starts_with("#  TIME"));
        assert_eq!(offset_text(123_456), "+2m03.456s");
        assert_eq!(offset_text(72 * 3_600_000 + 5), "+72h00m00.005s");
    }
}
