//! Durable entities: small addressable actors, keyed by `(entity name, key)`, with state that
//! persists after each batch of operations.
//!
//! `#[entity]` on an `impl` block implements [`Entity`] for the type: it dispatches operations
//! by name and generates a typed proxy, so callers write `client.signal_entity::<Counter>("k")
//! .add(5)`, `ctx.entity::<Counter>("k").get().await` and `ctx.signal::<Counter>("k").reset()`.
//!
//! An entity is an instance whose id is `@name@key`; it is created by its first operation.
//! Operations run one at a time per entity, in arrival order (so in order per sender), and
//! many of them are applied in one commit.

use crate::backend::{Action, InstanceMessage, NewInstance, TimerRequest, new_execution_id};
use crate::context::Millis;
use crate::orchestrator::Orchestrator;
use crate::payload;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::time::Duration;

/// An entity type, as implemented by `#[entity]`.
pub trait Entity: Default + Serialize + DeserializeOwned + 'static {
    /// The entity name (the type name in snake case unless set with `#[entity(name = "…")]`).
    const NAME: &'static str;
    /// The operation names, in declaration order.
    const OPERATIONS: &'static [&'static str];
    /// The typed proxy over a sink (what `signal_entity::<E>(key)` and friends return).
    type Proxy<S: EntitySink>;
    /// Wrap a sink into the typed proxy.
    #[doc(hidden)]
    fn __proxy<S: EntitySink>(sink: S) -> Self::Proxy<S>;
    /// Run operation `op` with a JSON `input`; the JSON result, or an error message.
    #[doc(hidden)]
    fn __dispatch(&mut self, ctx: &mut EntityContext, op: &str, input: &str) -> Result<String, String>;
}

/// Where a proxy sends an operation: the client (a signal), an orchestration (a call or a
/// signal), or another entity (a signal). Implemented by this crate only.
pub trait EntitySink {
    /// What an operation returning `R` gives the caller.
    type Output<R: DeserializeOwned + 'static>;
    /// Send operation `op` with `input`.
    #[doc(hidden)]
    fn __send<R: DeserializeOwned + 'static, I: Serialize>(self, op: &'static str, input: &I) -> Self::Output<R>;
}

/// An entity's address: its name and key. Ordered, which gives the one global order in which
/// `ctx.lock` acquires entities (so two orchestrations never deadlock).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntityId {
    /// The entity name.
    pub name: String,
    /// The key.
    pub key: String,
}

impl EntityId {
    /// The entity of type `E` with this key.
    pub fn of<E: Entity>(key: impl Into<String>) -> Self {
        Self { name: E::NAME.to_string(), key: key.into() }
    }
    /// An entity by name and key.
    pub fn new(name: impl Into<String>, key: impl Into<String>) -> Self {
        Self { name: name.into(), key: key.into() }
    }
    /// The instance id it is stored under: `@name@key`.
    pub fn instance_id(&self) -> String {
        format!("@{}@{}", self.name, self.key)
    }
    /// Parse an entity instance id (`@name@key`).
    pub fn from_instance_id(id: &str) -> Option<Self> {
        let rest = id.strip_prefix('@')?;
        let (name, key) = rest.split_once('@')?;
        Some(Self::new(name, key))
    }
}

impl std::fmt::Display for EntityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.name, self.key)
    }
}

/// Whether an instance id is an entity's.
pub fn is_entity_instance(id: &str) -> bool {
    EntityId::from_instance_id(id).is_some()
}

/// Who gets the result of an entity operation (an orchestration's task).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityReply {
    /// The calling orchestration.
    pub instance_id: String,
    /// Its execution.
    pub execution_id: String,
    /// The task waiting for the result.
    pub task_id: u64,
}

/// A request to lock a set of entities for an orchestration, passed from entity to entity in
/// the global order; the last one tells the orchestration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRequest {
    /// The orchestration that will own the locks (and the task waiting for them).
    pub owner: EntityReply,
    /// All entities to lock, sorted.
    pub entities: Vec<EntityId>,
    /// Index in `entities` of the entity this request is for.
    pub position: usize,
}

/// What an entity operation's context can do: signal other entities (now or later), start
/// orchestrations, and delete the entity.
#[derive(Debug)]
pub struct EntityContext {
    pub(crate) id: EntityId,
    pub(crate) now: Millis,
    pub(crate) actions: Vec<Action>,
    pub(crate) deleted: bool,
    pub(crate) counter: u64,
}

impl EntityContext {
    /// A context for entity `id` (for unit tests of entity code).
    pub fn new(id: EntityId) -> Self {
        Self { id, now: 0, actions: Vec::new(), deleted: false, counter: 0 }
    }
    /// This entity's key.
    pub fn key(&self) -> &str {
        &self.id.key
    }
    /// This entity's name.
    pub fn name(&self) -> &str {
        &self.id.name
    }
    /// This entity's id.
    pub fn entity_id(&self) -> &EntityId {
        &self.id
    }
    /// Signal another entity (one-way), once this operation's batch commits.
    pub fn signal<E: Entity>(&mut self, key: impl Into<String>) -> E::Proxy<EntitySignal<'_>> {
        E::__proxy(EntitySignal { ctx: self, target: EntityId::of::<E>(key), delay: None })
    }
    /// Signal another entity (or this one) after `delay`, durably.
    pub fn signal_after<E: Entity>(&mut self, key: impl Into<String>, delay: Duration) -> E::Proxy<EntitySignal<'_>> {
        E::__proxy(EntitySignal { ctx: self, target: EntityId::of::<E>(key), delay: Some(delay) })
    }
    /// Start an orchestration; returns its instance id.
    pub fn start_orchestration<O: Orchestrator>(&mut self, f: O, input: O::Input) -> Result<String, crate::Error> {
        let _ = f;
        let input = payload::to_json(&input, &format!("the input of orchestrator `{}`", O::NAME))
            .map_err(crate::Error::Payload)?;
        self.counter += 1;
        let instance_id = uuid::Uuid::new_v4().simple().to_string();
        self.actions.push(Action::CreateInstance(NewInstance {
            instance_id: instance_id.clone(),
            execution_id: new_execution_id(),
            name: O::NAME.to_string(),
            input,
            parent: None,
        }));
        Ok(instance_id)
    }
    /// Delete this entity once the operation completes: its state is gone, as if never created.
    pub fn delete_entity(&mut self) {
        self.deleted = true;
    }
}

/// Sink of [`EntityContext::signal`]: a one-way operation to another entity.
pub struct EntitySignal<'a> {
    ctx: &'a mut EntityContext,
    target: EntityId,
    delay: Option<Duration>,
}

impl EntitySink for EntitySignal<'_> {
    type Output<R: DeserializeOwned + 'static> = ();
    fn __send<R: DeserializeOwned + 'static, I: Serialize>(self, op: &'static str, input: &I) -> Self::Output<R> {
        let input =
            payload::to_json(input, &format!("the input of operation `{op}`")).unwrap_or_else(|e| panic!("{e}"));
        let message = InstanceMessage::EntityOperation {
            op: op.to_string(),
            input,
            sender: Some(self.ctx.id.instance_id()),
            reply: None,
        };
        let instance_id = self.target.instance_id();
        match self.delay {
            None => self.ctx.actions.push(Action::SendMessage { instance_id, message }),
            Some(d) => {
                self.ctx.counter += 1;
                self.ctx.actions.push(Action::SetTimer(TimerRequest {
                    instance_id,
                    key: format!("signal:{}:{}", uuid::Uuid::new_v4().simple(), self.ctx.counter),
                    fire_at: self.ctx.now.saturating_add(d.as_millis() as u64),
                    message,
                }));
            }
        }
    }
}

/// The persisted part of an entity besides its state: its lock and the operations deferred
/// while another orchestration holds it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EntityRecord {
    /// The entity's state as JSON; `None` if it does not exist (never created, or deleted).
    pub state: Option<String>,
    /// The lock holder, if locked.
    pub locked_by: Option<EntityReply>,
    /// Messages waiting for the lock to be released, in arrival order.
    pub deferred: Vec<InstanceMessage>,
    /// Lock requests released before they arrived (their owner finished): ignored on arrival.
    pub cancelled_locks: Vec<EntityReply>,
}

/// The status record of an entity created by its first message: backends call this when a
/// message is sent to an entity instance id (`@name@key`) that does not exist.
pub fn implicit_entity_status(instance_id: &str, now: Millis) -> Option<crate::instance::InstanceStatus> {
    let id = EntityId::from_instance_id(instance_id)?;
    Some(crate::instance::InstanceStatus {
        name: id.name,
        instance_id: instance_id.to_string(),
        execution_id: String::new(),
        runtime_status: crate::instance::RuntimeStatus::Running,
        input: "null".to_string(),
        output: None,
        custom_status: None,
        error: None,
        reason: None,
        created_ms: now,
        updated_ms: now,
        parent: None,
    })
}
