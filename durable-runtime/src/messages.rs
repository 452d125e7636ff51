//! The wire vocabulary: what an orchestration step asks for ([`Command`]), what is delivered to
//! its tasks ([`TaskMessage`]), and what arrives in an instance's inbox ([`InstanceMessage`]).

use crate::ids::{EntityId, EntityReply, LockRequest};
use crate::time::Millis;
use crate::trace::TraceContext;
use serde::{Deserialize, Serialize};

/// What an orchestration step asks the outside world to do.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[non_exhaustive]
pub enum Command {
    /// Run an activity (attempt `attempt`).
    ScheduleActivity {
        /// Task id.
        id: u64,
        /// Activity name.
        name: String,
        /// JSON input.
        input: String,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// Start a durable timer.
    CreateTimer {
        /// Task id.
        id: u64,
        /// Fire time.
        fire_at: Millis,
    },
    /// Cancel a timer nobody waits for any more.
    CancelTimer {
        /// Task id.
        id: u64,
    },
    /// Start a sub-orchestration.
    StartSubOrchestration {
        /// Task id.
        id: u64,
        /// Orchestrator name.
        name: String,
        /// Orchestrator version.
        #[serde(default = "crate::ids::first_version")]
        version: u32,
        /// The child's instance id.
        instance_id: String,
        /// JSON input.
        input: String,
    },
    /// Call an entity operation; its result completes task `id`.
    CallEntity {
        /// Task id.
        id: u64,
        /// The entity.
        entity: EntityId,
        /// The operation.
        op: String,
        /// JSON input.
        input: String,
    },
    /// Signal an entity operation (one-way).
    SignalEntity {
        /// The entity.
        entity: EntityId,
        /// The operation.
        op: String,
        /// JSON input.
        input: String,
    },
    /// Lock entities (sorted); task `id` completes once all are held.
    LockEntities {
        /// Task id.
        id: u64,
        /// The entities, sorted.
        entities: Vec<EntityId>,
    },
    /// Release the locks taken by lock task `id`.
    UnlockEntities {
        /// The lock task's id.
        id: u64,
        /// The entities.
        entities: Vec<EntityId>,
    },
    /// Raise an event on another instance.
    SendEvent {
        /// Target instance.
        instance_id: String,
        /// Event name.
        name: String,
        /// JSON data.
        data: String,
    },
}

impl Command {
    /// The task id this command belongs to, if any.
    pub fn task_id(&self) -> Option<u64> {
        match self {
            Command::ScheduleActivity { id, .. }
            | Command::CreateTimer { id, .. }
            | Command::CancelTimer { id }
            | Command::StartSubOrchestration { id, .. }
            | Command::CallEntity { id, .. }
            | Command::LockEntities { id, .. }
            | Command::UnlockEntities { id, .. } => Some(*id),
            Command::SendEvent { .. } | Command::SignalEntity { .. } => None,
        }
    }
}

/// A message delivered to an orchestration's runtime state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum TaskMessage {
    /// An activity returned.
    ActivityCompleted {
        /// Task id.
        id: u64,
        /// JSON result.
        result: String,
    },
    /// An activity failed (error or panic).
    ActivityFailed {
        /// Task id.
        id: u64,
        /// Attempt that failed.
        attempt: u32,
        /// Error message.
        message: String,
    },
    /// A timer fired (also used for retry backoff timers of activities).
    TimerFired {
        /// Task id.
        id: u64,
    },
    /// An external event arrived.
    EventRaised {
        /// Event name.
        name: String,
        /// JSON data.
        data: String,
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
        /// Failure message.
        message: String,
    },
    /// An entity operation returned.
    EntityCompleted {
        /// Task id.
        id: u64,
        /// JSON result.
        result: String,
    },
    /// An entity operation failed (error, panic, unknown operation, bad input).
    EntityFailed {
        /// Task id.
        id: u64,
        /// Failure message.
        message: String,
    },
    /// All entities of a lock request are held.
    LockAcquired {
        /// The lock task's id.
        id: u64,
    },
}

/// A message in an instance's inbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum InstanceMessage {
    /// Start execution `execution_id` (sent when the instance is created or continues as new).
    Start {
        /// The execution to start; ignored if it is not the instance's current execution.
        execution_id: String,
    },
    /// An external event (`Client::raise_event`, or another orchestration's `send_event`).
    Event {
        /// Event name.
        name: String,
        /// JSON data.
        data: String,
    },
    /// The result of a task of execution `execution_id`: activity, timer or sub-orchestration.
    /// Results for another execution (before a `continue_as_new`) are dropped.
    TaskResult {
        /// The execution that scheduled the task.
        execution_id: String,
        /// The result.
        result: TaskMessage,
    },
    /// Terminate the instance.
    Terminate {
        /// Why.
        reason: String,
    },
    /// Suspend the instance: it takes no steps, and messages wait, until resumed.
    Suspend {
        /// Why.
        reason: String,
    },
    /// Resume a suspended instance.
    Resume {
        /// Why.
        reason: String,
    },
    /// Rewind a failed instance: run its failed tasks again.
    Rewind {
        /// Why.
        reason: String,
    },
    /// Nothing: makes the instance take a look at its inbox again (used to retry an instance
    /// waiting for matching code).
    Wake,
    /// An operation on an entity (the target is an entity instance, `@name@key`).
    EntityOperation {
        /// The operation name.
        op: String,
        /// JSON input.
        input: String,
        /// The sending orchestration or entity instance, if any (lets a lock owner through).
        sender: Option<String>,
        /// Where to send the result, for a call; `None` for a signal.
        reply: Option<EntityReply>,
        /// The context of the span that sent it: the operation's span is its child.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trace: Option<TraceContext>,
    },
    /// Lock this entity for an orchestration, then pass the request on.
    EntityLock {
        /// The request.
        request: LockRequest,
    },
    /// Release this entity's lock held by `owner`.
    EntityRelease {
        /// The lock owner (the orchestration and its lock task).
        owner: EntityReply,
    },
}

/// What an entity operation asks for through its [`EntityContext`](crate::entity::EntityContext);
/// the engine turns these into messages, timers and new instances when the batch commits.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[non_exhaustive]
pub enum EntityEffect {
    /// Signal an entity operation (one-way), now or at `fire_at`.
    Signal {
        /// The target entity.
        target: EntityId,
        /// The operation.
        op: String,
        /// JSON input.
        input: String,
        /// When to deliver it; `None` for at once.
        fire_at: Option<Millis>,
    },
    /// Start an orchestration.
    StartOrchestration {
        /// The new instance's id.
        instance_id: String,
        /// The orchestrator's name.
        name: String,
        /// The orchestrator's version.
        version: u32,
        /// JSON input.
        input: String,
    },
}
