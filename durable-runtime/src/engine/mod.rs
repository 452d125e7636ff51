//! The engine: steps an orchestration instance, independently of the backend.
//!
//! [`process`] takes an [`OrchestrationWorkItem`] (status, snapshot and pending messages of one
//! instance) and returns the [`StepCommit`] to write: history events, snapshot, status, and the
//! outbound actions (activities to run, timers to arm or cancel, messages to other instances).
//! It does no I/O; the worker fetches, calls it, and commits.
//!
//! Rules it follows:
//! - a panic in the orchestrator fails the instance with the panic message;
//! - a snapshot written by a different version of the orchestrator (fingerprint mismatch), or an
//!   instance whose orchestrator is not registered here, is left as it is: its messages stay in
//!   its inbox, its status says why, and it resumes once matching code is deployed;
//! - starting an unknown orchestrator, or with an input that does not deserialize, fails the
//!   instance with a clear message;
//! - `continue_as_new` restarts the history with the new input, carrying unconsumed events over;
//! - a missing snapshot is rebuilt by replaying the history ([`replay()`]).

mod entity;
mod replay;
mod step;
pub mod store;

pub(crate) use step::panic_message;

pub use entity::{EntityApplyFn, EntityEntry};

pub use replay::{Replayed, replay, replay_orchestrator};

use crate::context::OrchestrationContext;
use crate::history::{EventKind, HistoryEvent, ParentRef};
use crate::ids::{EntityReply, LockRequest, new_execution_id};
use crate::instance::{InstanceStatus, RuntimeStatus};
use crate::messages::{Command, InstanceMessage, TaskMessage};
use crate::orchestrator::{Orchestrator, StepInput, StepResult};
use crate::state::{OpenTask, RuntimeState, Snapshot};
use crate::time::Millis;
use std::collections::HashMap;
use std::time::Duration;
use step::{Base, Outcome, StepRun, run_step};
use store::{
    Action, ActivityRequest, MessageId, NewInstance, OrchestrationWorkItem, SnapshotChange, StepCommit, TimerRequest,
};

/// The step function the `#[orchestrator]` macro generates.
pub type StepFn = fn(&OrchestrationContext, StepInput<'_>) -> StepResult;

/// A registered orchestrator: its name, code fingerprint and step function.
#[derive(Clone, Copy, Debug)]
pub struct OrchestratorEntry {
    /// The name instances are started under.
    pub name: &'static str,
    /// The fingerprint of its code.
    pub fingerprint: u64,
    /// Its step function.
    pub step: StepFn,
}

impl OrchestratorEntry {
    /// The entry of orchestrator `O`.
    pub fn of<O: Orchestrator>() -> Self {
        Self { name: O::NAME, fingerprint: O::FINGERPRINT, step: O::__step }
    }
}

/// The orchestrators a worker can run, by name.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    orchestrators: HashMap<&'static str, OrchestratorEntry>,
    entities: HashMap<&'static str, EntityEntry>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }
    /// Register orchestrator `O` (replacing one with the same name).
    pub fn register<O: Orchestrator>(&mut self) -> &mut Self {
        self.insert(OrchestratorEntry::of::<O>())
    }
    /// Register an entry (replacing one with the same name).
    pub fn insert(&mut self, entry: OrchestratorEntry) -> &mut Self {
        self.orchestrators.insert(entry.name, entry);
        self
    }
    /// The orchestrator named `name`.
    pub fn get(&self, name: &str) -> Option<&OrchestratorEntry> {
        self.orchestrators.get(name)
    }
    /// The registered names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.orchestrators.keys().copied().collect();
        v.sort_unstable();
        v
    }
    /// Register entity type `E`.
    pub fn register_entity<E: crate::entity::Entity>(&mut self) -> &mut Self {
        let e = EntityEntry::of::<E>();
        self.entities.insert(e.name, e);
        self
    }
    /// The entity type named `name`.
    pub fn entity(&self, name: &str) -> Option<&EntityEntry> {
        self.entities.get(name)
    }
    /// The registered entity names for a message.
    fn known_entities(&self) -> String {
        let mut names: Vec<_> = self.entities.keys().copied().collect();
        names.sort_unstable();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        }
    }
    /// The registered names for a message: "`a`, `b`" or "none".
    fn known(&self) -> String {
        let names = self.names();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        }
    }
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How long an instance that cannot run here (version mismatch, unregistered orchestrator)
    /// waits before it is looked at again.
    pub blocked_retry: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self { blocked_retry: Duration::from_secs(5) }
    }
}

/// Whether [`process`] needs the instance's history for this work item (to rebuild a missing
/// snapshot, or to rewind).
pub fn needs_history(item: &OrchestrationWorkItem) -> bool {
    let Some(status) = &item.status else {
        return false;
    };
    let rewind = item.messages.iter().any(|m| matches!(m.message, InstanceMessage::Rewind { .. }));
    let lost_snapshot =
        item.snapshot.is_none() && matches!(status.runtime_status, RuntimeStatus::Running | RuntimeStatus::Suspended);
    (rewind && status.runtime_status == RuntimeStatus::Failed) || lost_snapshot
}

/// The timer key of task `id` of execution `execution_id`.
pub fn timer_key(execution_id: &str, id: u64) -> String {
    format!("{execution_id}:{id}")
}

const WAKE_KEY: &str = "wake";

/// Step an instance: process its pending messages and return what to commit. `history` must be
/// given when [`needs_history`] says so; `now` is the backend's clock.
pub fn process(
    registry: &Registry,
    item: &OrchestrationWorkItem,
    history: Option<&[HistoryEvent]>,
    now: Millis,
    config: &EngineConfig,
) -> StepCommit {
    if crate::ids::is_entity_instance(&item.instance_id) {
        return entity::process_entity(registry, item, now, config);
    }
    let Some(status) = &item.status else {
        // The instance is gone (purged): drop its messages.
        return StepCommit::ack(item, item.messages.iter().map(|m| m.id).collect());
    };
    let (snapshot, unreadable) = match item.snapshot.as_deref().map(Snapshot::from_bytes).transpose() {
        Ok(s) => (s, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let mut p = Processing {
        registry,
        item,
        now,
        config,
        status: status.clone(),
        snapshot,
        unreadable,
        snapshot_change: SnapshotChange::Keep,
        events: Vec::new(),
        reset_history: false,
        consumed: Vec::new(),
        actions: Vec::new(),
        start: false,
        deliver: Vec::new(),
        deferred: Vec::new(),
        rewind: None,
    };
    for m in &item.messages {
        p.on_message(m.id, &m.message, history);
    }
    p.flush(history);
    p.into_commit()
}

struct Rewound {
    base: Option<Snapshot>,
    prelude: Vec<Command>,
}

struct Processing<'a> {
    registry: &'a Registry,
    item: &'a OrchestrationWorkItem,
    now: Millis,
    config: &'a EngineConfig,
    status: InstanceStatus,
    snapshot: Option<Snapshot>,
    /// Why the stored snapshot could not be decoded, if it could not.
    unreadable: Option<String>,
    snapshot_change: SnapshotChange,
    events: Vec<EventKind>,
    reset_history: bool,
    consumed: Vec<MessageId>,
    actions: Vec<Action>,
    /// The first step of the current execution is to run.
    start: bool,
    /// Messages to deliver in this step (`None` id: re-delivered by a rewind).
    deliver: Vec<(Option<MessageId>, TaskMessage)>,
    /// Messages held back while suspended (not acknowledged).
    deferred: Vec<(MessageId, TaskMessage)>,
    rewind: Option<Rewound>,
}

impl Processing<'_> {
    fn rs(&self) -> RuntimeStatus {
        self.status.runtime_status
    }

    fn on_message(&mut self, id: MessageId, msg: &InstanceMessage, history: Option<&[HistoryEvent]>) {
        match msg {
            InstanceMessage::Start { execution_id } => {
                self.consumed.push(id);
                let not_started = matches!(self.rs(), RuntimeStatus::Pending | RuntimeStatus::ContinuedAsNew);
                if *execution_id == self.status.execution_id && not_started && !self.start {
                    self.start = true;
                    self.reset_history = true;
                    self.events.clear();
                    self.events.push(EventKind::ExecutionStarted {
                        name: self.status.name.clone(),
                        input: self.status.input.clone(),
                        parent: self.status.parent.clone(),
                    });
                    self.status.runtime_status = RuntimeStatus::Running;
                }
            }
            InstanceMessage::Event { name, data } => {
                self.task_message(id, TaskMessage::EventRaised { name: name.clone(), data: data.clone() });
            }
            InstanceMessage::TaskResult { execution_id, result } => {
                if *execution_id == self.status.execution_id {
                    self.task_message(id, result.clone());
                } else {
                    self.consumed.push(id);
                }
            }
            InstanceMessage::Wake => self.consumed.push(id),
            InstanceMessage::EntityOperation { .. }
            | InstanceMessage::EntityLock { .. }
            | InstanceMessage::EntityRelease { .. } => self.consumed.push(id),
            InstanceMessage::Suspend { reason } => {
                self.consumed.push(id);
                if matches!(self.rs(), RuntimeStatus::Running | RuntimeStatus::Pending) {
                    self.status.runtime_status = RuntimeStatus::Suspended;
                    self.status.reason = Some(reason.clone());
                    self.events.push(EventKind::ExecutionSuspended { reason: reason.clone() });
                }
            }
            InstanceMessage::Resume { reason } => {
                self.consumed.push(id);
                if self.rs() == RuntimeStatus::Suspended {
                    self.status.runtime_status = RuntimeStatus::Running;
                    self.status.reason = None;
                    self.events.push(EventKind::ExecutionResumed { reason: reason.clone() });
                    let deferred = std::mem::take(&mut self.deferred);
                    self.deliver.extend(deferred.into_iter().map(|(id, m)| (Some(id), m)));
                }
            }
            InstanceMessage::Terminate { reason } => {
                self.consumed.push(id);
                if !self.rs().is_terminal() {
                    self.consumed.extend(self.deliver.drain(..).filter_map(|(id, _)| id));
                    self.consumed.extend(self.deferred.drain(..).map(|(id, _)| id));
                    self.start = false;
                    self.rewind = None;
                    self.events.push(EventKind::ExecutionTerminated { reason: reason.clone() });
                    self.status.runtime_status = RuntimeStatus::Terminated;
                    self.status.reason = Some(reason.clone());
                    let runtime = self.snapshot.as_ref().map(|s| s.runtime.clone()).unwrap_or_default();
                    self.cancel_open_timers(&runtime);
                    self.snapshot = None;
                    self.snapshot_change = SnapshotChange::Delete;
                    self.report_to_parent(Err(format!(
                        "instance {:?} was terminated: {reason}",
                        self.status.instance_id
                    )));
                }
            }
            InstanceMessage::Rewind { reason } => {
                self.consumed.push(id);
                if self.rs() == RuntimeStatus::Failed {
                    self.on_rewind(reason, history);
                }
            }
        }
    }

    fn task_message(&mut self, id: MessageId, msg: TaskMessage) {
        match self.rs() {
            s if s.is_terminal() => self.consumed.push(id),
            RuntimeStatus::Suspended => self.deferred.push((id, msg)),
            _ => self.deliver.push((Some(id), msg)),
        }
    }

    fn on_rewind(&mut self, reason: &str, history: Option<&[HistoryEvent]>) {
        let Some(entry) = self.registry.get(&self.status.name).copied() else {
            self.status.reason = Some(format!(
                "cannot rewind: orchestrator `{}` is not registered on this worker (it registers {})",
                self.status.name,
                self.registry.known()
            ));
            return;
        };
        let Some(history) = history else {
            self.status.reason = Some("cannot rewind: the history was not loaded".into());
            return;
        };
        let replayed = match replay(&entry, &self.item.instance_id, history) {
            Ok(r) => r,
            Err(e) => {
                self.status.reason = Some(format!("cannot rewind: {e}"));
                return;
            }
        };
        let prep = replay::rewind_prepare(replayed.before_last_step.as_ref(), &replayed.last_step);
        self.events.push(EventKind::ExecutionRewound { reason: reason.to_string() });
        self.status.runtime_status = RuntimeStatus::Running;
        self.status.error = None;
        self.status.output = None;
        self.status.reason = None;
        for child in prep.child_rewinds {
            self.actions.push(Action::SendMessage {
                instance_id: child,
                message: InstanceMessage::Rewind { reason: format!("parent rewound: {reason}") },
            });
        }
        let mut deliver: Vec<_> = prep.requeue.into_iter().map(|m| (None, m)).collect();
        deliver.append(&mut self.deliver);
        self.deliver = deliver;
        self.rewind = Some(Rewound { base: prep.base, prelude: prep.prelude });
    }

    fn flush(&mut self, history: Option<&[HistoryEvent]>) {
        if self.rs().is_terminal() {
            return;
        }
        if self.rs() == RuntimeStatus::Suspended && !self.start && self.rewind.is_none() {
            // Messages that came before the suspension wait too.
            let deliver = std::mem::take(&mut self.deliver);
            self.deferred.extend(deliver.into_iter().filter_map(|(id, m)| Some((id?, m))));
            return;
        }
        if !self.start && self.deliver.is_empty() && self.rewind.is_none() {
            return;
        }
        let name = self.status.name.clone();
        let Some(entry) = self.registry.get(&name).copied() else {
            let message = format!(
                "unknown orchestrator `{name}`: no orchestrator with that name is registered on this worker (it registers {})",
                self.registry.known()
            );
            if self.start {
                self.events.push(EventKind::OrchestratorStarted);
                self.events.push(EventKind::ExecutionFailed { message: message.clone() });
                self.ack_deliver();
                self.finish(Err(message), &RuntimeState::default());
            } else {
                self.block(format!("{message}; deploy a worker that registers it: the instance waits until then"));
            }
            return;
        };
        let messages: Vec<TaskMessage> = self.deliver.iter().map(|(_, m)| m.clone()).collect();
        let instance_id = self.item.instance_id.clone();
        let run = if self.start {
            let input = self.status.input.clone();
            run_step(
                &entry,
                &instance_id,
                self.now,
                Base::Start { input: &input, runtime: RuntimeState::default() },
                &messages,
                Vec::new(),
            )
        } else if let Some(rw) = self.rewind.take() {
            match &rw.base {
                Some(s) => run_step(&entry, &instance_id, self.now, Base::Resume(s), &messages, rw.prelude),
                None => {
                    let input = self.status.input.clone();
                    run_step(
                        &entry,
                        &instance_id,
                        self.now,
                        Base::Start { input: &input, runtime: RuntimeState::default() },
                        &messages,
                        rw.prelude,
                    )
                }
            }
        } else {
            if let Some(e) = &self.unreadable {
                self.block(format!("its snapshot cannot be read: {e}"));
                return;
            }
            let snapshot = match self.snapshot.clone() {
                Some(s) => s,
                None => match history.map(|h| replay(&entry, &instance_id, h)) {
                    Some(Ok(Replayed { snapshot: Some(s), .. })) => s,
                    Some(Ok(_)) => {
                        self.block(format!(
                            "instance {instance_id:?} is {} but has no snapshot, and its history does not end suspended",
                            self.rs()
                        ));
                        return;
                    }
                    Some(Err(e)) => {
                        self.block(format!("its snapshot is missing and its history does not replay: {e}"));
                        return;
                    }
                    None => {
                        self.block("its snapshot is missing and its history was not loaded".to_string());
                        return;
                    }
                },
            };
            if snapshot.orchestrator != entry.name || snapshot.fingerprint != entry.fingerprint {
                self.block(format!(
                    "its snapshot was written by a different version of orchestrator `{}` (code fingerprint {:016x}; \
                     this worker has `{}` with fingerprint {:016x}); deploy the code that matches: the instance waits \
                     and resumes then, and is never resumed with other code",
                    snapshot.orchestrator, snapshot.fingerprint, entry.name, entry.fingerprint
                ));
                return;
            }
            run_step(&entry, &instance_id, self.now, Base::Resume(&snapshot), &messages, Vec::new())
        };
        let Some(run) = run else {
            // Every message was a duplicate or late: nothing to run.
            self.ack_deliver();
            return;
        };
        if let Outcome::Blocked(msg) = &run.outcome {
            let msg = format!("its snapshot cannot be read by orchestrator `{name}`: {msg}");
            self.block(msg);
            return;
        }
        self.ack_deliver();
        self.apply_run(run);
    }

    fn ack_deliver(&mut self) {
        self.consumed.extend(self.deliver.drain(..).filter_map(|(id, _)| id));
    }

    /// The instance cannot run here: leave its messages, say why, look again later.
    fn block(&mut self, reason: String) {
        self.deliver.clear();
        if self.start {
            // Not reachable today (an unknown orchestrator at start fails), but never lose a start.
            self.start = false;
        }
        self.status.reason = Some(reason);
        self.actions.push(Action::SetTimer(TimerRequest {
            instance_id: self.item.instance_id.clone(),
            key: WAKE_KEY.to_string(),
            fire_at: self.now.saturating_add(self.config.blocked_retry.as_millis() as u64),
            message: InstanceMessage::Wake,
        }));
    }

    fn apply_run(&mut self, run: StepRun) {
        self.events.push(EventKind::OrchestratorStarted);
        self.events.extend(run.events);
        if self.rs() == RuntimeStatus::Running {
            self.status.reason = None;
        }
        if let Some(cs) = run.custom_status {
            self.status.custom_status = cs;
        }
        let finished = !matches!(run.outcome, Outcome::Suspended(_));
        let exec = self.status.execution_id.clone();
        let me = self.item.instance_id.clone();
        for cmd in run.commands {
            let action = match cmd {
                Command::ScheduleActivity { .. }
                | Command::CreateTimer { .. }
                | Command::CallEntity { .. }
                | Command::LockEntities { .. }
                    if finished =>
                {
                    continue;
                }
                Command::CallEntity { id, entity, op, input } => Action::SendMessage {
                    instance_id: entity.instance_id(),
                    message: InstanceMessage::EntityOperation {
                        op,
                        input,
                        sender: Some(me.clone()),
                        reply: Some(EntityReply { instance_id: me.clone(), execution_id: exec.clone(), task_id: id }),
                    },
                },
                Command::SignalEntity { entity, op, input } => Action::SendMessage {
                    instance_id: entity.instance_id(),
                    message: InstanceMessage::EntityOperation { op, input, sender: Some(me.clone()), reply: None },
                },
                Command::LockEntities { id, entities } => Action::SendMessage {
                    instance_id: entities[0].instance_id(),
                    message: InstanceMessage::EntityLock {
                        request: LockRequest {
                            owner: EntityReply { instance_id: me.clone(), execution_id: exec.clone(), task_id: id },
                            entities,
                            position: 0,
                        },
                    },
                },
                Command::UnlockEntities { id, entities } => {
                    let owner = EntityReply { instance_id: me.clone(), execution_id: exec.clone(), task_id: id };
                    for e in entities {
                        self.actions.push(Action::SendMessage {
                            instance_id: e.instance_id(),
                            message: InstanceMessage::EntityRelease { owner: owner.clone() },
                        });
                    }
                    continue;
                }
                Command::ScheduleActivity { id, name, input, attempt } => Action::ScheduleActivity(ActivityRequest {
                    instance_id: me.clone(),
                    execution_id: exec.clone(),
                    task_id: id,
                    name,
                    input,
                    attempt,
                }),
                Command::CreateTimer { id, fire_at } => Action::SetTimer(TimerRequest {
                    instance_id: me.clone(),
                    key: timer_key(&exec, id),
                    fire_at,
                    message: InstanceMessage::TaskResult {
                        execution_id: exec.clone(),
                        result: TaskMessage::TimerFired { id },
                    },
                }),
                Command::CancelTimer { id } => {
                    Action::CancelTimer { instance_id: me.clone(), key: timer_key(&exec, id) }
                }
                Command::StartSubOrchestration { id, name, instance_id, input } => {
                    Action::CreateInstance(NewInstance {
                        instance_id,
                        execution_id: new_execution_id(),
                        name,
                        input,
                        parent: Some(ParentRef { instance_id: me.clone(), execution_id: exec.clone(), task_id: id }),
                    })
                }
                Command::SendEvent { instance_id, name, data } => {
                    Action::SendMessage { instance_id, message: InstanceMessage::Event { name, data } }
                }
            };
            self.actions.push(action);
        }
        match run.outcome {
            Outcome::Suspended(s) => match s.to_bytes() {
                Ok(bytes) => {
                    self.snapshot = Some(s);
                    self.snapshot_change = SnapshotChange::Set(bytes);
                }
                Err(e) => self.finish(Err(e.to_string()), &run.runtime),
            },
            Outcome::Completed(output) => self.finish(Ok(output), &run.runtime),
            Outcome::Failed(message) => self.finish(Err(message), &run.runtime),
            Outcome::ContinueAsNew(input) => {
                self.cancel_open_timers(&run.runtime);
                let execution_id = new_execution_id();
                self.status.runtime_status = RuntimeStatus::ContinuedAsNew;
                self.status.input = input;
                self.status.execution_id = execution_id.clone();
                self.status.output = None;
                self.status.error = None;
                self.snapshot = None;
                self.snapshot_change = SnapshotChange::Delete;
                self.actions.push(Action::SendMessage {
                    instance_id: me.clone(),
                    message: InstanceMessage::Start { execution_id },
                });
                for (name, data) in run.runtime.buffered_events {
                    self.actions.push(Action::SendMessage {
                        instance_id: me.clone(),
                        message: InstanceMessage::Event { name, data },
                    });
                }
            }
            Outcome::Blocked(_) => unreachable!("handled by the caller"),
        }
    }

    fn finish(&mut self, outcome: Result<String, String>, runtime: &RuntimeState) {
        self.cancel_open_timers(runtime);
        match &outcome {
            Ok(output) => {
                self.status.runtime_status = RuntimeStatus::Completed;
                self.status.output = Some(output.clone());
            }
            Err(message) => {
                self.status.runtime_status = RuntimeStatus::Failed;
                self.status.error = Some(message.clone());
            }
        }
        self.snapshot = None;
        self.snapshot_change = SnapshotChange::Delete;
        self.report_to_parent(outcome);
    }

    /// Release every entity lock the execution requested or holds.
    fn release_locks(&mut self, runtime: &RuntimeState) {
        let me = self.item.instance_id.clone();
        let exec = self.status.execution_id.clone();
        for (id, entities) in &runtime.locks {
            let owner = EntityReply { instance_id: me.clone(), execution_id: exec.clone(), task_id: *id };
            for e in entities {
                self.actions.push(Action::SendMessage {
                    instance_id: e.instance_id(),
                    message: InstanceMessage::EntityRelease { owner: owner.clone() },
                });
            }
        }
    }

    fn cancel_open_timers(&mut self, runtime: &RuntimeState) {
        self.release_locks(runtime);
        for (id, task) in &runtime.open {
            let timer = matches!(task, OpenTask::Timer { .. } | OpenTask::Activity { waiting_retry: true, .. });
            if timer {
                self.actions.push(Action::CancelTimer {
                    instance_id: self.item.instance_id.clone(),
                    key: timer_key(&self.status.execution_id, *id),
                });
            }
        }
    }

    fn report_to_parent(&mut self, outcome: Result<String, String>) {
        let Some(parent) = self.status.parent.clone() else {
            return;
        };
        let result = match outcome {
            Ok(result) => TaskMessage::SubOrchestrationCompleted { id: parent.task_id, result },
            Err(message) => TaskMessage::SubOrchestrationFailed { id: parent.task_id, message },
        };
        self.actions.push(Action::SendMessage {
            instance_id: parent.instance_id,
            message: InstanceMessage::TaskResult { execution_id: parent.execution_id, result },
        });
    }

    fn into_commit(self) -> StepCommit {
        let changed = Some(&self.status) != self.item.status.as_ref();
        let mut status = self.status;
        if changed {
            status.updated_ms = self.now;
        }
        let base_seq = if self.reset_history { 0 } else { self.item.history_len };
        let new_events = self
            .events
            .into_iter()
            .enumerate()
            .map(|(i, kind)| HistoryEvent { seq: base_seq + i as u64, timestamp_ms: self.now, kind })
            .collect();
        StepCommit {
            instance_id: self.item.instance_id.clone(),
            lock: self.item.lock,
            consumed: self.consumed,
            reset_history: self.reset_history,
            new_events,
            snapshot: self.snapshot_change,
            status: changed.then_some(status),
            actions: self.actions,
        }
    }
}
