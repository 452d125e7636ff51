//! The storage contract: what the engine needs from a backend ([`Backend`]) and the types that
//! cross it — work items in, atomic step commits out. Backends (`crate::backend`) implement it;
//! snapshots cross it as opaque bytes, so every backend stores exactly what the engine wrote.
//!
//! A backend is a set of queues and records with a few atomic operations; all the logic of
//! stepping an orchestration lives in [`crate::engine`], so every backend behaves the same.
//!
//! # The model
//!
//! - An **instance** has a status record ([`InstanceStatus`]), an append-only history, an
//!   optional snapshot, and an **inbox** of [`InstanceMessage`]s. Everything that happens to an
//!   instance arrives through its inbox: its start, activity results, fired timers, external
//!   events, sub-orchestration outcomes, and control messages (terminate, suspend, …). Messages
//!   are routed by instance id only, so other kinds of instances (entities) use the same path.
//! - **Orchestration work** is an instance with new messages: [`Backend::fetch_orchestration_work`]
//!   hands it to one worker at a time (locked with a token that fences stale workers), with all
//!   its unacknowledged messages. The worker steps it and [`Backend::commit`]s the result
//!   atomically: history append, snapshot, status, outbound [`Action`]s, and acknowledgement of
//!   the consumed messages — all or nothing, and only if the lock is still held. Messages the
//!   engine did not consume (an instance that is suspended, or waiting for matching code) stay
//!   in the inbox and are offered again with the next new message.
//! - **Timers** are messages delivered to an inbox at a time ([`TimerRequest`]); the backend
//!   delivers them when they are due (the memory backend while fetching work and when its clock
//!   is advanced; a Redis backend from a sorted set).
//! - **Activity work items** are queued by commits; any worker fetches them, runs them and
//!   completes them, which sends the result to the instance's inbox. Only the first completion
//!   of a work item counts.
//!
//! A Redis Streams backend maps this onto partitions (hash of the instance id), a lease with a
//! fencing epoch per partition (the `lock` token), consumer groups for activity streams, a
//! sorted set for timers, and one Lua script per commit.

use crate::error::Error;
use crate::history::{HistoryEvent, ParentRef};
use crate::ids::new_execution_id;
use crate::instance::{InstancePage, InstanceQuery, InstanceStatus, RuntimeStatus};
use crate::messages::{InstanceMessage, TaskMessage};
use crate::metrics::QueueDepths;
use crate::orchestrator::BoxFuture;
use crate::time::Millis;
use crate::trace::TraceContext;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A backend's id of an inbox message, used to acknowledge it.
pub type MessageId = u64;

/// A message waiting in an inbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingMessage {
    /// Its id, to acknowledge it in [`StepCommit::consumed`].
    pub id: MessageId,
    /// The message.
    pub message: InstanceMessage,
}

/// [`NewInstance::version`] for "the highest version registered where it first runs".
pub use crate::ids::LATEST_VERSION;

/// An instance to create.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewInstance {
    /// Its id (already validated).
    pub instance_id: String,
    /// Its first execution's id.
    pub execution_id: String,
    /// The orchestrator's name.
    pub name: String,
    /// JSON input.
    pub input: String,
    /// The parent, for a sub-orchestration.
    pub parent: Option<ParentRef>,
    /// The orchestrator version to run; 0 for the highest version registered on the worker
    /// that takes its first step (`Client::start_by_name`).
    #[serde(default = "crate::ids::first_version")]
    pub version: u32,
    /// The trace context it is started in (the client's, or the span of the step or entity
    /// operation that started it): recorded with the instance; its steps are children of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
}

impl NewInstance {
    /// An instance of the highest registered version of orchestrator `name` with this JSON
    /// input and a fresh execution id ([`with_version`](Self::with_version) picks a version).
    pub fn new(instance_id: impl Into<String>, name: impl Into<String>, input: impl Into<String>) -> Self {
        Self {
            instance_id: instance_id.into(),
            execution_id: new_execution_id(),
            name: name.into(),
            input: input.into(),
            parent: None,
            version: LATEST_VERSION,
            trace: None,
        }
    }

    /// Record trace context `trace` with the instance.
    pub fn with_trace(mut self, trace: Option<TraceContext>) -> Self {
        self.trace = trace;
        self
    }

    /// Run on orchestrator version `version`.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// The status record of the new instance: `Pending`, created at `now`.
    pub fn initial_status(&self, now: Millis) -> InstanceStatus {
        InstanceStatus {
            parent: self.parent.clone(),
            version: self.version,
            trace: self.trace,
            ..InstanceStatus::created(
                self.name.clone(),
                self.instance_id.clone(),
                self.execution_id.clone(),
                RuntimeStatus::Pending,
                self.input.clone(),
                now,
            )
        }
    }

    /// What the parent of a sub-orchestration is told when an instance with this id already
    /// runs (so it was not created): `(parent instance id, message)`; `None` without a parent.
    pub fn already_exists_reply(&self) -> Option<(String, InstanceMessage)> {
        let p = self.parent.as_ref()?;
        let message = Error::InstanceAlreadyExists(self.instance_id.clone()).to_string();
        let result = TaskMessage::SubOrchestrationFailed { id: p.task_id, message };
        Some((p.instance_id.clone(), InstanceMessage::TaskResult { execution_id: p.execution_id.clone(), result }))
    }

    /// The first message of the new instance's inbox.
    pub fn start_message(&self) -> InstanceMessage {
        InstanceMessage::Start { execution_id: self.execution_id.clone() }
    }
}

/// An instance with new messages, locked for one worker to step.
#[derive(Clone, Debug, PartialEq)]
pub struct OrchestrationWorkItem {
    /// The instance.
    pub instance_id: String,
    /// The lock token (a fencing epoch): a commit with a stale token is refused.
    pub lock: u64,
    /// Its status record; `None` if the instance no longer exists (purged).
    pub status: Option<InstanceStatus>,
    /// Its snapshot ([`Snapshot::to_bytes`](crate::state::Snapshot::to_bytes)), if any: opaque bytes to the backend.
    pub snapshot: Option<Vec<u8>>,
    /// How many events its history has (the next event's `seq`).
    pub history_len: u64,
    /// All unacknowledged messages of its inbox, in arrival order.
    pub messages: Vec<PendingMessage>,
}

/// What to do with the snapshot in a commit.
#[derive(Clone, Debug, PartialEq)]
pub enum SnapshotChange {
    /// Leave it as it is.
    Keep,
    /// Replace it with these bytes ([`Snapshot::to_bytes`](crate::state::Snapshot::to_bytes)).
    Set(Vec<u8>),
    /// Delete it (the instance finished).
    Delete,
    /// Replace it with `rest` ([`Snapshot::to_split`](crate::state::Snapshot::to_split)) and
    /// change its task table, which the backend keeps entry by entry apart from it (only to a
    /// backend whose [`Backend::keeps_task_tables_apart`] says so): a wide fan-out's step
    /// writes the entries it changed, not every open task and result.
    Split {
        /// The snapshot without its table.
        rest: Vec<u8>,
        /// What changes in the table.
        table: TableChange,
    },
}

/// A task table kept apart: entries (their stored bytes) by task id.
pub type TableEntries = Vec<(u64, Vec<u8>)>;

/// How a step changes a task table kept apart ([`SnapshotChange::Split`]). Entries are
/// [`Snapshot::table_entry`](crate::state::Snapshot::table_entry) bytes by task id.
#[derive(Clone, Debug, PartialEq)]
pub enum TableChange {
    /// The table is these entries (the ones stored before, if any, are dropped).
    Replace(Vec<(u64, Vec<u8>)>),
    /// Set these entries and remove those; the others stay.
    Patch {
        /// Entries added or changed.
        set: Vec<(u64, Vec<u8>)>,
        /// Entries removed.
        remove: Vec<u64>,
    },
}

impl TableChange {
    /// Apply to `table` (a backend keeping it in memory).
    pub fn apply(&self, table: &mut std::collections::BTreeMap<u64, Vec<u8>>) {
        match self {
            TableChange::Replace(entries) => *table = entries.iter().cloned().collect(),
            TableChange::Patch { set, remove } => {
                for id in remove {
                    table.remove(id);
                }
                table.extend(set.iter().cloned());
            }
        }
    }
}

/// The result of one orchestration step, committed atomically.
#[derive(Clone, Debug, PartialEq)]
pub struct StepCommit {
    /// The instance.
    pub instance_id: String,
    /// The lock token from the work item.
    pub lock: u64,
    /// Inbox messages to acknowledge (remove).
    pub consumed: Vec<MessageId>,
    /// Replace the whole history with `new_events` instead of appending (a new execution).
    pub reset_history: bool,
    /// History events to append.
    pub new_events: Vec<HistoryEvent>,
    /// The snapshot.
    pub snapshot: SnapshotChange,
    /// The new status record, if it changed.
    pub status: Option<InstanceStatus>,
    /// Outbound actions: activities, timers, messages to instances, instances to create.
    pub actions: Vec<Action>,
}

impl StepCommit {
    /// A commit that changes nothing and acknowledges `consumed`.
    pub fn ack(item: &OrchestrationWorkItem, consumed: Vec<MessageId>) -> Self {
        Self {
            instance_id: item.instance_id.clone(),
            lock: item.lock,
            consumed,
            reset_history: false,
            new_events: Vec::new(),
            snapshot: SnapshotChange::Keep,
            status: None,
            actions: Vec::new(),
        }
    }
}

/// An outbound effect of a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Action {
    /// Queue an activity work item.
    ScheduleActivity(ActivityRequest),
    /// Deliver a message to an inbox at a time (replacing a timer with the same key).
    SetTimer(TimerRequest),
    /// Cancel a timer, if it has not fired.
    CancelTimer {
        /// The instance the timer belongs to.
        instance_id: String,
        /// The timer's key.
        key: String,
    },
    /// Put a message in an instance's inbox (dropped if the instance does not exist).
    SendMessage {
        /// The target instance.
        instance_id: String,
        /// The message.
        message: InstanceMessage,
    },
    /// Create an instance (a sub-orchestration). If a live instance with that id exists, the
    /// backend does not create it and, if it has a parent, sends the parent a
    /// `SubOrchestrationFailed` result saying so.
    CreateInstance(NewInstance),
}

/// An activity to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityRequest {
    /// The orchestration instance that scheduled it.
    pub instance_id: String,
    /// Its execution.
    pub execution_id: String,
    /// The task id within the instance.
    pub task_id: u64,
    /// Activity name.
    pub name: String,
    /// JSON input.
    pub input: String,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The context of the step that scheduled it: the attempt's span is its child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
}

impl ActivityRequest {
    /// The message that reports this activity's outcome to its instance.
    pub fn result_message(&self, outcome: Result<String, String>) -> InstanceMessage {
        let result = match outcome {
            Ok(result) => TaskMessage::ActivityCompleted { id: self.task_id, result },
            Err(message) => TaskMessage::ActivityFailed { id: self.task_id, attempt: self.attempt, message },
        };
        InstanceMessage::TaskResult { execution_id: self.execution_id.clone(), result }
    }
}

/// A fetched activity work item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityWorkItem {
    /// The backend's id of the work item (completing it twice counts once).
    pub work_id: u64,
    /// What to run.
    pub request: ActivityRequest,
}

/// A message to deliver at a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimerRequest {
    /// The target instance.
    pub instance_id: String,
    /// A key, unique within the instance, to cancel or replace it.
    pub key: String,
    /// When, in ms since the Unix epoch. Never delivered earlier.
    pub fire_at: Millis,
    /// What to deliver.
    pub message: InstanceMessage,
}

/// An entry a backend could not read (a message variant from a newer release during a rolling
/// upgrade, say), moved out of its stream to the backend's dead-letter stream: neither lost nor
/// read again and again. Shown by [`Client::dead_letters`](crate::Client::dead_letters).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Its id in the dead-letter stream.
    pub id: String,
    /// The stream it came from (for Redis, the key, e.g. `{durable:p3}:ctl`).
    pub stream: String,
    /// Its id in that stream.
    pub entry_id: String,
    /// The partition of that stream.
    pub partition: u32,
    /// Why it could not be read (the decode error).
    pub reason: String,
    /// When it was moved, in ms since the Unix epoch.
    pub time_ms: Millis,
    /// The entry's fields as they were (bytes that are not UTF-8 are replaced).
    pub fields: std::collections::BTreeMap<String, String>,
}

/// Storage for instances, inboxes, timers and activity work. Object-safe: the worker and the
/// client hold an `Arc<dyn Backend>`.
///
/// Implementations must make [`commit`](Backend::commit) atomic, hand an instance to one
/// worker at a time, and never deliver a timer before its time. The `fetch_*` futures must be
/// cancel-safe: the worker drops them on shutdown, and dropping one before it completes must
/// not lose the work it was about to return.
pub trait Backend: Send + Sync + 'static {
    /// The backend's clock, in ms since the Unix epoch (virtual for a test backend).
    fn now(&self) -> Millis;

    /// Create an instance: status `Pending`, an empty history, and `new.start_message()` in its
    /// inbox. `Error::InstanceAlreadyExists` if a live (not finished) instance has that id; a
    /// finished one is replaced.
    fn create_instance(&self, new: NewInstance) -> BoxFuture<'_, Result<(), Error>>;

    /// Put a message in an instance's inbox. `Error::InstanceNotFound` if there is none.
    fn send_message<'a>(&'a self, instance_id: &'a str, message: InstanceMessage) -> BoxFuture<'a, Result<(), Error>>;

    /// An instance's status record.
    fn status<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<Option<InstanceStatus>, Error>>;

    /// An instance's history.
    fn history<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<Option<Vec<HistoryEvent>>, Error>>;

    /// Instances matching a query, ordered by creation time then id.
    fn list(&self, query: InstanceQuery) -> BoxFuture<'_, Result<InstancePage, Error>>;

    /// Delete a finished instance with everything it has; `Ok(false)` if there is none;
    /// `Error::InvalidState` if it has not finished.
    fn purge<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<bool, Error>>;

    /// Delete every finished instance matching `query` (its statuses, name and creation
    /// times), with everything it has; how many were deleted. A live instance is never deleted,
    /// and neither is an entity (entities never finish). `query.statuses` may name only
    /// finished statuses (none = all three) and `query.continuation` must be `None`, else
    /// `Error::InvalidQuery`; `query.limit`, if set, is the most to delete in this call.
    ///
    /// Backends delete in bounded batches. The default pages through [`list`](Backend::list)
    /// and [`purge`](Backend::purge)s each match; [`Memory`](crate::backend::Memory) and
    /// [`Redis`](crate::backend::Redis) do better (Redis: one script per batch of 100).
    fn purge_where(&self, query: InstanceQuery) -> BoxFuture<'_, Result<u64, Error>> {
        Box::pin(async move {
            let statuses = crate::instance::purge_statuses(&query)?;
            let max = query.limit.map_or(u64::MAX, |n| n as u64);
            let mut page = InstanceQuery { statuses, limit: Some(100), ..query };
            let mut purged = 0;
            while purged < max {
                let found = self.list(page.clone()).await?;
                for s in &found.instances {
                    if purged == max {
                        break;
                    }
                    match self.purge(&s.instance_id).await {
                        Ok(true) => purged += 1,
                        // Gone or restarted in between: not ours to delete any more.
                        Ok(false) | Err(Error::InvalidState { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                match found.continuation {
                    Some(c) => page.continuation = Some(c),
                    None => break,
                }
            }
            Ok(purged)
        })
    }

    /// An instance with new messages, locked for the caller; waits up to `wait` for one.
    /// Due timers are delivered before looking.
    fn fetch_orchestration_work(&self, wait: Duration) -> BoxFuture<'_, Result<Option<OrchestrationWorkItem>, Error>>;

    /// Commit a step atomically and release the lock. Refused with `Error::LockLost` if the
    /// lock is no longer held (then nothing is written).
    fn commit(&self, commit: StepCommit) -> BoxFuture<'_, Result<(), Error>>;

    /// Release a fetched instance without committing: its messages are offered again.
    fn abandon_orchestration_work<'a>(&'a self, instance_id: &'a str, lock: u64) -> BoxFuture<'a, Result<(), Error>>;

    /// An activity work item; waits up to `wait` for one.
    fn fetch_activity_work(&self, wait: Duration) -> BoxFuture<'_, Result<Option<ActivityWorkItem>, Error>>;

    /// Complete a work item: its result goes to the instance's inbox. A work item already
    /// completed is ignored (`Ok`).
    fn complete_activity_work(
        &self,
        item: ActivityWorkItem,
        outcome: Result<String, String>,
    ) -> BoxFuture<'_, Result<(), Error>>;

    /// Hand a fetched work item back, for another worker to run.
    fn abandon_activity_work(&self, item: ActivityWorkItem) -> BoxFuture<'_, Result<(), Error>>;

    /// Whether this backend keeps a large snapshot's task table entry by entry apart from the
    /// rest ([`SnapshotChange::Split`]): then its work items may carry split snapshots, whose
    /// tables [`snapshot_table`](Backend::snapshot_table) reads. Default: no.
    fn keeps_task_tables_apart(&self) -> bool {
        false
    }

    /// The task table of an instance's split snapshot, entries by task id (any order); empty
    /// if it has none.
    fn snapshot_table<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<TableEntries, Error>> {
        let _ = instance_id;
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// An instance's snapshot (the suspended state machine and the runtime's bookkeeping), for
    /// tools that show it (`Client::state`); `None` if it has none (finished,
    /// not started, an entity) or if the backend cannot show it (the default).
    fn snapshot<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        let _ = instance_id;
        Box::pin(std::future::ready(Ok(None)))
    }

    /// A worker using this handle stopped: hand back what it holds (the Redis backend releases
    /// its partition leases and hands its prefetched activity work items back, so other workers
    /// take them over at once instead of after a timeout). The default does nothing.
    fn release(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Work waiting in the backend (for metrics); `None` if the backend cannot tell (the
    /// default).
    fn queue_depths(&self) -> BoxFuture<'_, Result<Option<QueueDepths>, Error>> {
        Box::pin(std::future::ready(Ok(None)))
    }

    /// The newest `limit` entries the backend could not read and moved to its dead-letter
    /// stream, newest first. The default (and [`Memory`](crate::backend::Memory), which never
    /// decodes what it stores) has none.
    fn dead_letters(&self, limit: usize) -> BoxFuture<'_, Result<Vec<DeadLetter>, Error>> {
        let _ = limit;
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// Up to `max` instances with new messages, each locked for the caller; waits up to `wait`
    /// for the first. A worker that steps many instances at once fetches them in one call (the
    /// Redis backend loads them in one round trip). The default calls
    /// [`fetch_orchestration_work`](Backend::fetch_orchestration_work): once with `wait`, then
    /// without waiting until it has `max` or there is no more.
    fn fetch_orchestration_work_batch(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<OrchestrationWorkItem>, Error>> {
        Box::pin(async move {
            let mut items = Vec::new();
            while items.len() < max.max(1) {
                let w = if items.is_empty() { wait } else { Duration::ZERO };
                match self.fetch_orchestration_work(w).await? {
                    Some(item) => items.push(item),
                    None => break,
                }
            }
            Ok(items)
        })
    }

    /// Commit several steps (of different instances); one result per commit, in order, each as
    /// [`commit`](Backend::commit) would give it. The Redis backend sends them in one pipeline.
    /// The default commits them one by one.
    fn commit_batch(&self, commits: Vec<StepCommit>) -> BoxFuture<'_, Result<Vec<Result<(), Error>>, Error>> {
        Box::pin(async move {
            let mut results = Vec::with_capacity(commits.len());
            for c in commits {
                results.push(self.commit(c).await);
            }
            Ok(results)
        })
    }

    /// Up to `max` activity work items; waits up to `wait` for the first. The default calls
    /// [`fetch_activity_work`](Backend::fetch_activity_work): once with `wait`, then without
    /// waiting until it has `max` or there is no more.
    fn fetch_activity_work_batch(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<ActivityWorkItem>, Error>> {
        Box::pin(async move {
            let mut items = Vec::new();
            while items.len() < max.max(1) {
                let w = if items.is_empty() { wait } else { Duration::ZERO };
                match self.fetch_activity_work(w).await? {
                    Some(item) => items.push(item),
                    None => break,
                }
            }
            Ok(items)
        })
    }

    /// Take a slot of the concurrency limit `name` (an activity's: at most `max` holders at
    /// once across every worker of the backend) for `holder` (unique per work item and
    /// worker): whether it got one. Asking again while holding one keeps it. Callers that do
    /// not get one ask again a little later; the backend lets them in in the order they first
    /// asked, as far as it can (one that stops asking loses its place after a few seconds).
    ///
    /// A slot lasts [`slot_lease`](Backend::slot_lease) unless renewed
    /// ([`renew_slot`](Backend::renew_slot)), so a worker that dies holding one does not keep
    /// it. The default keeps the slots in this process ([`crate::flow::process_flow`]): right
    /// for backends whose workers all run in one process.
    fn acquire_slot<'a>(&'a self, name: &'a str, max: u32, holder: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(std::future::ready(Ok(crate::flow::process_flow().acquire(name, max, holder))))
    }

    /// Keep `holder`'s slot of `name` for another [`slot_lease`](Backend::slot_lease):
    /// `Ok(false)` if it had expired (it is taken again: the limit may be passed for a moment).
    fn renew_slot<'a>(&'a self, name: &'a str, holder: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let _ = (name, holder);
        Box::pin(std::future::ready(Ok(true)))
    }

    /// Give `holder`'s slot of `name` back (nothing if it has none), and take it out of the
    /// line.
    fn release_slot<'a>(&'a self, name: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        crate::flow::process_flow().release(name, holder);
        Box::pin(std::future::ready(Ok(())))
    }

    /// How long a slot lasts without being renewed (the holder renews it every third of it).
    /// Default 30 s.
    fn slot_lease(&self) -> Duration {
        Duration::from_secs(30)
    }

    /// Record a start under the rate limit `name` (at most `max` starts in any window of
    /// `period`, by this backend's clock) for `holder`: `None` if it may start now, else how
    /// long until it may try again. Callers are let in in the order they first asked, as far
    /// as the backend can. The default keeps the windows in this process.
    fn take_rate<'a>(
        &'a self,
        name: &'a str,
        max: u32,
        period: Duration,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<Option<Duration>, Error>> {
        let now = self.now();
        Box::pin(std::future::ready(Ok(crate::flow::process_flow().take_rate(name, max, period, holder, now))))
    }

    /// Wait until the instance has finished (Completed, Failed, Terminated) or `timeout` has
    /// passed (real time); then its status. The default polls [`status`](Backend::status).
    fn wait_for_finished<'a>(
        &'a self,
        instance_id: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Option<InstanceStatus>, Error>> {
        Box::pin(poll_until_finished(|| self.status(instance_id), None, timeout))
    }
}

/// Look at an instance's status (`look`) until it is finished, there is no such instance, or
/// `timeout` has passed; then its status. The second look comes 1 ms after the first, each
/// wait after that 1.5× longer, up to 100 ms; `woken`, if given, cuts a wait short (it is
/// armed before each look, so a wake-up between the look and the wait is not missed).
pub(crate) async fn poll_until_finished<F, Fut>(
    mut look: F,
    woken: Option<&tokio::sync::Notify>,
    timeout: Duration,
) -> Result<Option<InstanceStatus>, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<InstanceStatus>, Error>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_millis(1);
    loop {
        let mut notified = woken.map(|n| Box::pin(n.notified()));
        if let Some(n) = &mut notified {
            n.as_mut().enable();
        }
        let status = look().await?;
        let done = status.as_ref().is_none_or(|s| s.is_finished());
        let now = tokio::time::Instant::now();
        if done || now >= deadline {
            return Ok(status);
        }
        let sleep = tokio::time::sleep(delay.min(deadline - now));
        match notified {
            Some(n) => {
                tokio::select! {
                    _ = n => {}
                    _ = sleep => {}
                }
            }
            None => sleep.await,
        }
        delay = (delay * 3 / 2).min(Duration::from_millis(100));
    }
}
