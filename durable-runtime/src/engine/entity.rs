//! Stepping an entity: apply its pending operations in order, one at a time, in one commit.
//!
//! Locks: a lock request is granted when the entity is free and passed on to the next entity
//! in the (sorted) request; the last one tells the orchestration. While locked, operations
//! from anyone but the owner wait in the entity's record, in order, until the owner releases.

use super::registry::Registry;
use super::step::panic_message;
use super::store::{Action, NewInstance, OrchestrationWorkItem, SnapshotChange, StepCommit, TimerRequest};
use super::{EngineConfig, WAKE_KEY};
use crate::entity::{Entity, EntityContext};
use crate::ids::{EntityId, EntityReply, LockRequest, new_execution_id};
use crate::instance::RuntimeStatus;
use crate::messages::{EntityEffect, InstanceMessage, TaskMessage};
use crate::payload;
use crate::state::{EntityJournalEntry, EntityRecord, RuntimeState, Snapshot};
use crate::time::Millis;
use crate::trace::TraceContext;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Applies one operation to an entity's JSON state (type-erased [`Entity::__dispatch`]): the
/// new state (`None`: the entity deleted itself) and the operation's result.
pub type EntityApplyFn = fn(Option<&str>, &mut EntityContext, &str, &str) -> Result<(Option<String>, String), String>;

/// A registered entity type: its name, operations and dispatch.
#[derive(Clone, Copy, Debug)]
pub struct EntityEntry {
    /// The entity name.
    pub name: &'static str,
    /// Its operations.
    pub operations: &'static [&'static str],
    /// Apply an operation.
    pub apply: EntityApplyFn,
}

impl EntityEntry {
    /// The entry of entity type `E`.
    pub fn of<E: Entity>() -> Self {
        Self { name: E::NAME, operations: E::OPERATIONS, apply: apply::<E> }
    }
}

/// Run one operation on `state`: the new state and the result, or why it failed (its error, or
/// its panic). The state it was given is not touched.
fn apply<E: Entity>(
    state: Option<&str>,
    ctx: &mut EntityContext,
    op: &str,
    input: &str,
) -> Result<(Option<String>, String), String> {
    let mut value: E = match state {
        // (The names are formatted only if the state does not decode.)
        Some(s) => payload::from_json(s, format_args!("the state of entity `{}`", ctx.id))?,
        None => E::default(),
    };
    ctx.deleted = false;
    let out = catch_unwind(AssertUnwindSafe(|| value.__dispatch(ctx, op, input)))
        .map_err(|p| format!("operation `{op}` on entity `{}` panicked: {}", ctx.id, panic_message(&*p)))??;
    let state = if ctx.deleted {
        None
    } else {
        Some(payload::to_json(&value, format_args!("the state of entity `{}`", ctx.id))?)
    };
    Ok((state, out))
}

const MAX_CANCELLED: usize = 64;

struct EntityStep<'a> {
    entry: EntityEntry,
    /// The largest state, result or payload sent an operation may produce.
    max_payload: usize,
    /// How many operations the journal keeps.
    journal: usize,
    record: EntityRecord,
    ctx: EntityContext,
    replies: Vec<Action>,
    /// The context of the operation that asked for each of `ctx.effects`.
    effect_traces: Vec<Option<TraceContext>>,
    last_error: Option<String>,
    _item: &'a OrchestrationWorkItem,
}

impl EntityStep<'_> {
    /// Why operation `op`, which returned `out` and asked for the effects from `first_effect`
    /// on, fails for a payload over the limit, if it does: the new state, the result, or an
    /// input it sends.
    fn oversized(&self, state: Option<&str>, op: &str, out: &str, first_effect: usize) -> Option<String> {
        let limit = self.max_payload;
        let id = &self.ctx.id;
        // What is named only once a payload is found over the limit.
        let over = |json: &str, what: &dyn Fn() -> String| {
            (json.len() > limit).then(|| super::payload_too_large(what(), json.len(), limit))
        };
        over(state.unwrap_or_default(), &|| format!("the state of entity `{id}`"))
            .or_else(|| over(out, &|| format!("the result of operation `{op}` on entity `{id}`")))
            .or_else(|| {
                self.ctx.effects[first_effect..].iter().find_map(|effect| match effect {
                    EntityEffect::Signal { target, op: target_op, input, .. } => over(input, &|| {
                        format!("the input of operation `{target_op}` on entity `{target}` signalled by entity `{id}`")
                    }),
                    EntityEffect::StartOrchestration { name, input, .. } => {
                        over(input, &|| format!("the input of orchestrator `{name}` started by entity `{id}`"))
                    }
                })
            })
    }

    fn reply(&mut self, to: &EntityReply, result: TaskMessage) {
        self.replies.push(Action::SendMessage {
            instance_id: to.instance_id.clone(),
            message: InstanceMessage::TaskResult { execution_id: to.execution_id.clone(), result },
        });
    }

    fn handle(&mut self, msg: InstanceMessage) {
        match msg {
            InstanceMessage::EntityOperation { op, input, sender, reply, trace } => {
                if let Some(owner) = &self.record.locked_by
                    && sender.as_deref() != Some(owner.instance_id.as_str())
                {
                    self.record.deferred.push(InstanceMessage::EntityOperation { op, input, sender, reply, trace });
                    return;
                }
                let span = tracing::info_span!(
                    "durable.entity.op",
                    entity = %self.ctx.id,
                    op = %op,
                    call = reply.is_some(),
                    error = tracing::field::Empty,
                    trace_id = tracing::field::Empty,
                    span_id = tracing::field::Empty,
                    parent_span_id = tracing::field::Empty,
                );
                let op_trace = crate::trace::enter(&span, trace.as_ref());
                let _entered = span.enter();
                let before = self.ctx.effects.len();
                // The new state replaces the old only if the operation succeeded and all it
                // produced is within the payload limit.
                let result = match (self.entry.apply)(self.record.state.as_deref(), &mut self.ctx, &op, &input) {
                    Ok((state, out)) => match self.oversized(state.as_deref(), &op, &out, before) {
                        Some(e) => Err(e),
                        None => {
                            self.record.state = state;
                            Ok(out)
                        }
                    },
                    Err(e) => Err(e),
                };
                if let Err(e) = &result {
                    self.ctx.effects.truncate(before);
                    self.last_error = Some(e.clone());
                    span.record("error", e.as_str());
                }
                self.effect_traces.resize(self.ctx.effects.len(), Some(op_trace));
                if self.journal > 0 {
                    let (result_text, error) = match &result {
                        Ok(out) => (Some(EntityJournalEntry::cut(out)), None),
                        Err(e) => (None, Some(e.clone())),
                    };
                    self.record.journal.push_back(EntityJournalEntry {
                        time_ms: self.ctx.now,
                        op: op.clone(),
                        input: EntityJournalEntry::cut(&input),
                        sender: sender.clone(),
                        result: result_text,
                        error,
                    });
                    while self.record.journal.len() > self.journal {
                        self.record.journal.pop_front();
                    }
                }
                if let Some(to) = reply {
                    let msg = match result {
                        Ok(result) => TaskMessage::EntityCompleted { id: to.task_id, result },
                        Err(message) => TaskMessage::EntityFailed { id: to.task_id, message },
                    };
                    self.reply(&to, msg);
                }
            }
            InstanceMessage::EntityLock { request } => {
                if let Some(pos) = self.record.cancelled_locks.iter().position(|c| *c == request.owner) {
                    self.record.cancelled_locks.remove(pos);
                    return;
                }
                if self.record.locked_by.is_some() {
                    self.record.deferred.push(InstanceMessage::EntityLock { request });
                    return;
                }
                self.record.locked_by = Some(request.owner.clone());
                let next = request.position + 1;
                if let Some(target) = request.entities.get(next) {
                    let target = target.instance_id();
                    self.replies.push(Action::SendMessage {
                        instance_id: target,
                        message: InstanceMessage::EntityLock { request: LockRequest { position: next, ..request } },
                    });
                } else {
                    let owner = request.owner.clone();
                    self.reply(&owner, TaskMessage::LockAcquired { id: owner.task_id });
                }
            }
            InstanceMessage::EntityRelease { owner } => {
                if self.record.locked_by.as_ref() == Some(&owner) {
                    self.record.locked_by = None;
                    let deferred = std::mem::take(&mut self.record.deferred);
                    for m in deferred {
                        self.handle(m);
                    }
                } else {
                    // The owner finished before its request got here: drop the request if it
                    // waits here, or ignore it when it arrives.
                    let before = self.record.deferred.len();
                    self.record
                        .deferred
                        .retain(|m| !matches!(m, InstanceMessage::EntityLock { request } if request.owner == owner));
                    if self.record.deferred.len() == before {
                        self.record.cancelled_locks.push(owner);
                        if self.record.cancelled_locks.len() > MAX_CANCELLED {
                            self.record.cancelled_locks.remove(0);
                        }
                    }
                }
            }
            // Orchestration control messages do not apply to entities.
            _ => {}
        }
    }
}

/// Step entity instance `item`.
pub(crate) fn process_entity(
    registry: &Registry,
    item: &OrchestrationWorkItem,
    now: Millis,
    config: &EngineConfig,
) -> StepCommit {
    let Some(status) = &item.status else {
        return StepCommit::ack(item, item.messages.iter().map(|m| m.id).collect());
    };
    let id = EntityId::from_instance_id(&item.instance_id).expect("an entity instance id");
    let Some(entry) = registry.entity(&id.name).copied() else {
        // Not registered here: leave the messages, say why, look again later.
        let mut status = status.clone();
        let reason = format!(
            "entity `{}` is not registered on this worker (it registers {}); register it with `.entity::<T>()`: its operations wait until then",
            id.name,
            registry.known_entities()
        );
        let mut commit = StepCommit::ack(item, Vec::new());
        if status.reason.as_deref() != Some(reason.as_str()) {
            status.reason = Some(reason);
            status.updated_ms = now;
            commit.status = Some(status);
        }
        commit.actions.push(Action::SetTimer(TimerRequest {
            instance_id: item.instance_id.clone(),
            key: WAKE_KEY.to_string(),
            fire_at: now.saturating_add(config.blocked_retry.as_millis() as u64),
            message: InstanceMessage::Wake,
        }));
        return commit;
    };
    let record = load_record(item);
    let mut ctx = EntityContext::new(id);
    ctx.now = now;
    let mut step = EntityStep {
        entry,
        max_payload: config.max_payload_bytes,
        journal: config.entity_journal,
        record,
        ctx,
        replies: Vec::new(),
        effect_traces: Vec::new(),
        last_error: None,
        _item: item,
    };
    for m in &item.messages {
        step.handle(m.message.clone());
    }
    let mut status = status.clone();
    status.output = step.record.state.clone();
    status.runtime_status = RuntimeStatus::Running;
    status.reason = None;
    if let Some(e) = step.last_error.take() {
        status.error = Some(e);
    }
    status.updated_ms = now;
    let mut actions = effect_actions(&step.ctx.id, std::mem::take(&mut step.ctx.effects), &step.effect_traces);
    actions.extend(step.replies);
    record_commit(item, entry.name, &step.record, status, actions)
}

/// An entity's record as its work item holds it (a new one if it has none).
pub(super) fn load_record(item: &OrchestrationWorkItem) -> EntityRecord {
    item.snapshot
        .as_deref()
        .and_then(|b| Snapshot::from_bytes(b).ok())
        .and_then(|s| payload::from_state::<EntityRecord>(&s.state).ok())
        .unwrap_or_default()
}

/// The commit of an entity's step: every message of the work item consumed, `record` stored
/// as the snapshot of entity `name`, the new `status`, and `actions`.
pub(super) fn record_commit(
    item: &OrchestrationWorkItem,
    name: &str,
    record: &EntityRecord,
    status: crate::instance::InstanceStatus,
    actions: Vec<Action>,
) -> StepCommit {
    let snapshot = Snapshot {
        orchestrator: format!("@{name}"),
        version: crate::ids::FIRST_VERSION,
        fingerprint: 0,
        state: payload::to_state(record).unwrap_or_default(),
        runtime: RuntimeState::default(),
        pending_continue_as_new: None,
    };
    StepCommit {
        instance_id: item.instance_id.clone(),
        lock: item.lock,
        consumed: item.messages.iter().map(|m| m.id).collect(),
        reset_history: false,
        new_events: Vec::new(),
        snapshot: snapshot.to_bytes().map_or(SnapshotChange::Keep, SnapshotChange::Set),
        status: Some(status),
        actions,
    }
}

/// Turn what an entity's operations asked for into outbound actions.
fn effect_actions(from: &EntityId, effects: Vec<EntityEffect>, traces: &[Option<TraceContext>]) -> Vec<Action> {
    let mut actions = Vec::with_capacity(effects.len());
    for (n, effect) in effects.into_iter().enumerate() {
        let trace = traces.get(n).copied().flatten();
        actions.push(match effect {
            EntityEffect::Signal { target, op, input, fire_at } => {
                let message = InstanceMessage::EntityOperation {
                    op,
                    input,
                    sender: Some(from.instance_id()),
                    reply: None,
                    trace,
                };
                let instance_id = target.instance_id();
                match fire_at {
                    None => Action::SendMessage { instance_id, message },
                    Some(fire_at) => Action::SetTimer(TimerRequest {
                        instance_id,
                        key: format!("signal:{}:{n}", new_execution_id()),
                        fire_at,
                        message,
                    }),
                }
            }
            EntityEffect::StartOrchestration { instance_id, name, version, input } => {
                Action::CreateInstance(NewInstance {
                    instance_id,
                    execution_id: new_execution_id(),
                    name,
                    input,
                    parent: None,
                    version,
                    trace,
                })
            }
        });
    }
    actions
}
