//! The orchestrators and entities a worker runs: by name, and for orchestrators by version
//! too (several versions of one orchestrator run side by side).

use super::entity::EntityEntry;
use crate::context::OrchestrationContext;
use crate::error::Error;
use crate::flow::OrchestratorLimit;
use crate::orchestrator::{Orchestrator, StepInput, StepResult};
use std::collections::{BTreeMap, HashMap};

/// The step function the `#[orchestrator]` macro generates.
pub type StepFn = fn(&OrchestrationContext, StepInput<'_>) -> StepResult;

/// A registered orchestrator: its name, version, code fingerprint and step function.
#[derive(Clone, Copy, Debug)]
pub struct OrchestratorEntry {
    /// The name instances are started under.
    pub name: &'static str,
    /// Its version (`#[orchestrator(version = N)]`; 1 without it).
    pub version: u32,
    /// The fingerprint of its code.
    pub fingerprint: u64,
    /// Its step function.
    pub step: StepFn,
}

impl OrchestratorEntry {
    /// The entry of orchestrator `O`.
    pub fn of<O: Orchestrator>() -> Self {
        Self { name: O::NAME, version: O::VERSION, fingerprint: O::FINGERPRINT, step: O::__step }
    }
}

/// The orchestrators a worker can run, by name and version, and its entities.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    orchestrators: HashMap<&'static str, BTreeMap<u32, OrchestratorEntry>>,
    entities: HashMap<&'static str, EntityEntry>,
    /// Concurrency limits, by orchestrator name (every version).
    limits: HashMap<&'static str, OrchestratorLimit>,
    /// `(name, version)` registered more than once: refused by [`check`](Self::check).
    duplicates: Vec<(&'static str, u32)>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }
    /// Register orchestrator `O`.
    pub fn register<O: Orchestrator>(&mut self) -> &mut Self {
        self.insert(OrchestratorEntry::of::<O>())
    }
    /// Register an entry. A second entry with the same name and version is remembered as a
    /// duplicate, which [`check`](Self::check) refuses (the first one stays).
    pub fn insert(&mut self, entry: OrchestratorEntry) -> &mut Self {
        match self.orchestrators.entry(entry.name).or_default().entry(entry.version) {
            std::collections::btree_map::Entry::Occupied(_) => self.duplicates.push((entry.name, entry.version)),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(entry);
            }
        }
        self
    }
    /// `Err` naming every orchestrator name and version registered twice.
    pub fn check(&self) -> Result<(), Error> {
        if self.duplicates.is_empty() {
            return Ok(());
        }
        let list: Vec<String> =
            self.duplicates.iter().map(|(n, v)| format!("orchestrator `{n}` version {v}")).collect();
        Err(Error::Config(format!(
            "{} registered twice on this worker; give each body its own version \
             (`#[orchestrator(name = \"…\", version = N)]`) or register it once",
            list.join(", ")
        )))
    }
    /// The highest registered version of the orchestrator named `name`.
    pub fn get(&self, name: &str) -> Option<&OrchestratorEntry> {
        self.orchestrators.get(name).and_then(|v| v.values().next_back())
    }
    /// Version `version` of the orchestrator named `name`.
    pub fn get_version(&self, name: &str, version: u32) -> Option<&OrchestratorEntry> {
        self.orchestrators.get(name).and_then(|v| v.get(&version))
    }
    /// The registered versions of `name`, lowest first.
    pub fn versions(&self, name: &str) -> Vec<&OrchestratorEntry> {
        self.orchestrators.get(name).map(|v| v.values().collect()).unwrap_or_default()
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
    /// Limit how many instances of orchestrator `name` run at once (every version of it).
    pub fn set_limit(&mut self, name: &'static str, limit: OrchestratorLimit) -> &mut Self {
        self.limits.insert(name, limit);
        self
    }
    /// The concurrency limit of orchestrator `name`, if it has one.
    pub fn limit(&self, name: &str) -> Option<&OrchestratorLimit> {
        self.limits.get(name)
    }
    /// No orchestrator and no entity registered.
    pub fn is_empty(&self) -> bool {
        self.orchestrators.is_empty() && self.entities.is_empty()
    }
    /// The entity type named `name`.
    pub fn entity(&self, name: &str) -> Option<&EntityEntry> {
        self.entities.get(name)
    }
    /// The registered entity names for a message.
    pub(crate) fn known_entities(&self) -> String {
        let mut names: Vec<_> = self.entities.keys().copied().collect();
        names.sort_unstable();
        list_or_none(&names)
    }
    /// The registered orchestrator names for a message: "`a`, `b`" or "none".
    pub(crate) fn known(&self) -> String {
        list_or_none(&self.names())
    }
    /// The registered versions of `name` for a message: "1, 2" or "none".
    pub(crate) fn known_versions(&self, name: &str) -> String {
        let v: Vec<String> = self.versions(name).iter().map(|e| e.version.to_string()).collect();
        if v.is_empty() { "none".to_string() } else { v.join(", ") }
    }
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
    }
}
