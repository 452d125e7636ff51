//! The client: starts, queries, signals and manages instances, from any process.

use crate::backend::{Backend, InstanceMessage, NewInstance};
use crate::engine::store::LATEST_VERSION;
use crate::entity::{Entity, EntitySink};
use crate::error::Error;
use crate::history::HistoryEvent;
use crate::ids::EntityId;
use crate::instance::{InstanceId, InstancePage, InstanceQuery, InstanceStatus, RuntimeStatus};
use crate::orchestrator::BoxFuture;
use crate::orchestrator::Orchestrator;
use crate::payload;
use crate::state::Snapshot;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The default limit on payloads (inputs, event data) sent through a client: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// Starts, queries, signals, terminates and purges instances. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    backend: Arc<dyn Backend>,
    max_payload_bytes: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("max_payload_bytes", &self.max_payload_bytes).finish()
    }
}

impl Client {
    /// A client on this backend.
    pub fn new<B: Backend>(backend: B) -> Self {
        Self::from_arc(Arc::new(backend))
    }

    /// A client on a shared backend.
    pub fn from_arc(backend: Arc<dyn Backend>) -> Self {
        Self { backend, max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES }
    }

    /// Refuse payloads (inputs, event data) over `n` bytes with `Error::PayloadTooLarge`
    /// (default [`DEFAULT_MAX_PAYLOAD_BYTES`]).
    pub fn with_max_payload_bytes(mut self, n: usize) -> Self {
        self.max_payload_bytes = n;
        self
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    fn check_size(&self, what: impl FnOnce() -> String, json: &str) -> Result<(), Error> {
        if json.len() > self.max_payload_bytes {
            return Err(Error::PayloadTooLarge { what: what(), size: json.len(), limit: self.max_payload_bytes });
        }
        Ok(())
    }

    /// Start orchestrator `f` with `input` under a new random instance id.
    pub async fn start<O: Orchestrator>(&self, f: O, input: O::Input) -> Result<InstanceId, Error> {
        self.start_with_id(f, InstanceId::random().into_string(), input).await
    }

    /// Start orchestrator `f` with `input` under instance id `id`. `Error::InstanceAlreadyExists`
    /// if a live instance has that id (a finished one is replaced).
    pub async fn start_with_id<O: Orchestrator>(
        &self,
        f: O,
        id: impl Into<String>,
        input: O::Input,
    ) -> Result<InstanceId, Error> {
        let _ = f;
        let json =
            payload::to_json(&input, &format!("the input of orchestrator `{}`", O::NAME)).map_err(Error::Payload)?;
        self.start_json(O::NAME, O::VERSION, id.into(), json).await
    }

    /// Start the orchestrator registered as `name` with a JSON input, under a new random id. It
    /// runs on the highest version of `name` registered on the worker that takes its first step.
    /// An unknown name or an input of the wrong shape fails the instance with a clear message.
    pub async fn start_by_name(&self, name: &str, input: serde_json::Value) -> Result<InstanceId, Error> {
        let json = input.to_string();
        self.start_json(name, LATEST_VERSION, InstanceId::random().into_string(), json).await
    }

    /// Start the orchestrator registered as `name` with a JSON input under instance id `id`.
    pub async fn start_by_name_with_id(
        &self,
        name: &str,
        id: impl Into<String>,
        input: serde_json::Value,
    ) -> Result<InstanceId, Error> {
        self.start_json(name, LATEST_VERSION, id.into(), input.to_string()).await
    }

    async fn start_json(&self, name: &str, version: u32, id: String, json: String) -> Result<InstanceId, Error> {
        let id = InstanceId::new(id)?;
        self.check_size(|| format!("the input of orchestrator `{name}`"), &json)?;
        self.backend.create_instance(NewInstance::new(id.as_str(), name, json).with_version(version)).await?;
        Ok(id)
    }

    /// The instance's status, or `None` if there is no such instance.
    pub async fn status(&self, id: &str) -> Result<Option<InstanceStatus>, Error> {
        self.backend.status(id).await
    }

    async fn existing(&self, id: &str) -> Result<InstanceStatus, Error> {
        self.backend.status(id).await?.ok_or_else(|| Error::InstanceNotFound(id.to_string()))
    }

    /// Wait (real time) until the instance has finished — Completed, Failed or Terminated — and
    /// return its status; `Error::Timeout` if it has not within `timeout`.
    pub async fn wait_for_completion(&self, id: &str, timeout: Duration) -> Result<InstanceStatus, Error> {
        match self.backend.wait_for_finished(id, timeout).await? {
            None => Err(Error::InstanceNotFound(id.to_string())),
            Some(s) if s.is_finished() => Ok(s),
            Some(s) => Err(Error::Timeout {
                id: id.to_string(),
                timeout,
                status: match &s.reason {
                    Some(r) => format!("{}: {r}", s.runtime_status),
                    None => s.runtime_status.to_string(),
                },
            }),
        }
    }

    /// The instance's history, oldest first.
    pub async fn history(&self, id: &str) -> Result<Vec<HistoryEvent>, Error> {
        self.backend.history(id).await?.ok_or_else(|| Error::InstanceNotFound(id.to_string()))
    }

    /// Instances matching `query`, one page at a time.
    pub async fn list(&self, query: InstanceQuery) -> Result<InstancePage, Error> {
        self.backend.list(query).await
    }

    /// Raise event `name` with `data` on the instance. Events that arrive before the
    /// orchestrator waits for them are kept until it does.
    pub async fn raise_event<T: Serialize>(&self, id: &str, name: &str, data: T) -> Result<(), Error> {
        let data = payload::to_json(&data, &format!("the data of event `{name}`")).map_err(Error::Payload)?;
        self.check_size(|| format!("the data of event `{name}`"), &data)?;
        let s = self.existing(id).await?;
        if s.is_finished() {
            return Err(invalid(&s, format!("cannot raise event `{name}` on a finished instance")));
        }
        self.backend.send_message(id, InstanceMessage::Event { name: name.to_string(), data }).await
    }

    /// Terminate the instance (its parent, if any, sees the sub-orchestration fail).
    pub async fn terminate(&self, id: &str, reason: &str) -> Result<(), Error> {
        let s = self.existing(id).await?;
        if s.is_finished() {
            return Err(invalid(&s, "cannot terminate an instance that has already finished".into()));
        }
        self.backend.send_message(id, InstanceMessage::Terminate { reason: reason.to_string() }).await
    }

    /// Suspend the instance: it takes no steps until resumed; messages wait.
    pub async fn suspend(&self, id: &str, reason: &str) -> Result<(), Error> {
        let s = self.existing(id).await?;
        if s.is_finished() {
            return Err(invalid(&s, "cannot suspend an instance that has already finished".into()));
        }
        self.backend.send_message(id, InstanceMessage::Suspend { reason: reason.to_string() }).await
    }

    /// Resume a suspended instance.
    pub async fn resume(&self, id: &str, reason: &str) -> Result<(), Error> {
        let s = self.existing(id).await?;
        if s.is_finished() {
            return Err(invalid(&s, "cannot resume an instance that has already finished".into()));
        }
        self.backend.send_message(id, InstanceMessage::Resume { reason: reason.to_string() }).await
    }

    /// Rewind a failed instance: the tasks whose failure failed it run again, and it goes on
    /// from there.
    pub async fn rewind(&self, id: &str, reason: &str) -> Result<(), Error> {
        let s = self.existing(id).await?;
        if s.runtime_status != RuntimeStatus::Failed {
            return Err(invalid(&s, "only a failed instance can be rewound".into()));
        }
        self.backend.send_message(id, InstanceMessage::Rewind { reason: reason.to_string() }).await
    }

    /// The live state of a suspended orchestration, for people and tools: its suspension
    /// point, program counter and live locals as JSON (`{"at": "Await3", "pc": 7, "locals":
    /// {...}}`, see [`payload::state_to_json`]). `None` if it has no snapshot (not started yet,
    /// finished, or a backend that cannot show it).
    pub async fn state(&self, id: &str) -> Result<Option<serde_json::Value>, Error> {
        Ok(self
            .backend
            .snapshot(id)
            .await?
            .map(|b| Snapshot::from_bytes(&b))
            .transpose()?
            .map(|s| payload::state_to_json(&s.state)))
    }

    /// Work waiting in the backend (activities, timers, unconsumed messages), if it can tell.
    pub async fn queue_depths(&self) -> Result<Option<crate::metrics::QueueDepths>, Error> {
        self.backend.queue_depths().await
    }

    /// Delete a finished instance and its history; `Ok(false)` if there was none.
    pub async fn purge(&self, id: &str) -> Result<bool, Error> {
        self.backend.purge(id).await
    }
}

impl Client {
    /// A typed proxy to signal operations of entity `E` with `key`: each operation returns a
    /// future that completes once the signal is stored (not when it has run), e.g.
    /// `client.signal_entity::<Counter>("k").add(10).await?`. The entity is created by its
    /// first operation.
    pub fn signal_entity<E: Entity>(&self, key: impl Into<String>) -> E::Proxy<ClientSignal<'_>> {
        E::__proxy(ClientSignal { client: self, entity: EntityId::of::<E>(key) })
    }

    /// Signal operation `op` of entity `name`/`key` with a JSON input, for callers without
    /// the entity's type. An unknown operation or an input of the wrong shape fails that
    /// operation only: the state stays as it was and [`entity`](Self::entity) reports the
    /// error.
    pub async fn signal_entity_by_name(
        &self,
        name: &str,
        key: &str,
        op: &str,
        input: serde_json::Value,
    ) -> Result<(), Error> {
        self.send_entity_operation(&EntityId::new(name, key), op, input.to_string()).await
    }

    /// Validate and send one operation (a signal) to an entity.
    async fn send_entity_operation(&self, id: &EntityId, op: &str, input: String) -> Result<(), Error> {
        validate_entity_id(id)?;
        self.check_size(|| format!("the input of operation `{op}` on entity `{id}`"), &input)?;
        let message = InstanceMessage::EntityOperation { op: op.to_string(), input, sender: None, reply: None };
        self.backend.send_message(&id.instance_id(), message).await
    }

    /// The state of entity `E` with `key`; `None` if it was never created (or was deleted).
    pub async fn entity_state<E: Entity>(&self, key: impl Into<String>) -> Result<Option<E>, Error> {
        let id = EntityId::of::<E>(key);
        match self.entity(&id.name, &id.key).await? {
            Some(EntityStatus { state: Some(json), .. }) => {
                payload::from_json(&json, &format!("the state of entity `{id}`")).map(Some).map_err(Error::Payload)
            }
            _ => Ok(None),
        }
    }

    /// An entity's record by name and key: its state as JSON (`None` if it does not exist), the
    /// last failed operation, and when it last changed. `None` if it never received anything.
    pub async fn entity(&self, name: &str, key: &str) -> Result<Option<EntityStatus>, Error> {
        let id = EntityId::new(name, key);
        Ok(self.backend.status(&id.instance_id()).await?.map(|s| EntityStatus::from_status(id, s)))
    }

    /// Entities, optionally of one name, in creation order (one page; see [`InstanceQuery`]).
    pub async fn list_entities(&self, name: Option<&str>, limit: usize) -> Result<Vec<EntityStatus>, Error> {
        let mut out = Vec::new();
        let mut query = InstanceQuery::new().with_limit(1000);
        if let Some(n) = name {
            query = query.with_name(n);
        }
        loop {
            let page = self.backend.list(query.clone()).await?;
            for s in page.instances {
                if let Some(id) = EntityId::from_instance_id(&s.instance_id) {
                    if s.output.is_some() {
                        out.push(EntityStatus::from_status(id, s));
                    }
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            match page.continuation {
                Some(c) => query = query.with_continuation(c),
                None => return Ok(out),
            }
        }
    }

    /// Delete an entity and its state; `Ok(false)` if there was none.
    pub async fn purge_entity(&self, name: &str, key: &str) -> Result<bool, Error> {
        self.backend.purge(&EntityId::new(name, key).instance_id()).await
    }
}

/// What [`Client::entity`] reports about an entity.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityStatus {
    /// The entity.
    pub id: EntityId,
    /// Its state as JSON; `None` if it does not exist (never created, or deleted).
    pub state: Option<String>,
    /// The error of the last operation that failed, if any.
    pub last_error: Option<String>,
    /// When it last changed (ms since the Unix epoch).
    pub updated_ms: crate::time::Millis,
}

impl EntityStatus {
    fn from_status(id: EntityId, s: InstanceStatus) -> Self {
        Self { id, state: s.output, last_error: s.error, updated_ms: s.updated_ms }
    }
}

fn validate_entity_id(id: &EntityId) -> Result<(), Error> {
    if id.name.is_empty() || id.name.contains('@') {
        return Err(Error::InvalidInstanceId {
            id: id.instance_id(),
            reason: "an entity name must be non-empty and must not contain `@`".to_string(),
        });
    }
    crate::instance::validate_instance_id(&id.instance_id())
}

/// Sink of [`Client::signal_entity`]: a one-way operation sent from outside.
pub struct ClientSignal<'a> {
    client: &'a Client,
    entity: EntityId,
}

impl<'a> EntitySink for ClientSignal<'a> {
    type Output<R: serde::de::DeserializeOwned + 'static> = BoxFuture<'a, Result<(), Error>>;
    fn __send<R: serde::de::DeserializeOwned + 'static, I: Serialize>(
        self,
        op: &'static str,
        input: &I,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let input = payload::to_json(input, &format!("the input of operation `{op}` on entity `{}`", self.entity));
        Box::pin(async move {
            let input = input.map_err(Error::Payload)?;
            self.client.send_entity_operation(&self.entity, op, input).await
        })
    }
}

fn invalid(s: &InstanceStatus, what: String) -> Error {
    Error::InvalidState { id: s.instance_id.clone(), status: s.runtime_status.to_string(), what }
}
