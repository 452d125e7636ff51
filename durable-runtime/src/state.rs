//! The persisted state of an instance: the runtime's task bookkeeping ([`RuntimeState`]), which
//! evolves as messages are applied, the [`Snapshot`] the engine writes at each suspension (the
//! generated state machine's bytes plus that bookkeeping), and an entity's [`EntityRecord`].

use crate::error::{Error, TaskError, TaskErrorKind};
use crate::ids::{EntityId, EntityReply};
use crate::messages::{Command, InstanceMessage, TaskMessage};
use crate::retry::RetryPolicy;
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A task result waiting to be consumed by the orchestrator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Completion {
    /// Arrival order: decides which task `when_any`/`select` report as first.
    pub seq: u64,
    /// The JSON result, or the failure.
    pub outcome: Result<String, TaskError>,
}

/// A task that was scheduled and has not completed yet.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum OpenTask {
    /// An activity; `attempt` counts from 1.
    Activity {
        /// Activity name.
        name: String,
        /// JSON input.
        input: String,
        /// Retry policy, if any.
        retry: Option<RetryPolicy>,
        /// Current attempt (1-based).
        attempt: u32,
        /// Waiting on the backoff timer before the next attempt.
        waiting_retry: bool,
    },
    /// A durable timer.
    Timer {
        /// When it fires.
        fire_at: Millis,
    },
    /// A wait for an external event.
    Event {
        /// The event name.
        name: String,
    },
    /// A sub-orchestration.
    SubOrchestration {
        /// Orchestrator name.
        name: String,
        /// The child's instance id.
        instance_id: String,
    },
    /// An entity operation called with a result.
    Entity {
        /// The entity.
        entity: EntityId,
        /// The operation.
        op: String,
    },
    /// A request to lock entities.
    Lock {
        /// The entities, sorted.
        entities: Vec<EntityId>,
    },
}

/// The runtime part of an orchestration's persisted state: task bookkeeping and buffered events.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RuntimeState {
    /// Next task id to hand out.
    pub next_id: u64,
    /// Next completion arrival number.
    pub next_seq: u64,
    /// Results delivered and not yet consumed by an `.await`.
    pub results: TaskMap<Completion>,
    /// Tasks scheduled and not completed.
    pub open: TaskMap<OpenTask>,
    /// Tasks the orchestrator no longer waits for (losers of `when_any`/`select`); their late
    /// results are dropped.
    pub abandoned: BTreeSet<u64>,
    /// External events that arrived before anyone waited for them, in arrival order.
    pub buffered_events: VecDeque<(String, String)>,
    /// Counter behind `new_uuid()`.
    pub uuid_counter: u64,
    /// Entity locks requested or held (by lock task id): released when the orchestration
    /// unlocks them or ends.
    #[serde(default)]
    pub locks: BTreeMap<u64, Vec<EntityId>>,
}

/// The tasks of one kind in a [`RuntimeState`] (open ones, or results), by task id: a map that
/// notes which ids it changed since it was loaded, so that a backend keeping a wide fan-out's
/// task table entry by entry writes only what a step changed ([`RuntimeState::take_touched`]).
/// Reads go through `Deref` to the map; every change goes through the methods here.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskMap<V> {
    map: BTreeMap<u64, V>,
    /// Ids inserted, removed or changed since the last `take_touched` (repeats allowed).
    #[serde(skip)]
    touched: Vec<u64>,
}

impl<V> Default for TaskMap<V> {
    fn default() -> Self {
        Self { map: BTreeMap::new(), touched: Vec::new() }
    }
}

impl<V: PartialEq> PartialEq for TaskMap<V> {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl<V> std::ops::Deref for TaskMap<V> {
    type Target = BTreeMap<u64, V>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<'a, V> IntoIterator for &'a TaskMap<V> {
    type Item = (&'a u64, &'a V);
    type IntoIter = std::collections::btree_map::Iter<'a, u64, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

impl<V> FromIterator<(u64, V)> for TaskMap<V> {
    fn from_iter<I: IntoIterator<Item = (u64, V)>>(iter: I) -> Self {
        Self { map: iter.into_iter().collect(), touched: Vec::new() }
    }
}

impl<V> TaskMap<V> {
    /// Insert or replace task `id`'s entry.
    pub fn insert(&mut self, id: u64, v: V) -> Option<V> {
        self.touched.push(id);
        self.map.insert(id, v)
    }
    /// Remove task `id`'s entry.
    pub fn remove(&mut self, id: &u64) -> Option<V> {
        let v = self.map.remove(id);
        if v.is_some() {
            self.touched.push(*id);
        }
        v
    }
    /// Task `id`'s entry, to change it.
    pub fn get_mut(&mut self, id: &u64) -> Option<&mut V> {
        let v = self.map.get_mut(id);
        if v.is_some() {
            self.touched.push(*id);
        }
        v
    }
    /// Insert without noting the change: for a table being loaded as it is stored.
    pub(crate) fn load(&mut self, id: u64, v: V) {
        self.map.insert(id, v);
    }
}

/// What applying a message did, for the history.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    /// The message completed a task, or was buffered (events).
    Delivered,
    /// An activity failed and will be retried after this backoff.
    RetryScheduled {
        /// Task id.
        id: u64,
        /// The attempt that will run next.
        next_attempt: u32,
        /// When.
        fire_at: Millis,
    },
    /// The message is a duplicate or for a task nobody waits for: dropped.
    Dropped,
}

/// The persisted state of a suspended orchestration: the generated state machine's snapshot
/// and the runtime's task bookkeeping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The orchestrator that wrote it.
    pub orchestrator: String,
    /// The orchestrator version that wrote it.
    #[serde(default = "crate::ids::first_version")]
    pub version: u32,
    /// The fingerprint of the orchestrator's code that wrote it.
    pub fingerprint: u64,
    /// The state machine's state (MessagePack).
    #[serde(with = "crate::payload::bytes")]
    pub state: Vec<u8>,
    /// Tasks, results and buffered events.
    pub runtime: RuntimeState,
    /// A `continue_as_new` input set in a step that then suspended: applied when the
    /// orchestrator returns.
    pub pending_continue_as_new: Option<String>,
}

impl Snapshot {
    /// Encode (MessagePack, fields by position: a parked instance's snapshot is kept small; the
    /// user's locals inside `state` keep their field names). Snapshots written with field
    /// names, as releases before this one did, read the same.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        rmp_serde::to_vec(self).map_err(|e| Error::Backend(format!("snapshot does not serialize: {e}")))
    }
    /// Decode. A snapshot whose task table a backend keeps apart ([`Snapshot::is_split`]) is
    /// refused: it is read with [`Snapshot::from_split`] and its table's entries.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if Self::is_split(bytes) {
            return Err(Error::Backend(
                "the snapshot's task table is stored apart from it and was not read with it".to_string(),
            ));
        }
        rmp_serde::from_slice(bytes).map_err(|e| Error::Backend(format!("snapshot does not deserialize: {e}")))
    }

    /// Whether stored snapshot bytes are the rest of a snapshot whose task table (open tasks and
    /// results) is kept entry by entry apart from it ([`Snapshot::to_split`]).
    pub fn is_split(bytes: &[u8]) -> bool {
        bytes.first() == Some(&SPLIT_TAG)
    }

    /// Encode all but the task table, which the backend keeps entry by entry
    /// ([`Snapshot::table_entry`]): `T`, a number unique to this encoding (so that the bytes of
    /// two steps never look alike while their tables differ: a worker keeping the decoded
    /// snapshot between steps trusts equal bytes), then the snapshot with an empty table.
    pub fn to_split(&mut self) -> Result<Vec<u8>, Error> {
        static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicU64> = std::sync::OnceLock::new();
        let next = NEXT.get_or_init(|| {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let seed =
                (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 40) ^ uuid::Uuid::new_v4().as_u64_pair().0;
            std::sync::atomic::AtomicU64::new(seed)
        });
        let stamp = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let open = std::mem::take(&mut self.runtime.open);
        let results = std::mem::take(&mut self.runtime.results);
        let body = self.to_bytes();
        self.runtime.open = open;
        self.runtime.results = results;
        let body = body?;
        let mut out = Vec::with_capacity(9 + body.len());
        out.push(SPLIT_TAG);
        out.extend_from_slice(&stamp.to_le_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decode what [`Snapshot::to_split`] wrote, with the table's `entries` as the backend
    /// kept them (any order).
    pub fn from_split(bytes: &[u8], entries: &[(u64, Vec<u8>)]) -> Result<Self, Error> {
        let mut s = Self::split_rest(bytes)?;
        s.load_table(entries)?;
        Ok(s)
    }

    /// Decode the part of a split snapshot kept with the instance; its table is empty.
    pub(crate) fn split_rest(bytes: &[u8]) -> Result<Self, Error> {
        if !Self::is_split(bytes) || bytes.len() < 9 {
            return Err(Error::Backend("a split snapshot is not readable (it is too short)".to_string()));
        }
        rmp_serde::from_slice(&bytes[9..]).map_err(|e| Error::Backend(format!("snapshot does not deserialize: {e}")))
    }

    /// Put a table's stored entries in.
    pub(crate) fn load_table(&mut self, entries: &[(u64, Vec<u8>)]) -> Result<(), Error> {
        for (id, bytes) in entries {
            let entry: TableEntry = rmp_serde::from_slice(bytes).map_err(|e| {
                Error::Backend(format!("entry {id} of the snapshot's task table does not deserialize: {e}"))
            })?;
            match entry {
                TableEntry::Open(t) => self.runtime.open.load(*id, t),
                TableEntry::Done(c) => self.runtime.results.load(*id, c),
            }
        }
        Ok(())
    }

    /// The stored form of task `id`'s entry in the table (an open task or a result); `None` if
    /// it has none.
    pub fn table_entry(&self, id: u64) -> Option<Result<Vec<u8>, Error>> {
        let encode = |e: &TableEntryRef<'_>| {
            rmp_serde::to_vec(e).map_err(|e| Error::Backend(format!("a task table entry does not serialize: {e}")))
        };
        if let Some(t) = self.runtime.open.get(&id) {
            return Some(encode(&TableEntryRef::Open(t)));
        }
        self.runtime.results.get(&id).map(|c| encode(&TableEntryRef::Done(c)))
    }

    /// Every entry of the table, in its stored form, by task id.
    pub fn table_entries(&self) -> Result<Vec<(u64, Vec<u8>)>, Error> {
        let ids = self.runtime.open.keys().chain(self.runtime.results.keys());
        ids.map(|id| Ok((*id, self.table_entry(*id).expect("the id is in the table")?))).collect()
    }
}

/// The first byte of a split snapshot (`Snapshot::to_split`): never the first of a MessagePack
/// array or map, which the other snapshots are.
const SPLIT_TAG: u8 = b'T';

/// One stored entry of a task table kept apart, as read.
#[derive(Deserialize)]
enum TableEntry {
    Open(OpenTask),
    Done(Completion),
}

/// One stored entry of a task table kept apart, as written (the same form as [`TableEntry`]).
#[derive(Serialize)]
enum TableEntryRef<'a> {
    Open(&'a OpenTask),
    Done(&'a Completion),
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
    /// The last operations it applied, oldest first (how many: `WorkerBuilder::entity_journal`).
    #[serde(default, skip_serializing_if = "std::collections::VecDeque::is_empty")]
    pub journal: std::collections::VecDeque<EntityJournalEntry>,
}

/// One operation an entity applied, as its journal keeps it (`Client::entity_journal`): what
/// answers "why did my entity's state change?".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityJournalEntry {
    /// When it was applied, in ms since the Unix epoch (the worker's step time).
    pub time_ms: crate::time::Millis,
    /// The operation.
    pub op: String,
    /// Its input as JSON (cut to 256 bytes, `…` at the end, if longer).
    pub input: String,
    /// Who sent it: the instance id of an orchestration, or of an entity (`@name@key`);
    /// `None` for a client.
    pub sender: Option<String>,
    /// Its result as JSON (cut like the input), if it succeeded.
    pub result: Option<String>,
    /// Its error, if it failed (the state was then left as it was).
    pub error: Option<String>,
}

impl EntityJournalEntry {
    /// `s`, cut to at most 256 bytes (at a character boundary) with `…` at the end if longer.
    pub(crate) fn cut(s: &str) -> String {
        const MAX: usize = 256;
        if s.len() <= MAX {
            return s.to_string();
        }
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

impl RuntimeState {
    /// The ids of the tasks whose entry (open task or result) changed since the table was
    /// loaded or this was last called, sorted, each once; forgets them.
    pub fn take_touched(&mut self) -> Vec<u64> {
        let mut ids = std::mem::take(&mut self.open.touched);
        ids.append(&mut self.results.touched);
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// How many entries the task table has (open tasks and results).
    pub fn table_len(&self) -> usize {
        self.open.len() + self.results.len()
    }

    /// Hand out the next task id.
    pub(crate) fn alloc(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Record task `id`'s result for the orchestrator to consume.
    pub(crate) fn complete(&mut self, id: u64, outcome: Result<String, TaskError>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.results.insert(id, Completion { seq, outcome });
    }

    /// Peek a leaf task's completion.
    pub(crate) fn completion(&self, id: u64) -> Option<&Completion> {
        self.results.get(&id)
    }

    /// The task is done with: drop its result, or if it has not completed, stop waiting for it.
    pub(crate) fn release(&mut self, id: u64, commands: &mut Vec<Command>) {
        if self.results.remove(&id).is_some() {
            return;
        }
        if let Some(open) = self.open.remove(&id) {
            self.abandoned.insert(id);
            match open {
                OpenTask::Timer { .. } => commands.push(Command::CancelTimer { id }),
                OpenTask::Activity { waiting_retry: true, .. } => commands.push(Command::CancelTimer { id }),
                _ => {}
            }
        }
    }

    /// Apply a delivered message at time `now`; follow-up commands (a retry's backoff timer, a
    /// retried activity) go to `commands`.
    pub fn apply(&mut self, msg: TaskMessage, now: Millis, commands: &mut Vec<Command>) -> Applied {
        match msg {
            TaskMessage::EventRaised { name, data } => {
                let waiter = self.open.iter().find_map(|(id, t)| match t {
                    OpenTask::Event { name: n } if *n == name => Some(*id),
                    _ => None,
                });
                match waiter {
                    Some(id) => {
                        self.open.remove(&id);
                        self.complete(id, Ok(data));
                    }
                    None => self.buffered_events.push_back((name, data)),
                }
                Applied::Delivered
            }
            TaskMessage::ActivityCompleted { id, result } => match self.open.get(&id) {
                Some(OpenTask::Activity { waiting_retry: false, .. }) => {
                    self.open.remove(&id);
                    self.complete(id, Ok(result));
                    Applied::Delivered
                }
                _ => self.drop_late(id),
            },
            TaskMessage::ActivityFailed { id, attempt, message } => {
                let Some(OpenTask::Activity { name, retry, attempt: current, waiting_retry, .. }) =
                    self.open.get_mut(&id)
                else {
                    return self.drop_late(id);
                };
                if *waiting_retry || *current != attempt {
                    return Applied::Dropped;
                }
                let delay = retry.as_ref().and_then(|p| p.delay_after(attempt));
                match delay {
                    Some(d) => {
                        *waiting_retry = true;
                        let fire_at = now + d.as_millis() as u64;
                        commands.push(Command::CreateTimer { id, fire_at });
                        Applied::RetryScheduled { id, next_attempt: attempt + 1, fire_at }
                    }
                    None => {
                        let err = TaskError::new(TaskErrorKind::ActivityFailed, name.clone(), message);
                        self.open.remove(&id);
                        self.complete(id, Err(err));
                        Applied::Delivered
                    }
                }
            }
            TaskMessage::TimerFired { id } => match self.open.get_mut(&id) {
                Some(OpenTask::Timer { .. }) => {
                    self.open.remove(&id);
                    self.complete(id, Ok("null".to_string()));
                    Applied::Delivered
                }
                Some(OpenTask::Activity { name, input, attempt, waiting_retry, .. }) if *waiting_retry => {
                    *waiting_retry = false;
                    *attempt += 1;
                    commands.push(Command::ScheduleActivity {
                        id,
                        name: name.clone(),
                        input: input.clone(),
                        attempt: *attempt,
                    });
                    Applied::Delivered
                }
                _ => self.drop_late(id),
            },
            TaskMessage::SubOrchestrationCompleted { id, result } => match self.open.get(&id) {
                Some(OpenTask::SubOrchestration { .. }) => {
                    self.open.remove(&id);
                    self.complete(id, Ok(result));
                    Applied::Delivered
                }
                _ => self.drop_late(id),
            },
            TaskMessage::EntityCompleted { id, result } => match self.open.get(&id) {
                Some(OpenTask::Entity { .. }) => {
                    self.open.remove(&id);
                    self.complete(id, Ok(result));
                    Applied::Delivered
                }
                _ => self.drop_late(id),
            },
            TaskMessage::EntityFailed { id, message } => match self.open.get(&id) {
                Some(OpenTask::Entity { entity, op }) => {
                    let err = TaskError::new(TaskErrorKind::EntityFailed, format!("{entity}.{op}"), message);
                    self.open.remove(&id);
                    self.complete(id, Err(err));
                    Applied::Delivered
                }
                _ => self.drop_late(id),
            },
            TaskMessage::LockAcquired { id } => match self.open.get(&id) {
                Some(OpenTask::Lock { .. }) => {
                    self.open.remove(&id);
                    self.complete(id, Ok(serde_json::json!({ "lock": id }).to_string()));
                    Applied::Delivered
                }
                _ => self.drop_late(id),
            },
            TaskMessage::SubOrchestrationFailed { id, message } => match self.open.get(&id) {
                Some(OpenTask::SubOrchestration { name, .. }) => {
                    let err = TaskError::new(TaskErrorKind::SubOrchestrationFailed, name.clone(), message);
                    self.open.remove(&id);
                    self.complete(id, Err(err));
                    Applied::Delivered
                }
                _ => self.drop_late(id),
            },
        }
    }

    fn drop_late(&mut self, id: u64) -> Applied {
        self.abandoned.remove(&id);
        Applied::Dropped
    }

    /// Open a task and emit the command that starts it.
    pub(crate) fn schedule(
        &mut self,
        commands: &mut Vec<Command>,
        open: OpenTask,
        command: impl FnOnce(u64) -> Command,
    ) -> u64 {
        let id = self.alloc();
        self.open.insert(id, open);
        commands.push(command(id));
        id
    }

    /// A task that failed before it could be scheduled.
    pub(crate) fn fail_now(&mut self, kind: TaskErrorKind, name: &str, message: String) -> u64 {
        let id = self.alloc();
        self.complete(id, Err(TaskError::new(kind, name, message)));
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_map_notes_every_id_it_changed_once() {
        let mut rt = RuntimeState::default();
        let mut commands = Vec::new();
        for _ in 0..3 {
            rt.schedule(&mut commands, OpenTask::Timer { fire_at: 5 }, |id| Command::CreateTimer { id, fire_at: 5 });
        }
        assert_eq!(rt.take_touched(), vec![0, 1, 2]);
        assert_eq!(rt.take_touched(), Vec::<u64>::new(), "taken");
        assert_eq!(rt.apply(TaskMessage::TimerFired { id: 1 }, 0, &mut commands), Applied::Delivered);
        rt.release(1, &mut commands);
        assert_eq!(rt.apply(TaskMessage::TimerFired { id: 9 }, 0, &mut commands), Applied::Dropped);
        assert_eq!(rt.take_touched(), vec![1], "moved to the results, then consumed; 9 was never there");
    }

    #[test]
    fn a_split_snapshot_reads_back_with_its_table_and_two_encodings_differ() {
        let mut s = snapshot();
        let mut commands = Vec::new();
        for i in 0..4 {
            s.runtime
                .schedule(&mut commands, OpenTask::Timer { fire_at: i }, |id| Command::CreateTimer { id, fire_at: i });
        }
        s.runtime.apply(TaskMessage::TimerFired { id: 2 }, 0, &mut commands);
        let rest = s.to_split().unwrap();
        assert!(Snapshot::is_split(&rest));
        assert!(Snapshot::from_bytes(&rest).is_err(), "a split snapshot is not read without its table");
        let entries = s.table_entries().unwrap();
        assert_eq!(entries.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![0, 1, 3, 2]);
        assert_eq!(Snapshot::from_split(&rest, &entries).unwrap(), s);
        assert_ne!(s.to_split().unwrap(), rest, "each encoding carries its own number");
        assert!(Snapshot::from_split(&rest, &[(7, vec![0xc1])]).is_err(), "an unreadable entry is an error");
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            orchestrator: "o".into(),
            version: 2,
            fingerprint: 7,
            state: (0..=255).collect(),
            runtime: RuntimeState::default(),
            pending_continue_as_new: None,
        }
    }

    #[test]
    fn the_state_bytes_are_written_as_one_binary_and_read_back() {
        let s = snapshot();
        let bytes = s.to_bytes().unwrap();
        assert_eq!(Snapshot::from_bytes(&bytes).unwrap(), s);
        // The 256 bytes stand as they are (a binary), not as 256 numbers of up to 2 bytes each.
        assert!(bytes.windows(256).any(|w| w == s.state.as_slice()), "{bytes:?}");
    }

    #[test]
    fn a_snapshot_written_with_the_state_as_numbers_still_reads() {
        #[derive(Serialize)]
        struct Before<'a> {
            orchestrator: &'a str,
            fingerprint: u64,
            state: &'a [u8],
            runtime: RuntimeState,
            pending_continue_as_new: Option<String>,
        }
        let s = snapshot();
        let before = Before {
            orchestrator: "o",
            fingerprint: 7,
            state: &s.state,
            runtime: RuntimeState::default(),
            pending_continue_as_new: None,
        };
        let bytes = rmp_serde::to_vec_named(&before).unwrap();
        let read = Snapshot::from_bytes(&bytes).unwrap();
        assert_eq!(read.state, s.state);
        assert_eq!(read.version, 1, "a snapshot from before versions is version 1");
    }

    #[test]
    fn a_snapshot_written_with_field_names_reads_as_the_compact_one() {
        let mut s = snapshot();
        s.runtime.buffered_events.push_back(("go".into(), "1".into()));
        s.runtime.next_id = 3;
        s.pending_continue_as_new = Some("5".into());
        let named = rmp_serde::to_vec_named(&s).unwrap();
        let compact = s.to_bytes().unwrap();
        assert_eq!(Snapshot::from_bytes(&named).unwrap(), s);
        assert_eq!(Snapshot::from_bytes(&compact).unwrap(), s);
        assert!(compact.len() + 100 < named.len(), "{} vs {} bytes", compact.len(), named.len());
    }
}
