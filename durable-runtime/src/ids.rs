//! Identities: entity addresses, the reply address of an entity call, lock requests, and
//! execution ids.

use serde::{Deserialize, Serialize};

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
    /// An entity by name and key.
    pub fn new(name: impl Into<String>, key: impl Into<String>) -> Self {
        Self { name: name.into(), key: key.into() }
    }
    /// The instance id it is stored under: `@name@key`.
    pub fn instance_id(&self) -> String {
        // (Made at its length at once: `format!` grows its string as it writes.)
        let mut id = String::with_capacity(2 + self.name.len() + self.key.len());
        id.push('@');
        id.push_str(&self.name);
        id.push('@');
        id.push_str(&self.key);
        id
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

/// The version of an orchestrator declared without `version = N`, and of instances recorded
/// before versions existed.
pub const FIRST_VERSION: u32 = 1;

/// The version of a new instance that runs on the highest version registered where it first
/// runs (`start_by_name`, `call_orchestrator_by_name`).
pub const LATEST_VERSION: u32 = 0;

/// [`FIRST_VERSION`], for `#[serde(default = …)]`.
pub(crate) fn first_version() -> u32 {
    FIRST_VERSION
}

/// A fresh execution id.
pub fn new_execution_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
