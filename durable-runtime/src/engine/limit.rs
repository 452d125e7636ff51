//! Concurrency limits of orchestrators ([`crate::flow::ConcurrencyLimit`]): a semaphore per
//! orchestrator and key, kept by a built-in entity, `durable.limit` with key
//! `<orchestrator>/<key>`.
//!
//! An instance whose orchestrator has a limit asks its semaphore for a slot when its execution
//! would start (an `acquire` operation carrying the limit, whose reply is the grant), and stays
//! `Pending` until the grant comes back; then its first step runs. Every way out of the
//! execution — completed, failed, terminated (waiting or running), continued as new — sends a
//! `release` that gives the slot back, or takes the instance out of the line. Entity
//! operations apply exactly once, one at a time, in order per sender, so the release of an
//! execution always comes after its acquire, and both are idempotent (keyed by the
//! execution): the semaphore's holders and line stay exact on every backend, with any number
//! of workers, with no storage of their own.

use super::store::{Action, OrchestrationWorkItem, StepCommit};
use crate::flow::LIMIT_ENTITY;
use crate::ids::{EntityId, EntityReply};
use crate::instance::RuntimeStatus;
use crate::messages::{InstanceMessage, TaskMessage};
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The task id of the grant: no orchestrator task ever has it (ids count up from 0).
pub(crate) const GRANT_TASK: u64 = u64::MAX;

/// A semaphore's state (the entity's state, as `Client::entity_state` and the dashboard show
/// it): the limit, the executions holding a slot, and those waiting, first in line first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Semaphore {
    pub max: u32,
    pub holders: Vec<EntityReply>,
    pub waiters: VecDeque<EntityReply>,
}

/// What `acquire` and `release` carry.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LimitOp {
    max: u32,
    holder: EntityReply,
}

/// The semaphore entity of orchestrator `name`'s limit for `key`.
pub(crate) fn semaphore_id(name: &str, key: &str) -> EntityId {
    EntityId::new(LIMIT_ENTITY, format!("{name}/{key}"))
}

/// The holder an execution is known by.
pub(crate) fn holder(instance_id: &str, execution_id: &str) -> EntityReply {
    EntityReply { instance_id: instance_id.to_string(), execution_id: execution_id.to_string(), task_id: GRANT_TASK }
}

fn op(name: &str, key: &str, operation: &str, max: u32, holder: EntityReply) -> Action {
    let input = serde_json::to_string(&LimitOp { max, holder: holder.clone() }).expect("a limit operation encodes");
    Action::SendMessage {
        instance_id: semaphore_id(name, key).instance_id(),
        message: InstanceMessage::EntityOperation {
            op: operation.to_string(),
            input,
            sender: Some(holder.instance_id),
            reply: None,
            trace: None,
        },
    }
}

/// Ask for a slot of orchestrator `name`'s limit for `key` (at most `max` holders).
pub(crate) fn acquire(name: &str, key: &str, max: u32, holder: EntityReply) -> Action {
    op(name, key, "acquire", max, holder)
}

/// Give a slot back, or leave the line.
pub(crate) fn release(name: &str, key: &str, holder: EntityReply) -> Action {
    op(name, key, "release", 0, holder)
}

/// Whether a task result is the grant of a slot to execution `execution_id`.
pub(crate) fn is_grant(msg: &InstanceMessage, execution_id: &str) -> bool {
    matches!(
        msg,
        InstanceMessage::TaskResult { execution_id: e, result: TaskMessage::EntityCompleted { id: GRANT_TASK, .. } }
            if e == execution_id
    )
}

/// Whether a message is the grant of a slot (to any execution): a backend that gives a step
/// only the first messages of a long inbox gives it the grants past them too, or an instance
/// waiting behind more events than a step takes would never see its grant.
pub(crate) fn is_any_grant(msg: &InstanceMessage) -> bool {
    matches!(msg, InstanceMessage::TaskResult { result: TaskMessage::EntityCompleted { id: GRANT_TASK, .. }, .. })
}

/// The reason a waiting instance shows.
pub(crate) fn waiting_reason(name: &str, key: &str, max: u32) -> String {
    let of = if key.is_empty() { String::new() } else { format!(" for key {key:?}") };
    format!(
        "waiting for a slot of the concurrency limit of `{name}`{of} (at most {max} running at once); \
         it starts when one is free, in the order the instances came (entity `{}`)",
        semaphore_id(name, key)
    )
}

fn grant(to: &EntityReply, out: &mut Vec<Action>) {
    out.push(Action::SendMessage {
        instance_id: to.instance_id.clone(),
        message: InstanceMessage::TaskResult {
            execution_id: to.execution_id.clone(),
            result: TaskMessage::EntityCompleted { id: GRANT_TASK, result: "null".into() },
        },
    });
}

impl Semaphore {
    fn apply(&mut self, op: &str, input: &str, out: &mut Vec<Action>) {
        let Ok(LimitOp { max, holder }) = serde_json::from_str::<LimitOp>(input) else {
            tracing::warn!(op, input, "a concurrency-limit operation that does not decode is dropped");
            return;
        };
        match op {
            "acquire" => {
                self.max = max.max(1);
                if self.holders.contains(&holder) {
                    // Asked again (a start delivered twice): it holds one already.
                    grant(&holder, out);
                } else if !self.waiters.contains(&holder) {
                    self.waiters.push_back(holder);
                }
            }
            "release" => {
                self.holders.retain(|h| *h != holder);
                self.waiters.retain(|h| *h != holder);
            }
            _ => tracing::warn!(op, "an unknown concurrency-limit operation is dropped"),
        }
        while self.holders.len() < self.max as usize
            && let Some(next) = self.waiters.pop_front()
        {
            grant(&next, out);
            self.holders.push(next);
        }
    }
}

/// Step a semaphore entity: apply its operations in order, grant the free slots to the first
/// in line.
pub(crate) fn process_semaphore(item: &OrchestrationWorkItem, id: &EntityId, now: Millis) -> StepCommit {
    let Some(status) = &item.status else {
        return StepCommit::ack(item, item.messages.iter().map(|m| m.id).collect());
    };
    let mut record = super::entity::load_record(item);
    let mut sem: Semaphore = record.state.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
    let mut actions = Vec::new();
    for m in &item.messages {
        if let InstanceMessage::EntityOperation { op, input, .. } = &m.message {
            sem.apply(op, input, &mut actions);
        }
    }
    let (orchestrator, key) = id.key.split_once('/').unwrap_or((id.key.as_str(), ""));
    crate::metrics::set_limit_gauges(orchestrator, key, sem.holders.len(), sem.waiters.len());
    // An idle semaphore leaves no state behind.
    record.state = (!sem.holders.is_empty() || !sem.waiters.is_empty())
        .then(|| serde_json::to_string(&sem).expect("a semaphore encodes"));
    let mut status = status.clone();
    status.output = record.state.clone();
    status.runtime_status = RuntimeStatus::Running;
    status.reason = None;
    status.updated_ms = now;
    super::entity::record_commit(item, LIMIT_ENTITY, &record, status, actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u32) -> EntityReply {
        holder(&format!("i{n}"), "e")
    }

    fn input(max: u32, n: u32) -> String {
        serde_json::to_string(&LimitOp { max, holder: h(n) }).unwrap()
    }

    #[test]
    fn slots_are_granted_in_order_and_given_back_once() {
        let mut s = Semaphore::default();
        let mut out = Vec::new();
        for n in 0..3 {
            s.apply("acquire", &input(1, n), &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(s.holders, vec![h(0)]);
        assert_eq!(s.waiters, [h(1), h(2)]);
        // A waiter that leaves the line is never granted.
        s.apply("release", &input(0, 1), &mut out);
        s.apply("release", &input(0, 0), &mut out);
        s.apply("release", &input(0, 0), &mut out);
        assert_eq!(s.holders, vec![h(2)]);
        assert!(s.waiters.is_empty());
        assert_eq!(out.len(), 2);
    }
}
