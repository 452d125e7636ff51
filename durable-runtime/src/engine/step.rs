//! One step of an orchestrator: deliver messages, run the state machine, record what happened.
//!
//! The same function runs live steps and replayed ones, so a replay reproduces exactly the
//! events a live step recorded.

use super::OrchestratorEntry;
use crate::context::OrchestrationContext;
use crate::history::EventKind;
use crate::messages::{Command, TaskMessage};
use crate::orchestrator::{StepInput, StepResult};
use crate::state::{Applied, RuntimeState, Snapshot};
use crate::time::Millis;
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Where a step starts.
pub(crate) enum Base<'a> {
    /// The first step of an execution.
    Start { input: &'a str, runtime: RuntimeState },
    /// A later step, from a snapshot.
    Resume(&'a Snapshot),
    /// A later step, from a snapshot the caller gives up: its task table is moved into the
    /// step, not copied (a wide fan-out's holds every open task and every result).
    ResumeOwned(Snapshot),
}

/// How a step ended.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Outcome {
    Suspended(Snapshot),
    Completed(String),
    ContinueAsNew(String),
    Failed(String),
    /// The step could not run (unreadable snapshot): nothing of it counts.
    Blocked(String),
}

/// What a step did.
#[derive(Debug)]
pub(crate) struct StepRun {
    /// History events after `OrchestratorStarted`.
    pub events: Vec<EventKind>,
    /// Commands, in order (those of delivered messages first).
    pub commands: Vec<Command>,
    /// New custom status, if set.
    pub custom_status: Option<Option<String>>,
    /// The runtime state at the end of the step; empty when it suspended (the snapshot in
    /// [`Outcome::Suspended`] holds it).
    pub runtime: RuntimeState,
    pub outcome: Outcome,
}

impl StepRun {
    /// The step failed the execution with `message`: nothing it asked for is sent.
    fn failed(mut events: Vec<EventKind>, runtime: RuntimeState, message: String) -> Self {
        events.push(EventKind::ExecutionFailed { message: message.clone() });
        StepRun { events, commands: Vec::new(), custom_status: None, runtime, outcome: Outcome::Failed(message) }
    }
}

/// The history event recording a delivered message.
pub(crate) fn message_event(msg: &TaskMessage) -> EventKind {
    match msg.clone() {
        TaskMessage::ActivityCompleted { id, result } => EventKind::TaskCompleted { id, result },
        TaskMessage::ActivityFailed { id, attempt, message } => EventKind::TaskFailed { id, attempt, message },
        TaskMessage::TimerFired { id } => EventKind::TimerFired { id },
        TaskMessage::EventRaised { name, data } => EventKind::EventRaised { name, data },
        TaskMessage::SubOrchestrationCompleted { id, result } => EventKind::SubOrchestrationCompleted { id, result },
        TaskMessage::SubOrchestrationFailed { id, message } => EventKind::SubOrchestrationFailed { id, message },
        TaskMessage::EntityCompleted { id, result } => EventKind::EntityCompleted { id, result },
        TaskMessage::EntityFailed { id, message } => EventKind::EntityFailed { id, message },
        TaskMessage::LockAcquired { id } => EventKind::EntityLockAcquired { id },
    }
}

/// The message a recorded event stands for, if it records a delivered message.
pub(crate) fn event_message(ev: &EventKind) -> Option<TaskMessage> {
    Some(match ev.clone() {
        EventKind::TaskCompleted { id, result } => TaskMessage::ActivityCompleted { id, result },
        EventKind::TaskFailed { id, attempt, message } => TaskMessage::ActivityFailed { id, attempt, message },
        EventKind::TimerFired { id } => TaskMessage::TimerFired { id },
        EventKind::EventRaised { name, data } => TaskMessage::EventRaised { name, data },
        EventKind::SubOrchestrationCompleted { id, result } => TaskMessage::SubOrchestrationCompleted { id, result },
        EventKind::SubOrchestrationFailed { id, message } => TaskMessage::SubOrchestrationFailed { id, message },
        EventKind::EntityCompleted { id, result } => TaskMessage::EntityCompleted { id, result },
        EventKind::EntityFailed { id, message } => TaskMessage::EntityFailed { id, message },
        EventKind::EntityLockAcquired { id } => TaskMessage::LockAcquired { id },
        _ => return None,
    })
}

fn command_event(cmd: &Command, retry_ids: &BTreeSet<u64>) -> Option<EventKind> {
    Some(match cmd.clone() {
        Command::ScheduleActivity { id, name, input, attempt } => EventKind::TaskScheduled { id, name, input, attempt },
        // The backoff timer of a retried activity is recorded as `TaskRetryScheduled`.
        Command::CreateTimer { id, .. } if retry_ids.contains(&id) => return None,
        Command::CreateTimer { id, fire_at } => EventKind::TimerCreated { id, fire_at },
        Command::CancelTimer { id } => EventKind::TimerCancelled { id },
        Command::StartSubOrchestration { id, name, instance_id, input, .. } => {
            EventKind::SubOrchestrationCreated { id, name, instance_id, input }
        }
        Command::SendEvent { instance_id, name, data } => EventKind::EventSent { instance_id, name, data },
        Command::CallEntity { id, entity, op, input } => EventKind::EntityCalled { id, entity, op, input },
        Command::SignalEntity { entity, op, input } => EventKind::EntitySignaled { entity, op, input },
        Command::LockEntities { id, entities } => EventKind::EntityLockRequested { id, entities },
        Command::UnlockEntities { id, .. } => EventKind::EntityUnlocked { id },
    })
}

/// The task a command opens, if it opens one.
fn opened_task(cmd: &Command) -> Option<u64> {
    match cmd {
        Command::ScheduleActivity { id, .. }
        | Command::CreateTimer { id, .. }
        | Command::StartSubOrchestration { id, .. }
        | Command::CallEntity { id, .. }
        | Command::LockEntities { id, .. } => Some(*id),
        Command::CancelTimer { .. }
        | Command::SendEvent { .. }
        | Command::SignalEntity { .. }
        | Command::UnlockEntities { .. } => None,
    }
}

/// Why a step of orchestrator `name` fails for a payload over `limit`, if it does: the first
/// of its commands' payloads, its custom status and its `output` (what it is, and the JSON)
/// over the limit.
fn oversized(
    name: &str,
    commands: &[Command],
    custom_status: Option<&Option<String>>,
    output: Option<(&str, &String)>,
    limit: usize,
) -> Option<String> {
    // What is named only once a payload is found over the limit (steps stay allocation-free).
    let over = |json: &str, what: &dyn Fn() -> String| {
        (json.len() > limit).then(|| super::payload_too_large(what(), json.len(), limit))
    };
    let from_commands = commands.iter().find_map(|c| match c {
        Command::ScheduleActivity { name: activity, input, .. } => {
            over(input, &|| format!("the input of activity `{activity}` scheduled by orchestrator `{name}`"))
        }
        Command::StartSubOrchestration { name: child, input, .. } => {
            over(input, &|| format!("the input of sub-orchestration `{child}` started by orchestrator `{name}`"))
        }
        Command::SendEvent { instance_id, name: event, data } => {
            over(data, &|| format!("the data of event `{event}` sent to instance {instance_id:?}"))
        }
        Command::CallEntity { entity, op, input, .. } | Command::SignalEntity { entity, op, input } => {
            over(input, &|| format!("the input of operation `{op}` on entity `{entity}` from orchestrator `{name}`"))
        }
        _ => None,
    });
    from_commands
        .or_else(|| {
            let status = custom_status?.as_deref()?;
            over(status, &|| format!("the custom status of orchestrator `{name}`"))
        })
        .or_else(|| {
            let (what, json) = output?;
            over(json, &|| format!("{what} orchestrator `{name}`"))
        })
}

/// The limit a recorded step failed on for a payload over it, if its failure says so
/// (replaying it needs the same limit to fail the same way).
pub(crate) fn failed_on_limit(step: &[EventKind]) -> Option<usize> {
    let Some(EventKind::ExecutionFailed { message }) = step.last() else { return None };
    let rest = &message[message.find(" bytes, over the limit of ")? + " bytes, over the limit of ".len()..];
    rest[..rest.find(" bytes")?].parse().ok()
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    }
}

/// Run one step: apply `messages`, then (if any was not dropped, or this is a start, or there
/// are `prelude` commands) run the state machine. `None` if nothing needed a step.
///
/// A step that produces a payload over `max_payload` bytes (its output, custom status,
/// `continue_as_new` input, or the input or data of a command) fails the execution instead:
/// its commands are dropped and `ExecutionFailed` says which payload and the limit.
pub(crate) fn run_step(
    entry: &OrchestratorEntry,
    instance_id: &str,
    now: Millis,
    base: Base<'_>,
    messages: &[TaskMessage],
    prelude: Vec<Command>,
    max_payload: usize,
) -> Option<StepRun> {
    // The state machine's input: the execution's input, or the snapshot's state (borrowed or
    // owned with it).
    enum From<'a> {
        Start(&'a str),
        Borrowed(&'a [u8]),
        Owned(Vec<u8>),
    }
    let (runtime, is_start, pending_can, from) = match base {
        Base::Start { input, runtime } => (runtime, true, None, From::Start(input)),
        Base::Resume(s) => (s.runtime.clone(), false, s.pending_continue_as_new.clone(), From::Borrowed(&s.state)),
        Base::ResumeOwned(s) => {
            let Snapshot { runtime, pending_continue_as_new, state, .. } = s;
            (runtime, false, pending_continue_as_new, From::Owned(state))
        }
    };
    let ctx = OrchestrationContext::new(instance_id, now, runtime);
    let mut any = is_start || !prelude.is_empty();
    ctx.with(|st| st.commands.extend(prelude));
    let mut events = Vec::new();
    let mut retry_ids = BTreeSet::new();
    for msg in messages {
        match ctx.apply(msg.clone()) {
            Applied::Dropped => {}
            Applied::Delivered => {
                events.push(message_event(msg));
                any = true;
            }
            Applied::RetryScheduled { id, next_attempt, fire_at } => {
                events.push(message_event(msg));
                events.push(EventKind::TaskRetryScheduled { id, next_attempt, fire_at });
                retry_ids.insert(id);
                any = true;
            }
        }
    }
    if !any {
        return None;
    }
    let input = match &from {
        From::Start(input) => StepInput::Start(input),
        From::Borrowed(state) => StepInput::Resume(state),
        From::Owned(state) => StepInput::Resume(state),
    };
    let step = entry.step;
    let result = catch_unwind(AssertUnwindSafe(|| step(&ctx, input)));
    let mut runtime = ctx.take_runtime_state();
    let result = match result {
        Ok(r) => r,
        Err(payload) => {
            let message = format!("orchestrator `{}` panicked: {}", entry.name, panic_message(payload.as_ref()));
            return Some(StepRun::failed(events, runtime, message));
        }
    };
    let commands = ctx.take_commands();
    let (custom_status, can) = ctx.take_step_effects();
    let can = can.or(pending_can);
    let output = match (&result, &can) {
        (StepResult::Completed(_), Some(input)) => Some(("the input of `continue_as_new` of", input)),
        (StepResult::Completed(output), None) => Some(("the output of", output)),
        _ => None,
    };
    if let Some(message) = oversized(entry.name, &commands, custom_status.as_ref(), output, max_payload) {
        // The step's commands are dropped: so is the bookkeeping of the tasks they opened.
        for c in &commands {
            if let Some(id) = opened_task(c) {
                runtime.open.remove(&id);
                runtime.locks.remove(&id);
            }
        }
        return Some(StepRun::failed(events, runtime, message));
    }
    events.extend(commands.iter().filter_map(|c| command_event(c, &retry_ids)));
    if let Some(cs) = &custom_status {
        events.push(EventKind::CustomStatusSet { status: cs.clone() });
    }
    let outcome = match result {
        StepResult::Suspended(state) => Outcome::Suspended(Snapshot {
            orchestrator: entry.name.to_string(),
            version: entry.version,
            fingerprint: entry.fingerprint,
            state,
            runtime: std::mem::take(&mut runtime),
            pending_continue_as_new: can,
        }),
        StepResult::Completed(output) => match can {
            Some(input) => {
                events.push(EventKind::ContinuedAsNew { input: input.clone() });
                Outcome::ContinueAsNew(input)
            }
            None => {
                events.push(EventKind::ExecutionCompleted { output: output.clone() });
                Outcome::Completed(output)
            }
        },
        StepResult::Failed(message) | StepResult::BadInput(message) => {
            events.push(EventKind::ExecutionFailed { message: message.clone() });
            Outcome::Failed(message)
        }
        StepResult::BadState(message) => Outcome::Blocked(message),
    };
    Some(StepRun { events, commands, custom_status, runtime, outcome })
}
