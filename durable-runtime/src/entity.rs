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

use crate::ids::EntityId;
use crate::messages::EntityEffect;
use crate::orchestrator::Orchestrator;
use crate::payload;
use crate::time::Millis;
use serde::{Serialize, de::DeserializeOwned};
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

impl EntityId {
    /// The entity of type `E` with this key.
    pub fn of<E: Entity>(key: impl Into<String>) -> Self {
        Self { name: E::NAME.to_string(), key: key.into() }
    }
}

/// What an entity operation's context can do: signal other entities (now or later), start
/// orchestrations, and delete the entity.
#[derive(Debug)]
pub struct EntityContext {
    pub(crate) id: EntityId,
    pub(crate) now: Millis,
    pub(crate) effects: Vec<EntityEffect>,
    pub(crate) deleted: bool,
}

impl EntityContext {
    /// A context for entity `id` (for unit tests of entity code).
    pub fn new(id: EntityId) -> Self {
        Self { id, now: 0, effects: Vec::new(), deleted: false }
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
        let input = payload::to_json(&input, format_args!("the input of orchestrator `{}`", O::NAME))
            .map_err(crate::Error::Payload)?;
        let instance_id = uuid::Uuid::new_v4().simple().to_string();
        self.effects.push(EntityEffect::StartOrchestration {
            instance_id: instance_id.clone(),
            name: O::NAME.to_string(),
            version: O::VERSION,
            input,
        });
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
            payload::to_json(input, format_args!("the input of operation `{op}`")).unwrap_or_else(|e| panic!("{e}"));
        let fire_at = self.delay.map(|d| self.ctx.now.saturating_add(d.as_millis() as u64));
        self.ctx.effects.push(EntityEffect::Signal { target: self.target, op: op.to_string(), input, fire_at });
    }
}
