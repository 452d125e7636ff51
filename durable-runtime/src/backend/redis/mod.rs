//! The Redis Streams backend: durable, multi-process, multi-machine.
//!
//! # Layout
//!
//! Every key starts with the prefix (the *task hub*, default `durable`). Instances are spread
//! over `partitions` partitions by FNV-1a of their id; every key of partition `N` starts with the
//! hash tag `{prefix:pN}`, so each partition lives in one Redis Cluster slot and every Lua
//! script touches one slot only:
//!
//! | key | type | what |
//! |---|---|---|
//! | `{P:pN}:ctl` | stream | the control stream: every instance's inbox (`i` instance, `m` message); an entry is deleted when a step consumes it |
//! | `{P:pN}:act` | stream, group `w` (a consumer per worker) | activity work items; a dead worker's items are claimed again after the visibility timeout |
//! | `{P:pN}:tm`, `:tp`, `:ti:<id>` | zset, hash, set | timers by due time, their messages, the timers of each instance |
//! | `{P:pN}:ob` | stream | the outbox: operations for instances of other partitions |
//! | `{P:pN}:oseq`, `:in` | hash | outbox numbers per target; last number applied per source (exactly-once) |
//! | `{P:pN}:i:<id>` | string | an instance: generation, first inbox entry, runtime status, history length, then the status (JSON, short field names) and the snapshot (see `record.rs`; records of earlier releases, a hash, are converted when first read) |
//! | `{P:pN}:h:<id>` | string | an instance's history: MessagePack events, each preceded by its length; commits append |
//! | `{P:pN}:t:<id>` | hash | the task table (open tasks, results not yet awaited) of an instance with many, kept apart from its snapshot: task id → entry (MessagePack); a step sets and deletes the entries it changed (`WorkerBuilder::task_table_apart_from`) |
//! | `{P:pN}:idx` | zset | the partition's instances by creation time (then id): listing and bulk purges walk it by rank |
//! | `{P:pN}:fin` | zset | the partition's finished instances (Completed, Failed, Terminated) by when they finished, kept exact by the scripts that change a status: what retention deletes from |
//! | `{P:pN}:lease`, `:epoch` | string | the partition's lease (worker id, `PX`) and fencing epoch |
//! | `{P:pN}:seq`, `:gen` | counter | stream entry numbers, instance generations; these and epochs are at least Redis's clock in µs (see *Going back in time*) |
//! | `{P:pN}:mark` | counter | bumped by every commit of the lease holder, which remembers the highest value it was answered with (see *Going back in time*) |
//! | `{P:pN}:dead` | stream | entries of `:ctl` and `:act` that could not be read (a message from a newer release), moved here with their stream, id, partition, reason and time, and their fields as `f:<name>`; at most about 10,000 per partition |
//! | `{P}:workers` | zset | live workers by heartbeat expiry |
//! | `{P}:partitions` | string | the partition count (every process must agree) |
//!
//! # How it runs
//!
//! A worker that fetches orchestration work registers in the live-worker set and takes leases
//! on `ceil(partitions / live workers)` partitions (`SET NX PX` plus an epoch counter bumped on
//! every acquisition), renews them, and hands extra ones back when workers join. Only the lease
//! holder steps the instances of a partition: it reads the control stream (`XREAD BLOCK`, many
//! entries per round trip), and each step is committed by one Lua script that checks the lease
//! and epoch first (a stale worker gets `Error::LockLost` and nothing is written), then appends
//! history, writes snapshot and status, deletes the consumed control entries, queues activities
//! and timers, and delivers messages — to instances of the same partition directly, to other
//! partitions through the outbox, which the owner drains with per-target sequence numbers so
//! that each operation applies exactly once even when a drain is repeated. The owner also moves
//! due timers into the control stream (atomically, by Lua, fenced by the epoch).
//!
//! The owner holds at most `read_ahead` control entries of a partition in memory (it stops
//! reading a partition that holds that many until steps consume some), and a step gets at most
//! `max_messages_per_step` of an instance's messages (the first ones, and a `terminate` or
//! `resume` queued behind them); an instance with more is stepped again once its step took
//! some. Messages an instance could not take (it is suspended, or no registered code can run
//! it) do not count against the read-ahead until one of its steps takes some again, so they
//! never hold back the partition's other instances.
//!
//! Time is Redis's (`clock`): the scripts that decide by it — which timers are due
//! (`timers.lua`), which workers are gone (`members.lua`) — read `TIME` themselves, and a
//! handle follows Redis's clock with its monotonic clock between heartbeats, never reading the
//! wall clock; the virtual clock of tests replaces both.
//!
//! Activities are read by any worker with `XREADGROUP` (consumer group `w`); a completion is
//! one Lua script that `XACK`s the item and delivers the result only if the item was still
//! pending, so only the first completion counts. Items of a dead worker are claimed again with
//! `XAUTOCLAIM` after the visibility timeout, walking all pending entries with its cursor; a live
//! worker keeps its running items with `XCLAIM` (so long activities are not run twice). A worker
//! that stops hands its prefetched items back at once and deletes its consumers; consumers
//! that hold nothing and have been idle past the visibility timeout are deleted by the others.
//!
//! An entry of a control or activity stream that cannot be read (a message variant from a newer
//! release during a rolling upgrade, say) is moved to the partition's dead-letter stream with
//! the reason, acknowledged and deleted from its stream in the same script (`dead_letter.lua`),
//! so it is neither skipped silently nor left pending; `Client::dead_letters` shows them.
//!
//! Finished instances leave with everything they own (record, history, timers, index
//! entries) when purged: one by `purge.lua`, all that match a query by `purge_where.lua`
//! (batches of 100, resumed from the last instance looked at), and, with a retention, by the
//! partition owner once they have been finished that long (`expire.lua`, from `:fin`).
//!
//! A page of `list` walks each partition's creation index from the continuation, the
//! (creation time, id) of the last instance the previous page looked at (`page.lua`, which
//! finds it in O(log² n) and then looks at no more than the page size, or 1,000 instances when
//! a filter skips many); the pages of all partitions are merged in one order.
//!
//! Scripts run by their SHA1 and, when Redis's script cache does not have them (`NOSCRIPT`: a
//! restart, `SCRIPT FLUSH`), again by their text. A pipelined batch of commits sends again
//! only the commits that got `NOSCRIPT`: those that ran are never sent twice.
//!
//! # On a Redis Cluster
//!
//! `redis+cluster://…` connects with the `redis` crate's async cluster client (`conn`). Every
//! script is routed by its first key, the partition's lease key, and touches only keys with
//! the partition's tag; the hub-level keys are used alone. What spans partitions is one command
//! per partition: the control and activity reads (`read_each`, not blocking: a blocking read
//! would hold the node's multiplexed connection; an empty read waits 1 ms, doubling up to
//! 25 ms), and every pipeline, which `conn` splits into single commands sent at once. A
//! command is sent again only if it surely did not run (redirected, refused during a
//! failover, or no connection to its master); a script is followed by `WAIT` on its master
//! (`replica_acks`, default 1) so that a failover loses nothing a caller saw succeed.
//!
//! Connections reconnect with exponential backoff (the `redis` crate's connection manager);
//! work in flight while Redis is away is handed back and resumes. A commit whose outcome is
//! unknown (the connection dropped) makes the owner take its partition again under a new
//! epoch, which fences every commit of the old one, and re-read it.
//!
//! # Going back in time
//!
//! Redis can lose writes it has acknowledged: with `appendfsync everysec` a crash loses up to
//! about a second of them, a restart from an RDB snapshot loses everything since it, and a
//! failover can promote a replica that was behind. What Redis keeps is still a consistent
//! prefix of what it was sent (a point-in-time snapshot, a prefix of the command log or of the
//! replication stream), so Redis's own state stays consistent: the outbox numbers of a source
//! (`:oseq`, and the entries in `:ob`) and the last numbers a target applied (`:in`) go back
//! together, and the drain applies each operation once in the history Redis kept. What goes
//! wrong is the workers' memory, which is ahead of Redis:
//!
//! - The counters would hand out again values a worker already saw. So they do not count from
//!   where they are, but from at least Redis's clock in microseconds (`advance` in `lib.lua`),
//!   which has moved on: entry ids, generations and epochs are never handed out twice, so a new
//!   entry is never behind a worker's cursor, a commit never deletes (`XDEL`) a new entry under
//!   an id it consumed earlier, an activity's completion never acknowledges another item, and
//!   an instance created again never passes for the one a worker loaded before.
//! - Entries the holder consumed after the point Redis went back to are in the control stream
//!   again, behind its cursor, and instance histories are shorter than the holder saw. The
//!   holder's commits, lease renewals and timer moves check Redis first (`fenced` in
//!   `lib.lua`): `:mark`, which only the holder's commits bump, must not be below the highest
//!   value they were answered with, and `:seq` must not be below the last entry read. If it is,
//!   the script writes nothing and answers `BACK`; the holder forgets the partition and takes
//!   it again at once under a new epoch (fencing everything of the old one), reading its
//!   control stream from the start, as after a commit whose outcome is unknown. Steps whose
//!   commits were lost run again from what Redis has.
//! - A lease can come back for a worker that had handed it back or lost it, keeping everyone
//!   else out until it runs out. A worker looks at the leases of the partitions it stopped
//!   holding within the last lease, and takes back those that name it (the next rebalance hands
//!   extra ones on, as usual).
//! - The lease task also compares Redis's `run_id` (`INFO server`) every third of the lease and
//!   at once after the control reader's connection fails: a new one (a restart, a failover)
//!   makes the worker read all its partitions again under new epochs, without waiting for a
//!   commit or a renewal to notice. On a Redis Cluster it compares the `run_id` of each owned
//!   partition's master, and reads again only the partitions whose master changed.
//!
//! How fast: after a restart or failover, as soon as the worker reconnects (`run_id`); without
//! `INFO` (an ACL that forbids it), at the holder's next commit or timer move on the partition,
//! and at the latest at its next renewal, a third of the lease. Until then a partition's
//! instances wait; nothing wrong is written (every write of the holder is checked first).
//!
//! What is not detected, and what is lost: the writes Redis lost stay lost — starts, events,
//! activity completions and steps acknowledged in the lost window; a lost step runs again, a
//! lost activity completion makes the activity run again (its item is pending again), but a
//! lost start or event must be sent again by its sender. A rollback that loses none of the
//! holder's commits and none of the entries it read needs no recovery and is not noticed. The
//! counters rely on Redis's clock: if it goes back across the restart (a failover to a host
//! whose clock is behind) by more than the restart took, ids can be handed out again;
//! then `:seq` below the cursor still makes the holder read again, but only until new entries
//! pass it. A drain that read its outbox before the crash and applies it after the restart
//! (stalled across it) can apply a lost operation under a number handed out again. Prefetched
//! and running activities are kept: their completions count only if their items are still
//! pending. Redis Cluster, where shards go back in time independently, is not covered (the
//! client does not speak Cluster yet).
//!
//! # Code
//!
//! [`Redis`] and its public API are here, with the `Backend` implementation, which delegates
//! to the parts: `config` (the builder, connecting), `conn` (one Redis or a Redis Cluster),
//! `scripts` (the Lua scripts beside it),
//! `keys` (key layout and stream codecs), `clock` (Redis's time), `lease` (leases and
//! rebalance, the live-worker set), `inbox` (control
//! streams and orchestration work), `commit` (step commits), `activities`, `timers` (timers and
//! outboxes), `maintenance` (background upkeep, retention, purges) and `queries`.

mod activities;
mod clock;
mod commit;
mod completions;
mod config;
mod conn;
mod flow;
mod handover;
mod inbox;
mod keys;
mod lease;
mod maintenance;
mod queries;
mod record;
mod scripts;
mod sends;
mod timers;
mod waits;

pub use config::RedisBuilder;
pub use inbox::{InboxStats, RecordCacheStats};

use super::{ActivityWorkItem, Backend, DeadLetter, InstanceMessage, NewInstance, OrchestrationWorkItem, StepCommit};
use crate::error::Error;
use crate::history::HistoryEvent;
use crate::instance::{InstancePage, InstanceQuery, InstanceStatus};
use crate::metrics::QueueDepths;
use crate::orchestrator::BoxFuture;
use crate::time::{Millis, from_millis};
use activities::{ActivityMode, Acts};
use clock::Clock;
use config::Config;
use conn::{Conn, Target};
use keys::{partition_of, tag};
use lease::Owner;
use redis::Value;
use redis::aio::ConnectionManager;
use scripts::Scripts;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;

/// The Redis Streams backend. Create one with [`Redis::connect`] or [`Redis::builder`].
///
/// ```no_run
/// # async fn f() -> Result<(), durable_runtime::Error> {
/// use durable_runtime::backend::Redis;
/// use std::time::Duration;
/// let backend = Redis::builder("redis://user:secret@127.0.0.1:6379/0")
///     .prefix("billing")
///     .partitions(16)
///     .lease_duration(Duration::from_secs(10))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
///
/// URLs are `redis://[user[:password]@]host[:port][/db]` (AUTH and ACL users come from the URL),
/// `redis+cluster://[user[:password]@]host:port[,host:port…]` for a Redis Cluster (any of its
/// nodes: the others are discovered; see [`RedisBuilder::replica_acks`]), and `rediss://…`
/// (`rediss+cluster://…`) for TLS, which needs this crate's `redis-tls` feature (rustls with the
/// `ring` crypto provider and the webpki root certificates; off by default because it adds a
/// TLS stack and a C/assembly crypto build). Without the feature a `rediss://` URL is refused
/// with `Error::Config` saying so.
///
/// Cloning gives another handle on the same connections and worker identity.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.inner.cfg.prefix)
            .field("partitions", &self.inner.cfg.partitions)
            .field("worker_id", &self.inner.worker_id)
            .finish()
    }
}

/// What the clones of one [`Redis`] handle share.
struct Inner {
    cfg: Config,
    /// The control and activity stream keys of every partition, made once (the readers use
    /// them on every read).
    stream_keys: StreamKeys,
    worker_id: String,
    /// What it connects to: one Redis or a Redis Cluster.
    target: Target,
    conn: Conn,
    /// On one Redis, the connection this handle's worker commits its steps on, made when it
    /// starts orchestrating: a commit call carries many steps, and the calls of clients in the
    /// same process (starts, signals, status reads) do not wait behind them on the shared
    /// connection. On a cluster, commits use the shared connection, whose scripts wake its
    /// readers (`ClusterShared`). Opened in the background (`open_commit_conn`).
    commit_conn: tokio::sync::OnceCell<Conn>,
    /// Dedicated connections for blocking reads (control streams, activity streams) on one
    /// Redis; on a cluster reads do not block (see `read_each`).
    ctl_conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    act_conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    /// One activity upkeep (or hand-back) at a time.
    act_upkeep: tokio::sync::Mutex<()>,
    scripts: Scripts,
    /// Redis's clock, as this handle follows it.
    clock: Clock,
    /// The virtual clock's start, if virtual.
    virtual_start: Option<Millis>,
    advanced_ms: AtomicU64,
    owner: Mutex<Owner>,
    acts: Mutex<Acts>,
    /// Activity completions waiting to be sent (`completions.rs`).
    completions: Mutex<completions::Completions>,
    /// Clients' messages waiting to be sent (`sends.rs`).
    sends: Mutex<sends::Sends>,
    /// Instances someone in this process waits for (`waits.rs`).
    waits: Mutex<waits::Waits>,
    /// Wakes the maintenance task (timers due, outbox to drain, ownership to change).
    wake: Notify,
    /// Wakes the lease task (a partition to take again at once).
    relet: Notify,
    /// Redis's `run_id` when last looked at (`None` if `INFO` is not allowed): a new one means
    /// it restarted or failed over.
    run_id: Mutex<Option<String>>,
    /// Signalled when orchestration work may be ready.
    ready: Notify,
    /// Signalled when a step consumed messages: the control reader may read ahead again.
    room: Notify,
    /// Maintenance and reader tasks started.
    started: tokio::sync::OnceCell<()>,
    fetching: AtomicUsize,
    /// One rebalance at a time (the first fetch and the upkeep task both run it).
    rebalancing: tokio::sync::Mutex<()>,
    activity: Mutex<ActivityMode>,
    next_lock: AtomicU64,
}

/// The control and activity stream keys of every partition.
struct StreamKeys {
    ctl: Vec<String>,
    act: Vec<String>,
}

impl StreamKeys {
    fn new(prefix: &str, partitions: u32) -> Self {
        let tags: Vec<String> = (0..partitions).map(|p| tag(prefix, p)).collect();
        Self {
            ctl: tags.iter().map(|t| format!("{t}:ctl")).collect(),
            act: tags.iter().map(|t| format!("{t}:act")).collect(),
        }
    }

    /// The partition whose control stream is `key`.
    fn ctl_part(&self, key: &str) -> Option<u32> {
        self.ctl.iter().position(|k| k == key).map(|p| p as u32)
    }

    /// The partition whose activity stream is `key`.
    fn act_part(&self, key: &str) -> Option<u32> {
        self.act.iter().position(|k| k == key).map(|p| p as u32)
    }
}

/// A backend error saying what failed (`redis: <what>: <error>`).
fn backend_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("redis: {what}: {e}"))
}

/// One call of a script: its keys and its arguments.
type ScriptCall = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// Run many calls of `lua` in one round trip (a pipeline); their replies in order. Calls Redis
/// answered `NOSCRIPT` (its script cache was emptied) did not run: only they are sent again, by
/// the script's text, so no call runs twice. An error of the connection fails them all, or,
/// when it comes as they are sent again, those sent again (the others' replies are kept).
async fn invoke_batch(
    r: &Redis,
    lua: &scripts::Lua,
    calls: &[ScriptCall],
) -> Result<Vec<redis::RedisResult<Value>>, redis::RedisError> {
    let mut replies: Vec<Option<redis::RedisResult<Value>>> = (0..calls.len()).map(|_| None).collect();
    let mut todo: Vec<usize> = (0..calls.len()).collect();
    let mut by_text = false;
    while !todo.is_empty() {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for &j in &todo {
            pipe.add_command(lua.cmd(by_text, &calls[j].0, &calls[j].1));
        }
        let got: Vec<redis::RedisResult<Value>> = match pipe.query_async(&mut r.conn()).await {
            Ok(got) => got,
            Err(e) if by_text => {
                for &j in &todo {
                    replies[j] =
                        Some(Err(redis::RedisError::from((e.kind(), "sending a script again", e.to_string()))));
                }
                break;
            }
            Err(e) => return Err(e),
        };
        if got.len() != todo.len() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "unexpected number of replies",
                format!("{} replies to {} calls", got.len(), todo.len()),
            )));
        }
        let mut again = Vec::new();
        for (&j, reply) in todo.iter().zip(got) {
            match reply {
                Err(e) if !by_text && lua.missed(&e) => again.push(j),
                reply => replies[j] = Some(reply),
            }
        }
        todo = again;
        by_text = true;
    }
    Ok(replies.into_iter().map(|r| r.expect("every call has a reply")).collect())
}

/// The JSON of a value the backend stores.
fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::Backend(format!("redis: does not serialize: {e}")))
}

/// Lock `m`, also when a panicking holder poisoned it (the state stays usable).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A Redis reply as text (empty if it is not a string or a number).
fn reply_str(v: &Value) -> String {
    keys::bytes(v).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// A Redis reply as a number (`0` if it is not one).
fn reply_int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => reply_str(other).parse().unwrap_or(0),
    }
}

/// Moves an unreadable entry to the dead-letter stream (`dead_letter.lua`).
static DEAD_LETTER: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("dead_letter.lua")));

/// At most about this many dead letters are kept per partition (the oldest go first).
const DEAD_LETTERS_KEPT: usize = 10_000;

/// How long a blocking read waits at most before looking at ownership changes again.
const BLOCK_MAX: Duration = Duration::from_millis(500);

impl Redis {
    /// Connect to `url` with the default settings (prefix `durable`, 8 partitions).
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::builder(url).connect().await
    }

    /// A builder for a connection to `url`.
    pub fn builder(url: impl Into<String>) -> RedisBuilder {
        RedisBuilder::new(url.into())
    }

    /// The hash tag of partition `p` (every key of the partition starts with it).
    fn tag(&self, p: u32) -> String {
        tag(&self.inner.cfg.prefix, p)
    }

    /// The partition of an instance.
    fn part_of(&self, instance_id: &str) -> u32 {
        partition_of(instance_id, self.inner.cfg.partitions)
    }

    /// The shared connection (not for blocking reads).
    fn conn(&self) -> Conn {
        self.inner.conn.clone()
    }

    /// The connection steps are committed on (`commit_conn`; the shared one until it is made).
    fn commit_conn(&self) -> Conn {
        self.inner.commit_conn.get().unwrap_or(&self.inner.conn).clone()
    }

    /// This handle's worker id (in leases, the live-worker set and consumer names).
    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// The configured key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.cfg.prefix
    }

    /// The partition instance `instance_id` belongs to.
    pub fn partition_of(&self, instance_id: &str) -> u32 {
        self.part_of(instance_id)
    }

    /// The partitions this handle holds the lease of, with their epochs.
    pub fn owned_partitions(&self) -> Vec<(u32, u64)> {
        lock(&self.inner.owner).parts.iter().map(|(p, s)| (*p, s.epoch)).collect()
    }

    /// Real time: Redis's clock, as this handle follows it.
    fn real_now(&self) -> Millis {
        self.inner.clock.now()
    }

    /// Move the clock forward by `d` and deliver the timers that are due. On a real clock the
    /// backend then runs ahead of real time.
    pub fn advance(&self, d: Duration) {
        self.inner.advanced_ms.fetch_add(d.as_millis() as u64, Ordering::SeqCst);
        let mut o = lock(&self.inner.owner);
        for p in o.parts.values_mut() {
            p.timer_due = 0;
        }
        drop(o);
        self.inner.wake.notify_one();
    }

    /// The clock, as a `SystemTime`.
    pub fn time(&self) -> SystemTime {
        from_millis(Backend::now(self))
    }

    /// How many timers are armed (all instances).
    pub async fn pending_timers(&self) -> Result<usize, Error> {
        let mut pipe = redis::pipe();
        for p in 0..self.inner.cfg.partitions {
            pipe.cmd("ZCARD").arg(format!("{}:tm", self.tag(p)));
        }
        let counts: Vec<usize> = pipe.query_async(&mut self.conn()).await.map_err(|e| backend_err("ZCARD", e))?;
        Ok(counts.into_iter().sum())
    }

    /// The earliest armed timer, if any.
    pub async fn next_timer(&self) -> Result<Option<SystemTime>, Error> {
        let mut pipe = redis::pipe();
        for p in 0..self.inner.cfg.partitions {
            pipe.cmd("ZRANGE").arg(format!("{}:tm", self.tag(p))).arg(0).arg(0).arg("WITHSCORES");
        }
        let firsts: Vec<Vec<(String, f64)>> =
            pipe.query_async(&mut self.conn()).await.map_err(|e| backend_err("ZRANGE", e))?;
        Ok(firsts.into_iter().flatten().map(|(_, s)| s as Millis).min().map(from_millis))
    }

    /// Move entry `e` of partition `p`'s stream `kind` (`ctl` or `act`), which could not be
    /// read for `reason`, to the partition's dead-letter stream, and take it out of its stream
    /// (acknowledged and deleted), atomically. `false` if it was gone already.
    pub(super) async fn dead_letter(&self, p: u32, kind: &str, e: &keys::Entry, reason: &str) -> Result<bool, Error> {
        let t = self.tag(p);
        let mut call = DEAD_LETTER.key(format!("{t}:{kind}"));
        call.key(format!("{t}:dead")).arg(kind).arg(keys::stream_id(e.n)).arg(p).arg(reason).arg(DEAD_LETTERS_KEPT);
        for (k, v) in &e.fields {
            call.arg(k.as_slice()).arg(v.as_slice());
        }
        let moved: i64 = call
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("moving an entry to the dead letters", e))?;
        if moved == 1 {
            tracing::warn!(
                partition = p,
                stream = kind,
                entry = e.n,
                reason,
                "moved an unreadable entry to the dead letters"
            );
        }
        Ok(moved == 1)
    }

    /// Move the unreadable entries `bad` of partition `p`'s stream `kind`, trying each up to
    /// three times; failures are logged (see the callers for when the entry is looked at again).
    pub(super) async fn dead_letter_all(&self, p: u32, kind: &str, bad: Vec<(keys::Entry, String)>) {
        for (e, reason) in bad {
            let mut backoff = Duration::from_millis(50);
            for attempt in 1..=3 {
                match self.dead_letter(p, kind, &e, &reason).await {
                    Ok(_) => break,
                    Err(err) if attempt == 3 => {
                        tracing::error!(partition = p, stream = kind, entry = e.n, reason, error = %err, "moving an unreadable entry to the dead letters failed");
                    }
                    Err(_) => {
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                }
            }
        }
    }

    /// How many activity work items are queued or running.
    pub async fn pending_activities(&self) -> Result<usize, Error> {
        let mut pipe = redis::pipe();
        for p in 0..self.inner.cfg.partitions {
            pipe.cmd("XLEN").arg(format!("{}:act", self.tag(p)));
        }
        let counts: Vec<usize> = pipe.query_async(&mut self.conn()).await.map_err(|e| backend_err("XLEN", e))?;
        Ok(counts.into_iter().sum())
    }
}

impl Backend for Redis {
    fn acquire_slot<'a>(&'a self, name: &'a str, max: u32, holder: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(self.slot_op("acquire", name, max, holder))
    }

    fn renew_slot<'a>(&'a self, name: &'a str, holder: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(self.slot_op("renew", name, 0, holder))
    }

    fn release_slot<'a>(&'a self, name: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { self.slot_op("release", name, 0, holder).await.map(|_| ()) })
    }

    fn slot_lease(&self) -> Duration {
        self.inner.cfg.visibility
    }

    fn take_rate<'a>(
        &'a self,
        name: &'a str,
        max: u32,
        period: Duration,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<Option<Duration>, Error>> {
        Box::pin(self.rate_op(name, max, period, holder))
    }

    fn now(&self) -> Millis {
        match self.inner.virtual_start {
            Some(start) => start.saturating_add(self.inner.advanced_ms.load(Ordering::SeqCst)),
            None => self.real_now().saturating_add(self.inner.advanced_ms.load(Ordering::SeqCst)),
        }
    }

    fn create_instance(&self, new: NewInstance) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(self.create(new))
    }

    fn send_message<'a>(&'a self, instance_id: &'a str, message: InstanceMessage) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(self.send(instance_id, message))
    }

    fn status<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<Option<InstanceStatus>, Error>> {
        Box::pin(self.load_status(instance_id))
    }

    fn wait_for_finished<'a>(
        &'a self,
        instance_id: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Option<InstanceStatus>, Error>> {
        Box::pin(self.wait_finished(instance_id, timeout))
    }

    fn release(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            self.stop_orchestrating().await;
            if let Err(e) = self.hand_back_activities().await {
                // Not lost: they are claimed again after the visibility timeout.
                tracing::warn!(error = %e, "handing prefetched activities back failed");
            }
            Ok(())
        })
    }

    fn queue_depths(&self) -> BoxFuture<'_, Result<Option<QueueDepths>, Error>> {
        Box::pin(self.depths())
    }

    fn snapshot<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        Box::pin(self.load_snapshot(instance_id))
    }

    fn keeps_task_tables_apart(&self) -> bool {
        true
    }

    fn snapshot_table<'a>(
        &'a self,
        instance_id: &'a str,
    ) -> BoxFuture<'a, Result<crate::engine::store::TableEntries, Error>> {
        Box::pin(self.load_table(instance_id))
    }

    fn history<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<Option<Vec<HistoryEvent>>, Error>> {
        Box::pin(self.load_history(instance_id))
    }

    fn list(&self, query: InstanceQuery) -> BoxFuture<'_, Result<InstancePage, Error>> {
        Box::pin(self.list_page(query))
    }

    fn purge<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(self.purge_instance(instance_id))
    }

    fn purge_where(&self, query: InstanceQuery) -> BoxFuture<'_, Result<u64, Error>> {
        Box::pin(self.purge_matching(query))
    }

    fn dead_letters(&self, limit: usize) -> BoxFuture<'_, Result<Vec<DeadLetter>, Error>> {
        Box::pin(self.load_dead_letters(limit))
    }

    fn fetch_orchestration_work(&self, wait: Duration) -> BoxFuture<'_, Result<Option<OrchestrationWorkItem>, Error>> {
        Box::pin(async move { Ok(self.fetch_orchestration_batch(1, wait).await?.pop()) })
    }

    fn commit(&self, commit: StepCommit) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move { self.commit_pipelined(vec![commit]).await.pop().expect("one result per commit") })
    }

    fn abandon_orchestration_work<'a>(&'a self, instance_id: &'a str, lock: u64) -> BoxFuture<'a, Result<(), Error>> {
        self.abandon_local(instance_id, lock);
        Box::pin(std::future::ready(Ok(())))
    }

    fn fetch_orchestration_work_batch(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<OrchestrationWorkItem>, Error>> {
        Box::pin(self.fetch_orchestration_batch(max, wait))
    }

    fn commit_batch(&self, commits: Vec<StepCommit>) -> BoxFuture<'_, Result<Vec<Result<(), Error>>, Error>> {
        Box::pin(async move { Ok(self.commit_pipelined(commits).await) })
    }

    fn fetch_activity_work_batch(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<ActivityWorkItem>, Error>> {
        Box::pin(self.fetch_activity_batch(max, wait))
    }

    fn fetch_activity_work(&self, wait: Duration) -> BoxFuture<'_, Result<Option<ActivityWorkItem>, Error>> {
        Box::pin(async move { Ok(self.fetch_activity_batch(1, wait).await?.pop()) })
    }

    fn complete_activity_work(
        &self,
        item: ActivityWorkItem,
        outcome: Result<String, String>,
    ) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move { self.complete_one(&item, outcome).await })
    }

    fn abandon_activity_work(&self, item: ActivityWorkItem) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move { self.abandon_one(item.work_id).await })
    }
}
