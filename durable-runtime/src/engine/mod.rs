//! The engine: steps an orchestration instance, independently of the backend.
//!
//! [`process`] takes an [`OrchestrationWorkItem`] (status, snapshot and pending messages of one
//! instance) and returns the [`StepCommit`] to write: history events, snapshot, status, and the
//! outbound actions (activities to run, timers to arm or cancel, messages to other instances).
//! It does no I/O; the worker fetches, calls it, and commits.
//!
//! Rules it follows:
//! - a panic in the orchestrator fails the instance with the panic message;
//! - an instance runs on the orchestrator version it started on (`registry`); a snapshot written
//!   by other code is resumed when that code still has its suspension point with the same live
//!   locals, else by a newer registered version, else from its history replayed (`resume`);
//!   when nothing here can, or its orchestrator is not registered here, it is left as it is:
//!   its messages stay in its inbox, its status says why (`blocked`), and it resumes once
//!   matching code is deployed;
//! - starting an unknown orchestrator, or with an input that does not deserialize, fails the
//!   instance with a clear message;
//! - `continue_as_new` restarts the history with the new input, carrying unconsumed events over;
//! - a missing snapshot is rebuilt by replaying the history ([`replay()`]).

mod cache;
mod commands;
mod entity;
pub(crate) mod limit;
mod process;
mod registry;
mod replay;
mod resume;
mod step;
pub mod store;

pub(crate) use step::panic_message;

pub use cache::SnapshotCache;
pub use entity::{EntityApplyFn, EntityEntry};
pub use registry::{OrchestratorEntry, Registry, StepFn};
pub use replay::{Replayed, replay, replay_orchestrator};
pub use resume::{ResumeCheck, check_resume};

use crate::history::HistoryEvent;
use crate::instance::RuntimeStatus;
use crate::messages::InstanceMessage;
use crate::state::Snapshot;
use crate::time::Millis;
use crate::trace::TraceContext;
use std::time::Duration;
use store::{Action, OrchestrationWorkItem, StepCommit};

/// The default limit on the payloads a step produces, and on those a client sends: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How long an instance that cannot run here (version mismatch, unregistered orchestrator)
    /// waits before it is looked at again.
    pub blocked_retry: Duration,
    /// The largest payload a step may produce, in bytes (JSON): an orchestration's output,
    /// custom status, `continue_as_new` input, and the inputs and event data it sends; an
    /// entity's state, an operation's result and what an operation sends. Over it, the
    /// orchestration fails (the step's other effects are dropped) or the entity operation
    /// fails (its state stays as it was), with a message naming the payload and the limit.
    pub max_payload_bytes: usize,
    /// How many of its last operations each entity keeps in its journal (0: none).
    pub entity_journal: usize,
    /// Replay the history of one committed orchestration step in this many through the
    /// registered code and report a divergence (0: never). See `WorkerBuilder::drift_check`.
    pub drift_check: u32,
    /// From how many entries (open tasks and results) a suspended instance's task table is
    /// kept entry by entry apart from the rest of its snapshot, so that a step writes only the
    /// entries it changed ([`store::SnapshotChange::Split`]); 0: never. The worker sets it
    /// for a backend that [keeps tables apart](store::Backend::keeps_task_tables_apart).
    pub task_table_apart_from: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            blocked_retry: Duration::from_secs(5),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            entity_journal: DEFAULT_ENTITY_JOURNAL,
            drift_check: 0,
            task_table_apart_from: 0,
        }
    }
}

/// From how many entries a task table is kept apart by default
/// (`WorkerBuilder::task_table_apart_from`).
pub const DEFAULT_TASK_TABLE_APART_FROM: usize = 256;

/// How many operations an entity's journal keeps by default.
pub const DEFAULT_ENTITY_JOURNAL: usize = 20;

/// The failure message of a payload over the limit: what it is, its size and the limit.
pub(crate) fn payload_too_large(what: String, size: usize, limit: usize) -> String {
    crate::metrics::payload_refused();
    crate::error::Error::PayloadTooLarge { what, size, limit }.to_string()
}

/// A work item looked at before stepping it: its snapshot decoded once, and whether its
/// history is needed.
#[derive(Debug)]
pub struct Prepared {
    /// The decoded snapshot, or why it could not be decoded.
    snapshot: Result<Option<Snapshot>, String>,
    /// Whether the step needs the instance's history for sure: to rebuild a missing snapshot or
    /// to rewind. ([`step`] may still ask for it: a snapshot no registered code can resume.)
    pub needs_history: bool,
    /// Whether the snapshot's task table, kept apart by the backend, is still to be read
    /// ([`Backend::snapshot_table`](store::Backend::snapshot_table)) and given with
    /// [`Prepared::fill_table`]; a step without it finds the snapshot unreadable.
    pub needs_table: bool,
    /// Whether the code that wrote the snapshot may step it without a probe (not after it
    /// refused it).
    shortcut: bool,
}

impl Prepared {
    /// The snapshot to step from: unreadable if its table, kept apart, was not given.
    fn table_checked(self) -> Result<Option<Snapshot>, String> {
        if self.needs_table {
            return Err("its task table, kept apart from the rest of its snapshot, was not read with it".to_string());
        }
        self.snapshot
    }

    /// Give the task table of a split snapshot ([`Prepared::needs_table`]), as the backend
    /// keeps it.
    pub fn fill_table(&mut self, entries: &[(u64, Vec<u8>)]) {
        if !self.needs_table {
            return;
        }
        self.needs_table = false;
        if let Ok(Some(s)) = &mut self.snapshot
            && let Err(e) = s.load_table(entries)
        {
            self.snapshot = Err(e.to_string());
        }
    }

    /// Where the instance's snapshot is suspended: its program counter and the suspension
    /// point's key (`ctx.wait_for_event("go")`), if it has a readable snapshot. Decodes the
    /// state machine's header: call it only when someone looks (a span that is enabled).
    pub fn resumed_at(&self) -> Option<(u32, String)> {
        let s = self.snapshot.as_ref().ok()?.as_ref()?;
        let st: crate::payload::Snapshot = crate::payload::from_state(&s.state).ok()?;
        Some((st.pc, st.at))
    }
}

/// Give what a step sends the step's trace context `ctx` where it carries none yet: the
/// activities it schedules, the instances it creates and the entity operations it sends (an
/// entity's step already gave each of these its operation's context).
pub fn stamp_trace(commit: &mut StepCommit, ctx: &TraceContext) {
    for a in &mut commit.actions {
        match a {
            Action::ScheduleActivity(r) => {
                r.trace.get_or_insert(*ctx);
            }
            Action::CreateInstance(n) => {
                n.trace.get_or_insert(*ctx);
            }
            Action::SendMessage { message: InstanceMessage::EntityOperation { trace, .. }, .. }
            | Action::SetTimer(store::TimerRequest {
                message: InstanceMessage::EntityOperation { trace, .. }, ..
            }) => {
                trace.get_or_insert(*ctx);
            }
            _ => {}
        }
    }
}

/// About how many bytes a commit writes: the snapshot, and its history events, actions and
/// status as JSON. Serializes them: for spans that are enabled only.
pub fn commit_bytes(c: &StepCommit) -> usize {
    let json = |v: &dyn erased::Json| v.json_len();
    let snapshot = match &c.snapshot {
        store::SnapshotChange::Set(b) => b.len(),
        store::SnapshotChange::Split { rest, table } => {
            let entries = match table {
                store::TableChange::Replace(set) | store::TableChange::Patch { set, .. } => set,
            };
            rest.len() + entries.iter().map(|(_, e)| e.len() + 8).sum::<usize>()
        }
        _ => 0,
    };
    snapshot
        + c.new_events.iter().map(|e| json(e)).sum::<usize>()
        + c.actions.iter().map(|a| json(a)).sum::<usize>()
        + c.status.as_ref().map_or(0, |s| json(s))
}

mod erased {
    /// The length of a value as JSON.
    pub(super) trait Json {
        fn json_len(&self) -> usize;
    }
    impl<T: serde::Serialize> Json for T {
        fn json_len(&self) -> usize {
            serde_json::to_vec(self).map_or(0, |v| v.len())
        }
    }
}

/// The trace context the step of `item` is a child of: the one recorded with the instance
/// (derived from its id if none was), or for an entity the context of the first operation
/// that carries one.
pub fn step_parent(item: &OrchestrationWorkItem) -> Option<TraceContext> {
    if crate::ids::is_entity_instance(&item.instance_id) {
        return item.messages.iter().find_map(|m| match &m.message {
            InstanceMessage::EntityOperation { trace, .. } => *trace,
            _ => None,
        });
    }
    let status = item.status.as_ref()?;
    Some(status.trace.unwrap_or_else(|| TraceContext::for_instance(&item.instance_id)))
}

/// Look at a work item before stepping it ([`Prepared::needs_history`] says whether to load
/// its history).
pub fn prepare(item: &OrchestrationWorkItem) -> Prepared {
    prepare_with(item, None)
}

/// [`prepare`], taking the decoded snapshot from `cache` when it holds one for exactly the work
/// item's snapshot bytes.
pub fn prepare_with(item: &OrchestrationWorkItem, cache: Option<&SnapshotCache>) -> Prepared {
    let Some(status) = item.status.as_ref().filter(|_| !crate::ids::is_entity_instance(&item.instance_id)) else {
        return Prepared { snapshot: Ok(None), needs_history: false, needs_table: false, shortcut: true };
    };
    let cached = match (cache, item.snapshot.as_deref()) {
        (Some(cache), Some(bytes)) => cache.take(&item.instance_id, bytes),
        _ => None,
    };
    let mut needs_table = false;
    let snapshot = match (cached, item.snapshot.as_deref()) {
        (Some(s), _) => Ok(Some(s)),
        (None, Some(bytes)) if Snapshot::is_split(bytes) => {
            needs_table = true;
            Snapshot::split_rest(bytes).map(Some).map_err(|e| e.to_string())
        }
        (None, bytes) => bytes.map(Snapshot::from_bytes).transpose().map_err(|e| e.to_string()),
    };
    let live = matches!(status.runtime_status, RuntimeStatus::Running | RuntimeStatus::Suspended);
    let rewind = status.runtime_status == RuntimeStatus::Failed
        && item.messages.iter().any(|m| matches!(m.message, InstanceMessage::Rewind { .. }));
    let lost = matches!(snapshot, Ok(None)) && live;
    // A snapshot no registered code resumes also needs the history (a replay may); `step`
    // finds that out and asks for it.
    Prepared { snapshot, needs_history: rewind || lost, needs_table, shortcut: true }
}

/// Whether [`process`] needs the instance's history for this work item.
pub fn needs_history(item: &OrchestrationWorkItem) -> bool {
    prepare(item).needs_history
}

/// The timer key of task `id` of execution `execution_id`.
pub fn timer_key(execution_id: &str, id: u64) -> String {
    format!("{execution_id}:{id}")
}

const WAKE_KEY: &str = "wake";

/// Step an instance: process its pending messages and return what to commit. `history` must be
/// given when [`needs_history`] says so; `now` is the backend's clock. Without the history, an
/// instance whose snapshot no registered code resumes is blocked without trying a replay:
/// [`step`] asks for the history instead (the worker uses it). A snapshot whose task table
/// the backend keeps apart ([`Prepared::needs_table`]) is unreadable here: step it with
/// [`prepare_with`], [`Prepared::fill_table`] and [`step_with`], as the worker does.
pub fn process(
    registry: &Registry,
    item: &OrchestrationWorkItem,
    history: Option<&[HistoryEvent]>,
    now: Millis,
    config: &EngineConfig,
) -> StepCommit {
    match run(registry, item, prepare(item).table_checked(), history, now, config, false, None, true) {
        Ok(c) => c,
        Err(ask) => match *ask {
            process::Ask::History(ask) => ask.0,
            // Not without the table, which a split snapshot here does not have (it is unreadable).
            process::Ask::Table => unreachable!("a snapshot without its table is never stepped"),
        },
    }
}

/// What [`step`] gives.
#[derive(Debug)]
pub enum Stepped {
    /// What to commit.
    Commit(StepCommit),
    /// Call again with the instance's history: no registered code resumes its snapshot, and a
    /// replay may.
    NeedsHistory(Prepared),
}

/// Step a [`prepare`]d work item, or ask once for its history if it turns out to need it (a
/// `Prepared` that asked, or said it needs the history, is never asked for it again).
pub fn step(
    registry: &Registry,
    item: &OrchestrationWorkItem,
    prepared: Prepared,
    history: Option<&[HistoryEvent]>,
    now: Millis,
    config: &EngineConfig,
) -> Stepped {
    step_with(registry, item, prepared, history, now, config, None)
}

/// [`step`], keeping the new snapshot decoded in `cache` for the instance's next step (see
/// [`prepare_with`]).
pub fn step_with(
    registry: &Registry,
    item: &OrchestrationWorkItem,
    prepared: Prepared,
    history: Option<&[HistoryEvent]>,
    now: Millis,
    config: &EngineConfig,
    cache: Option<&SnapshotCache>,
) -> Stepped {
    let ask = history.is_none() && !prepared.needs_history;
    let shortcut = prepared.shortcut;
    match run(registry, item, prepared.table_checked(), history, now, config, ask, cache, shortcut) {
        Ok(c) => Stepped::Commit(c),
        Err(ask) => match *ask {
            process::Ask::History(ask) => {
                Stepped::NeedsHistory(Prepared { snapshot: ask.1, needs_history: true, needs_table: false, shortcut })
            }
            process::Ask::Table => {
                // Read again (its table too, `needs_table`), and stepped without the shortcut.
                let mut again = prepare_with(item, None);
                again.shortcut = false;
                again.needs_history |= history.is_some();
                Stepped::NeedsHistory(again)
            }
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    registry: &Registry,
    item: &OrchestrationWorkItem,
    snapshot: Result<Option<Snapshot>, String>,
    history: Option<&[HistoryEvent]>,
    now: Millis,
    config: &EngineConfig,
    ask: bool,
    cache: Option<&SnapshotCache>,
    shortcut: bool,
) -> Result<StepCommit, Box<process::Ask>> {
    if crate::ids::is_entity_instance(&item.instance_id) {
        if let Some(id) = crate::ids::EntityId::from_instance_id(&item.instance_id)
            && id.name == crate::flow::LIMIT_ENTITY
        {
            return Ok(limit::process_semaphore(item, &id, now));
        }
        return Ok(entity::process_entity(registry, item, now, config));
    }
    process::process_orchestration(registry, item, snapshot, history, now, config, ask, cache, shortcut)
}
