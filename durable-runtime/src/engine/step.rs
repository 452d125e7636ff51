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
    /// The runtime state at the end of the step.
    pub runtime: RuntimeState,
    pub outcome: Outcome,
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
pub(crate) fn run_step(
    entry: &OrchestratorEntry,
    instance_id: &str,
    now: Millis,
    base: Base<'_>,
    messages: &[TaskMessage],
    prelude: Vec<Command>,
) -> Option<StepRun> {
    let (runtime, is_start) = match &base {
        Base::Start { runtime, .. } => (runtime.clone(), true),
        Base::Resume(s) => (s.runtime.clone(), false),
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
    let pending_can = match &base {
        Base::Resume(s) => s.pending_continue_as_new.clone(),
        Base::Start { .. } => None,
    };
    let input = match &base {
        Base::Start { input, .. } => StepInput::Start(input),
        Base::Resume(s) => StepInput::Resume(&s.state),
    };
    let step = entry.step;
    let result = catch_unwind(AssertUnwindSafe(|| step(&ctx, input)));
    let runtime = ctx.runtime_state();
    let result = match result {
        Ok(r) => r,
        Err(payload) => {
            let message = format!("orchestrator `{}` panicked: {}", entry.name, panic_message(payload.as_ref()));
            events.push(EventKind::ExecutionFailed { message: message.clone() });
            return Some(StepRun {
                events,
                commands: Vec::new(),
                custom_status: None,
                runtime,
                outcome: Outcome::Failed(message),
            });
        }
    };
    let commands = ctx.take_commands();
    events.extend(commands.iter().filter_map(|c| command_event(c, &retry_ids)));
    let (custom_status, can) = ctx.take_step_effects();
    if let Some(cs) = &custom_status {
        events.push(EventKind::CustomStatusSet { status: cs.clone() });
    }
    let can = can.or(pending_can);
    let outcome = match result {
        StepResult::Suspended(state) => Outcome::Suspended(Snapshot {
            orchestrator: entry.name.to_string(),
            version: entry.version,
            fingerprint: entry.fingerprint,
            state,
            runtime: runtime.clone(),
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
