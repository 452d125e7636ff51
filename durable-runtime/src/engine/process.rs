//! Stepping one orchestration instance: its inbox messages in order (start, task results,
//! events, control messages), then at most one run of its state machine, into one commit.

use super::OrchestratorEntry;
use super::commands::command_actions;
use super::registry::Registry;
use super::replay::{self, replay};
use super::resume::{Resume, choose};
use super::step::{Base, Outcome, StepRun, run_step};
use super::store::{
    Action, LATEST_VERSION, MessageId, OrchestrationWorkItem, SnapshotChange, StepCommit, TableChange, TimerRequest,
};
use super::{EngineConfig, WAKE_KEY, timer_key};
use crate::history::{EventKind, HistoryEvent};
use crate::ids::{EntityReply, new_execution_id};
use crate::instance::{InstanceStatus, RuntimeStatus};
use crate::messages::{Command, InstanceMessage, TaskMessage};
use crate::state::{OpenTask, RuntimeState, Snapshot};
use crate::time::Millis;

/// A step that could not decide without the history (`ask`): what it would commit without it
/// (the instance blocked), and the snapshot given back.
pub(super) struct AskHistory(pub StepCommit, pub Result<Option<Snapshot>, String>);

/// What a step that could not finish without something it was not given asks for (boxed
/// where it is returned).
#[allow(clippy::large_enum_variant)]
pub(super) enum Ask {
    /// The history ([`AskHistory`]).
    History(AskHistory),
    /// A split snapshot's task table read again, and the step run without the shortcut of
    /// the code that wrote it: that code refused the snapshot, and the table had gone into it.
    Table,
}

/// Step orchestration instance `item` (see [`super::process`]). With `ask`, a step that needs
/// the history (not given) to decide is an `Err`.
#[allow(clippy::too_many_arguments)]
pub(super) fn process_orchestration(
    registry: &Registry,
    item: &OrchestrationWorkItem,
    snapshot: Result<Option<Snapshot>, String>,
    history: Option<&[HistoryEvent]>,
    now: Millis,
    config: &EngineConfig,
    ask: bool,
    cache: Option<&super::SnapshotCache>,
    shortcut: bool,
) -> Result<StepCommit, Box<Ask>> {
    let Some(status) = &item.status else {
        // The instance is gone (purged): drop its messages.
        return Ok(StepCommit::ack(item, item.messages.iter().map(|m| m.id).collect()));
    };
    let (snapshot, unreadable) = match snapshot {
        Ok(s) => (s, None),
        Err(e) => (None, Some(e)),
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
        start_message: None,
        wants_history: false,
        deliver: Vec::new(),
        deferred: Vec::new(),
        rewind: None,
        granted: false,
        held_grant: None,
        table_from_base: false,
        shortcut,
        lost_table: false,
    };
    for m in &item.messages {
        p.on_message(m.id, &m.message, history);
    }
    p.flush(history);
    if p.lost_table {
        return Err(Box::new(Ask::Table));
    }
    if ask && p.wants_history {
        let snapshot = match p.unreadable.take() {
            Some(e) => Err(e),
            None => Ok(p.snapshot.take()),
        };
        return Err(Box::new(Ask::History(AskHistory(p.into_commit(), snapshot))));
    }
    if let Some(cache) = cache
        && let SnapshotChange::Set(bytes) | SnapshotChange::Split { rest: bytes, .. } = &p.snapshot_change
        && let Some(s) = p.snapshot.take()
    {
        // The snapshot these bytes encode, decoded already, for the next step.
        cache.put(&item.instance_id, bytes, s);
    }
    Ok(p.into_commit())
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
    /// The `Start` message of that first step: left unacknowledged if the start is blocked.
    start_message: Option<MessageId>,
    /// No code can resume it from its snapshot, and its history was not given: a replay may.
    wants_history: bool,
    /// Messages to deliver in this step (`None` id: re-delivered by a rewind).
    deliver: Vec<(Option<MessageId>, TaskMessage)>,
    /// Messages held back while suspended (not acknowledged).
    deferred: Vec<(MessageId, TaskMessage)>,
    rewind: Option<Rewound>,
    /// The execution got its slot of its orchestrator's concurrency limit in this step.
    granted: bool,
    /// The step ran from the stored snapshot's own task table (not a replayed, rewound or new
    /// one): a table kept apart is then written as what the step changed in it.
    table_from_base: bool,
    /// Whether the code that wrote the snapshot may step it by value without a probe
    /// (`step_same_code`).
    shortcut: bool,
    /// That code refused a split snapshot whose table had gone into the step: the step is to
    /// be run again with the table read again ([`Ask::Table`]).
    lost_table: bool,
    /// The grant of a slot that came while the instance is suspended (before it started):
    /// left in the inbox, taken when it is resumed.
    held_grant: Option<MessageId>,
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
                    self.begin(id);
                    self.granted = false;
                }
            }
            InstanceMessage::Event { name, data } => {
                self.task_message(id, TaskMessage::EventRaised { name: name.clone(), data: data.clone() });
            }
            InstanceMessage::TaskResult { .. } if super::limit::is_grant(msg, &self.status.execution_id) => {
                let not_started = matches!(self.rs(), RuntimeStatus::Pending | RuntimeStatus::ContinuedAsNew);
                if not_started && !self.start {
                    self.consumed.push(id);
                    self.begin(id);
                } else if self.rs() == RuntimeStatus::Suspended && self.waits_for_slot() {
                    self.held_grant = Some(id);
                } else {
                    // Granted again (an acquire delivered twice): it runs already.
                    self.consumed.push(id);
                }
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
                let waiting = self.rs() == RuntimeStatus::ContinuedAsNew && self.waits_for_slot();
                if matches!(self.rs(), RuntimeStatus::Running | RuntimeStatus::Pending) || waiting {
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
                    if self.waits_for_slot() {
                        // Suspended while it waited for a slot of its concurrency limit: it
                        // waits again, or starts if the slot came meanwhile.
                        self.status.runtime_status = RuntimeStatus::Pending;
                        if let Some(grant) = self.held_grant.take() {
                            self.consumed.push(grant);
                            self.begin(grant);
                        } else if let Some(limit) = self.registry.limit(&self.status.name)
                            && let Ok(key) = limit.key(&self.status.input)
                        {
                            let reason = super::limit::waiting_reason(&self.status.name, &key, limit.max);
                            self.status.reason = Some(reason);
                        }
                    }
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
                    if let Some(grant) = self.held_grant.take() {
                        self.consumed.push(grant);
                    }
                    let input = self.status.input.clone();
                    self.release_limit(&input);
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

    /// The first step of the current execution is to run (its start, or the grant of its slot
    /// of a concurrency limit, is message `id`).
    fn begin(&mut self, id: MessageId) {
        self.start = true;
        self.granted = true;
        self.start_message = Some(id);
        self.reset_history = true;
        self.events.clear();
        self.events.push(EventKind::ExecutionStarted {
            name: self.status.name.clone(),
            input: self.status.input.clone(),
            parent: self.status.parent.clone(),
            trace: self.status.trace,
        });
        self.status.runtime_status = RuntimeStatus::Running;
    }

    /// The current execution of a limited orchestrator has not started (it waits for a slot, or
    /// its start is still to come): nothing of it ran, so it has no snapshot. Its history may
    /// hold a previous execution's events, or a suspension while it waited.
    fn waits_for_slot(&self) -> bool {
        !self.start && self.item.snapshot.is_none() && self.registry.limit(&self.status.name).is_some()
    }

    /// The execution waits for a slot of its orchestrator's concurrency limit: ask for one,
    /// and stay as it was (`Pending`) until the grant comes. `false` if it has no limit or
    /// already has its slot; a key function that fails fails the instance.
    fn wait_for_slot(&mut self) -> bool {
        if !self.start || self.granted || self.rewind.is_some() {
            return false;
        }
        let name = self.status.name.clone();
        let Some(limit) = self.registry.limit(&name).cloned() else { return false };
        match limit.key(&self.status.input) {
            Ok(key) => {
                let holder = super::limit::holder(&self.item.instance_id, &self.status.execution_id);
                self.actions.push(super::limit::acquire(&name, &key, limit.max, holder));
                self.start = false;
                self.start_message = None;
                // What came with the start waits in the inbox for the grant.
                self.deliver.clear();
                // A suspension that came with the start holds (the grant waits for the resume).
                let suspended = self.events.iter().rev().find_map(|e| match e {
                    EventKind::ExecutionSuspended { reason } => Some(reason.clone()),
                    _ => None,
                });
                self.events.clear();
                self.reset_history = false;
                if let Some(reason) = suspended.filter(|_| self.rs() == RuntimeStatus::Suspended) {
                    self.events.push(EventKind::ExecutionSuspended { reason });
                    return true;
                }
                if let Some(before) = &self.item.status {
                    self.status.runtime_status = before.runtime_status;
                }
                self.status.reason = Some(super::limit::waiting_reason(&name, &key, limit.max));
                true
            }
            Err(message) => {
                tracing::warn!(instance = %self.item.instance_id, orchestrator = %name, error = %message, "the instance cannot be admitted by its concurrency limit");
                self.events.push(EventKind::OrchestratorStarted);
                self.events.push(EventKind::ExecutionFailed { message: message.clone() });
                self.ack_deliver();
                self.finish(Err(message), &RuntimeState::default());
                true
            }
        }
    }

    /// Give back the slot of the concurrency limit the current execution (of this `input`)
    /// holds or waits for, if its orchestrator has a limit.
    fn release_limit(&mut self, input: &str) {
        let name = self.status.name.clone();
        let Some(limit) = self.registry.limit(&name) else { return };
        // Without a key it never asked for a slot.
        if let Ok(key) = limit.key(input) {
            let holder = super::limit::holder(&self.item.instance_id, &self.status.execution_id);
            self.actions.push(super::limit::release(&name, &key, holder));
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
        let Some(entry) = self.registry.get_version(&self.status.name, self.status.version).copied() else {
            self.status.reason = Some(format!(
                "cannot rewind: version {} of orchestrator `{}` is not registered on this worker (it registers {}; versions: {})",
                self.status.version,
                self.status.name,
                self.registry.known(),
                self.registry.known_versions(&self.status.name)
            ));
            return;
        };
        let Some(history) = history else {
            self.status.reason = Some("cannot rewind: the history was not loaded".into());
            return;
        };
        let prep = match replay(&entry, &self.item.instance_id, history) {
            Ok(r) => replay::rewind_prepare(r.before_last_step.as_ref(), &r.last_step),
            // The history does not replay through this code (the instance was resumed by other
            // code): rewind from the state the failed step started from, kept at the failure,
            // and that step's recorded events.
            Err(_) if self.snapshot.is_some() => {
                let last = history.iter().rposition(|e| e.kind == EventKind::OrchestratorStarted);
                let failed_step: Vec<EventKind> =
                    last.map(|i| history[i + 1..].iter().map(|e| e.kind.clone()).collect()).unwrap_or_default();
                replay::rewind_prepare(self.snapshot.as_ref(), &failed_step)
            }
            Err(e) => {
                self.status.reason = Some(format!("cannot rewind: {e}"));
                return;
            }
        };
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
        if matches!(self.rs(), RuntimeStatus::Pending | RuntimeStatus::ContinuedAsNew) && !self.start {
            // Its execution has not started (it waits for a slot of its concurrency limit):
            // events wait in the inbox, and are taken with the start.
            self.deliver.clear();
            return;
        }
        let name = self.status.name.clone();
        if self.registry.versions(&name).is_empty() {
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
        }
        if self.wait_for_slot() {
            return;
        }
        let messages: Vec<TaskMessage> = self.deliver.iter().map(|(_, m)| m.clone()).collect();
        let instance_id = self.item.instance_id.clone();
        let limit = self.config.max_payload_bytes;
        let (entry, run) = if self.start || self.rewind.is_some() {
            let version = self.status.version;
            let entry = if self.start && version == LATEST_VERSION {
                self.registry.get(&name)
            } else {
                self.registry.get_version(&name, version)
            };
            let Some(entry) = entry.copied() else {
                self.block(format!(
                    "version {version} of orchestrator `{name}` is not registered on this worker (it registers versions {}); \
                     register it (`#[orchestrator(name = \"{name}\", version = {version})]`) on a worker: the instance waits until then",
                    self.registry.known_versions(&name)
                ));
                return;
            };
            let input = self.status.input.clone();
            let run = match self.rewind.take() {
                Some(Rewound { base: Some(s), prelude }) => {
                    run_step(&entry, &instance_id, self.now, Base::Resume(&s), &messages, prelude, limit)
                }
                Some(Rewound { base: None, prelude }) => run_step(
                    &entry,
                    &instance_id,
                    self.now,
                    Base::Start { input: &input, runtime: RuntimeState::default() },
                    &messages,
                    prelude,
                    limit,
                ),
                None => run_step(
                    &entry,
                    &instance_id,
                    self.now,
                    Base::Start { input: &input, runtime: RuntimeState::default() },
                    &messages,
                    Vec::new(),
                    limit,
                ),
            };
            (entry, run)
        } else if let Ok((entry, run)) = self.step_same_code(&instance_id, &name, &messages, limit) {
            (entry, run)
        } else {
            if self.lost_table {
                return;
            }
            // Other code than the one that wrote the snapshot (or that code refused it): each
            // candidate gets a probe run, then the history may be replayed.
            let r = Resume {
                registry: self.registry,
                instance_id: &instance_id,
                status: &self.status,
                snapshot: self.snapshot.as_ref(),
                unreadable: self.unreadable.as_deref(),
                history,
                now: self.now,
            };
            let attempt = choose(&r).map(|c| {
                let base = Base::Resume(&c.snapshot);
                (c.entry, run_step(&c.entry, &instance_id, self.now, base, &messages, Vec::new(), limit), c.by_replay)
            });
            let attempt = attempt.map(|(entry, run, by_replay)| {
                self.table_from_base = !by_replay;
                (entry, run)
            });
            match attempt {
                Ok((entry, run)) => (entry, run),
                Err(reason) => {
                    if history.is_none() {
                        // The history may resume it: ask for it before saying it is blocked.
                        self.wants_history = true;
                    }
                    self.block(reason);
                    return;
                }
            }
        };
        let Some(run) = run else {
            // Every message was a duplicate or late: nothing to run.
            self.ack_deliver();
            return;
        };
        if let Outcome::Blocked(msg) = &run.outcome {
            let msg = format!("version {} of orchestrator `{name}` cannot run it: {msg}", entry.version);
            self.block(msg);
            return;
        }
        self.status.version = entry.version;
        self.ack_deliver();
        self.apply_run(run);
    }

    /// The common case, without copying the snapshot: the very code that wrote it (version and
    /// fingerprint) is registered here, so the step takes the snapshot by value, without a probe
    /// run. `Err` if that code is not here, or if it refused the snapshot (then the snapshot is
    /// decoded again from the work item and the caller looks at the other versions and the
    /// history, where the code that wrote it gets a probe run like any other).
    fn step_same_code(
        &mut self,
        instance_id: &str,
        name: &str,
        messages: &[TaskMessage],
        limit: usize,
    ) -> Result<(OrchestratorEntry, Option<StepRun>), ()> {
        if !self.shortcut {
            return Err(());
        }
        let s = self.snapshot.as_ref().ok_or(())?;
        let entry = *self.registry.get_version(name, self.status.version).ok_or(())?;
        if s.version != entry.version || s.fingerprint != entry.fingerprint {
            return Err(());
        }
        let s = self.snapshot.take().ok_or(())?;
        let run = run_step(&entry, instance_id, self.now, Base::ResumeOwned(s), messages, Vec::new(), limit);
        self.table_from_base = true;
        match &run {
            Some(StepRun { outcome: Outcome::Blocked(_), .. }) => {
                // It refused its own snapshot (a helper's type changed, a toolchain renders
                // type names differently).
                self.restore_snapshot();
                // A split snapshot's table went into the step: read it again, and let the
                // other versions and the history have their turn with it.
                self.lost_table =
                    self.snapshot.is_none() && self.item.snapshot.as_deref().is_some_and(Snapshot::is_split);
                Err(())
            }
            None => {
                // Every message was a duplicate or late: the snapshot stays as it was.
                self.restore_snapshot();
                Ok((entry, None))
            }
            Some(_) => Ok((entry, run)),
        }
    }

    /// The snapshot as the work item holds it (after a step that took it and did not count).
    fn restore_snapshot(&mut self) {
        self.table_from_base = false;
        if self.item.snapshot.as_deref().is_some_and(Snapshot::is_split) {
            // Its task table, kept apart, went into the step: not at hand any more (a step
            // that consumed nothing commits nothing of it; one refused asks for it again).
            self.snapshot = None;
            return;
        }
        match self.item.snapshot.as_deref().map(Snapshot::from_bytes).transpose() {
            Ok(s) => self.snapshot = s,
            Err(e) => self.unreadable = Some(e.to_string()),
        }
    }

    fn ack_deliver(&mut self) {
        self.consumed.extend(self.deliver.drain(..).filter_map(|(id, _)| id));
    }

    /// The instance cannot run here: leave its messages, say why, look again later.
    fn block(&mut self, reason: String) {
        self.deliver.clear();
        if self.start {
            // The start waits too: its message stays in the inbox, nothing of it is recorded,
            // and it runs once a worker has the code.
            self.start = false;
            if let Some(id) = self.start_message.take() {
                self.consumed.retain(|c| *c != id);
            }
            self.events.clear();
            self.reset_history = false;
            if let Some(before) = &self.item.status {
                self.status.runtime_status = before.runtime_status;
            }
        }
        self.status.reason = Some(reason);
        self.status.blocked = true;
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
        self.status.blocked = false;
        if let Some(cs) = run.custom_status {
            self.status.custom_status = cs;
        }
        let finished = !matches!(run.outcome, Outcome::Suspended(_));
        let exec = self.status.execution_id.clone();
        let me = self.item.instance_id.clone();
        for cmd in run.commands {
            command_actions(cmd, &me, &exec, finished, &mut self.actions);
        }
        match run.outcome {
            Outcome::Suspended(mut s) => match self.snapshot_change_for(&mut s) {
                Ok(change) => {
                    self.snapshot = Some(s);
                    self.snapshot_change = change;
                }
                Err(e) => self.finish(Err(e.to_string()), &s.runtime),
            },
            Outcome::Completed(output) => self.finish(Ok(output), &run.runtime),
            Outcome::Failed(message) => self.finish(Err(message), &run.runtime),
            Outcome::ContinueAsNew(input) => {
                self.cancel_open_timers(&run.runtime);
                let old_input = self.status.input.clone();
                self.release_limit(&old_input);
                let execution_id = new_execution_id();
                self.status.runtime_status = RuntimeStatus::ContinuedAsNew;
                self.status.input = input;
                self.status.execution_id = execution_id.clone();
                self.status.output = None;
                self.status.error = None;
                // The new execution starts on the highest registered version: eternal
                // orchestrations move to new code at their next `continue_as_new`.
                self.status.version = LATEST_VERSION;
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

    /// How the commit writes the snapshot the step suspended with: whole, or — a large task
    /// table, on a backend that keeps tables apart — the rest, and the table as the entries the
    /// step changed (all of them if the step did not run from the stored table).
    fn snapshot_change_for(&self, s: &mut Snapshot) -> Result<SnapshotChange, crate::error::Error> {
        let touched = s.runtime.take_touched();
        let from = self.config.task_table_apart_from;
        let stored_apart = self.item.snapshot.as_deref().is_some_and(Snapshot::is_split);
        // Once apart, a table stays apart until it is a quarter of the size that put it there.
        let apart = from > 0 && s.runtime.table_len() >= if stored_apart { (from / 4).max(1) } else { from };
        if !apart {
            return s.to_bytes().map(SnapshotChange::Set);
        }
        let table = if stored_apart && self.table_from_base {
            let mut set = Vec::new();
            let mut remove = Vec::new();
            for id in touched {
                match s.table_entry(id) {
                    Some(entry) => set.push((id, entry?)),
                    None => remove.push(id),
                }
            }
            TableChange::Patch { set, remove }
        } else {
            TableChange::Replace(s.table_entries()?)
        };
        Ok(SnapshotChange::Split { rest: s.to_split()?, table })
    }

    fn finish(&mut self, outcome: Result<String, String>, runtime: &RuntimeState) {
        self.cancel_open_timers(runtime);
        let input = self.status.input.clone();
        self.release_limit(&input);
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
        // A failed execution keeps the state it failed from, so that a rewind can run the failed
        // step again even when the history no longer replays through the code (it was resumed
        // by other code); a completed one has no state left.
        self.snapshot_change = match (&outcome, &self.item.snapshot) {
            (Err(_), Some(_)) => SnapshotChange::Keep,
            _ => SnapshotChange::Delete,
        };
        self.snapshot = None;
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
