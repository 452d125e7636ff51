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
//! | `{P:pN}:act` | stream, group `w` | activity work items; a dead worker's items are claimed again after the visibility timeout |
//! | `{P:pN}:tm`, `:tp`, `:ti:<id>` | zset, hash, set | timers by due time, their messages, the timers of each instance |
//! | `{P:pN}:ob` | stream | the outbox: operations for instances of other partitions |
//! | `{P:pN}:oseq`, `:in` | hash | outbox numbers per target; last number applied per source (exactly-once) |
//! | `{P:pN}:i:<id>` | hash | an instance: status JSON `st`, runtime status `rs`, snapshot `snap`, generation `g`, first inbox entry `m0` |
//! | `{P:pN}:h:<id>` | list | an instance's history (JSON events) |
//! | `{P:pN}:idx` | zset | the partition's instances by creation time |
//! | `{P:pN}:lease`, `:epoch` | string | the partition's lease (worker id, `PX`) and fencing epoch |
//! | `{P:pN}:seq`, `:gen` | counter | stream entry numbers, instance generations |
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
//! Activities are read by any worker with `XREADGROUP` (consumer group `w`); a completion is
//! one Lua script that `XACK`s the item and delivers the result only if the item was still
//! pending, so only the first completion counts. Items of a dead worker are claimed again with
//! `XAUTOCLAIM` after the visibility timeout; a live worker keeps its running items with
//! `XCLAIM` (so long activities are not run twice).
//!
//! Connections reconnect with exponential backoff (the `redis` crate's connection manager);
//! work in flight while Redis is away is handed back and resumes. A commit whose outcome is
//! unknown (the connection dropped) makes the owner take its partition again under a new
//! epoch, which fences every commit of the old one, and re-read it.

mod keys;

use super::{
    Action, ActivityRequest, ActivityWorkItem, Backend, InstanceMessage, OrchestrationWorkItem, PendingMessage,
    SnapshotChange, StepCommit,
};
use crate::error::Error;
use crate::history::HistoryEvent;
use crate::instance::{InstancePage, InstanceQuery, InstanceStatus};
use crate::orchestrator::BoxFuture;
use crate::time::{Millis, from_millis, to_millis};
use keys::{Entry, partition_of, stream_id, tag};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Notify;

macro_rules! lua {
    ($file:literal) => {
        concat!(include_str!("lib.lua"), "\n", include_str!($file))
    };
}

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
/// URLs are `redis://[user[:password]@]host[:port][/db]` (AUTH and ACL users come from the URL)
/// and `rediss://…` for TLS, which needs this crate's `redis-tls` feature (rustls with the
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

/// Configures a [`Redis`] backend. Every process on one task hub (prefix) must use the same
/// partition count.
#[derive(Clone, Debug)]
pub struct RedisBuilder {
    url: String,
    cfg: Config,
}

#[derive(Clone, Debug)]
struct Config {
    prefix: String,
    partitions: u32,
    lease: Duration,
    visibility: Duration,
    virtual_clock: bool,
    read_batch: usize,
}

impl RedisBuilder {
    /// The key prefix (the task hub): every key starts with it. Default `durable`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.cfg.prefix = prefix.into();
        self
    }

    /// How many partitions instances are spread over (default 8, at most 1024). It bounds how
    /// many workers can step orchestrations at once; it must be the same in every process of
    /// the task hub.
    pub fn partitions(mut self, n: u32) -> Self {
        self.cfg.partitions = n;
        self
    }

    /// How long a partition lease lasts without renewal (default 5 s; renewed every third of
    /// it). A dead worker's partitions move to live workers after about this long.
    pub fn lease_duration(mut self, d: Duration) -> Self {
        self.cfg.lease = d;
        self
    }

    /// How long an activity work item fetched by a worker that stopped renewing it (it died)
    /// waits before another worker claims it (default 30 s).
    pub fn activity_visibility_timeout(mut self, d: Duration) -> Self {
        self.cfg.visibility = d;
        self
    }

    /// A clock that stands still until [`Redis::advance`] moves it (timers fire on it), for
    /// tests in one process. Leases and heartbeats keep real time.
    pub fn virtual_clock(mut self) -> Self {
        self.cfg.virtual_clock = true;
        self
    }

    /// How many control or activity entries one read takes at most (default 512).
    pub fn read_batch(mut self, n: usize) -> Self {
        self.cfg.read_batch = n.max(1);
        self
    }

    /// Connect, check the task hub's configuration, and create the consumer groups.
    pub async fn connect(self) -> Result<Redis, Error> {
        Redis::connect_with(self.url, self.cfg).await
    }
}

struct Scripts {
    commit: Script,
    create: Script,
    send: Script,
    purge: Script,
    lease: Script,
    timers: Script,
    apply: Script,
    complete: Script,
    abandon: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            commit: Script::new(lua!("commit.lua")),
            create: Script::new(lua!("create.lua")),
            send: Script::new(lua!("send.lua")),
            purge: Script::new(lua!("purge.lua")),
            lease: Script::new(lua!("lease.lua")),
            timers: Script::new(lua!("timers.lua")),
            apply: Script::new(lua!("apply.lua")),
            complete: Script::new(lua!("complete.lua")),
            abandon: Script::new(lua!("abandon.lua")),
        }
    }
}

struct Inner {
    cfg: Config,
    worker_id: String,
    client: redis::Client,
    conn: ConnectionManager,
    /// Dedicated connections for blocking reads (control streams, activity streams).
    ctl_conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    act_conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    scripts: Scripts,
    /// Redis time minus local time, in ms.
    skew_ms: i64,
    /// The virtual clock's start, if virtual.
    virtual_start: Option<Millis>,
    advanced_ms: AtomicU64,
    owner: Mutex<Owner>,
    acts: Mutex<Acts>,
    /// Wakes the maintenance task (timers due, outbox to drain, ownership to change).
    wake: Notify,
    /// Signalled when orchestration work may be ready.
    ready: Notify,
    /// Maintenance and reader tasks started.
    started: tokio::sync::OnceCell<()>,
    fetching: AtomicUsize,
    /// One rebalance at a time (the first fetch and the upkeep task both run it).
    rebalancing: tokio::sync::Mutex<()>,
    activity: Mutex<ActivityMode>,
    next_lock: AtomicU64,
}

/// The partitions this handle owns, with their inboxes.
#[derive(Default)]
struct Owner {
    /// Whether this handle steps orchestrations (it has fetched orchestration work recently).
    active: bool,
    last_fetch: Option<Instant>,
    parts: BTreeMap<u32, Part>,
    locks: HashMap<u64, LockInfo>,
    rr: u32,
    next_heartbeat: Option<Instant>,
}

struct Part {
    epoch: u64,
    /// The last control entry read.
    last: u64,
    insts: HashMap<String, Inst>,
    ready: VecDeque<String>,
    /// Being handed back: no new work from it.
    draining: bool,
    /// The earliest timer due (ms), `0` if unknown, `u64::MAX` if none.
    timer_due: u64,
    outbox_dirty: bool,
}

impl Part {
    fn new(epoch: u64) -> Self {
        Self {
            epoch,
            last: 0,
            insts: HashMap::new(),
            ready: VecDeque::new(),
            draining: false,
            timer_due: 0,
            outbox_dirty: true,
        }
    }
    fn locked(&self) -> usize {
        self.insts.values().filter(|i| i.locked.is_some()).count()
    }
}

#[derive(Default)]
struct Inst {
    inbox: Vec<PendingMessage>,
    has_new: bool,
    locked: Option<u64>,
}

struct LockInfo {
    part: u32,
    epoch: u64,
    instance: String,
    generation: String,
    /// Inbox entries of an older instance with the same id: acknowledged with the commit.
    stale: Vec<u64>,
}

#[derive(Default)]
struct Acts {
    buffer: VecDeque<ActivityWorkItem>,
    in_flight: HashMap<u64, ActivityWorkItem>,
}

#[derive(Default)]
struct ActivityMode {
    active: bool,
    last_fetch: Option<Instant>,
    next_refresh: Option<Instant>,
}

fn backend_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("redis: {what}: {e}"))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::Backend(format!("redis: does not serialize: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(b: &[u8], what: &str) -> Result<T, Error> {
    serde_json::from_slice(b).map_err(|e| Error::Backend(format!("redis: {what} does not deserialize: {e}")))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn reply_str(v: &Value) -> String {
    keys::bytes(v).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

fn reply_int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => reply_str(other).parse().unwrap_or(0),
    }
}

/// How long a blocking read waits at most before looking at ownership changes again.
const BLOCK_MAX: Duration = Duration::from_millis(500);
/// A handle that has not fetched orchestration work for this long hands its partitions back.
const IDLE_AFTER: Duration = Duration::from_secs(3);
/// A handle that has not fetched activity work for this long hands its prefetched items back.
const ACT_IDLE_AFTER: Duration = Duration::from_secs(2);
const ACT_PREFETCH: usize = 8;

impl Redis {
    /// Connect to `url` with the default settings (prefix `durable`, 8 partitions).
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::builder(url).connect().await
    }

    /// A builder for a connection to `url`.
    pub fn builder(url: impl Into<String>) -> RedisBuilder {
        RedisBuilder {
            url: url.into(),
            cfg: Config {
                prefix: "durable".into(),
                partitions: 8,
                lease: Duration::from_secs(5),
                visibility: Duration::from_secs(30),
                virtual_clock: false,
                read_batch: 512,
            },
        }
    }

    async fn connect_with(url: String, cfg: Config) -> Result<Self, Error> {
        if cfg.partitions == 0 || cfg.partitions > keys::MAX_PARTITIONS {
            return Err(Error::Config(format!(
                "partitions must be between 1 and {}, not {}",
                keys::MAX_PARTITIONS,
                cfg.partitions
            )));
        }
        if cfg.prefix.is_empty() || cfg.prefix.contains(['{', '}']) {
            return Err(Error::Config(format!(
                "the key prefix {:?} must be non-empty and without braces (they make hash tags)",
                cfg.prefix
            )));
        }
        if cfg.lease < Duration::from_millis(300) {
            return Err(Error::Config(format!("the lease duration {:?} is too short (at least 300 ms)", cfg.lease)));
        }
        let scheme = url.split("://").next().unwrap_or("");
        if scheme == "rediss" && !cfg!(feature = "redis-tls") {
            return Err(Error::Config(format!(
                "{url:?} asks for TLS (rediss://): build durable with the `redis-tls` feature, or use redis:// on a trusted network"
            )));
        }
        if scheme != "redis" && scheme != "rediss" {
            return Err(Error::Config(format!(
                "{url:?} is not a Redis URL: use redis://[user[:password]@]host[:port][/db] or rediss://…"
            )));
        }
        #[cfg(feature = "redis-tls")]
        if scheme == "rediss" {
            // rustls needs a process-wide crypto provider; keep one the application installed.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = redis::Client::open(url.as_str()).map_err(|e| Error::Config(format!("{url:?}: {e}")))?;
        let conn = Self::manager(&client, Some(Duration::from_secs(10))).await?;
        let worker_id = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let mut inner = Inner {
            cfg,
            worker_id,
            client,
            conn,
            ctl_conn: tokio::sync::Mutex::new(None),
            act_conn: tokio::sync::Mutex::new(None),
            scripts: Scripts::new(),
            skew_ms: 0,
            virtual_start: None,
            advanced_ms: AtomicU64::new(0),
            owner: Mutex::new(Owner::default()),
            acts: Mutex::new(Acts::default()),
            wake: Notify::new(),
            ready: Notify::new(),
            started: tokio::sync::OnceCell::new(),
            fetching: AtomicUsize::new(0),
            rebalancing: tokio::sync::Mutex::new(()),
            activity: Mutex::new(ActivityMode::default()),
            next_lock: AtomicU64::new(1),
        };
        // The clock: Redis's, so that every process agrees on when a timer is due.
        let mut c = inner.conn.clone();
        let (secs, micros): (u64, u64) =
            redis::cmd("TIME").query_async(&mut c).await.map_err(|e| backend_err("TIME", e))?;
        let redis_ms = secs * 1000 + micros / 1000;
        inner.skew_ms = redis_ms as i64 - to_millis(SystemTime::now()) as i64;
        if inner.cfg.virtual_clock {
            inner.virtual_start = Some(redis_ms);
        }
        // Every process of the task hub must agree on the partition count.
        let pkey = format!("{{{}}}:partitions", inner.cfg.prefix);
        let _: Value = redis::cmd("SET")
            .arg(&pkey)
            .arg(inner.cfg.partitions)
            .arg("NX")
            .query_async(&mut c)
            .await
            .map_err(|e| backend_err("SET", e))?;
        let stored: u32 = redis::cmd("GET").arg(&pkey).query_async(&mut c).await.map_err(|e| backend_err("GET", e))?;
        if stored != inner.cfg.partitions {
            return Err(Error::Config(format!(
                "task hub {:?} has {stored} partitions, this process was configured with {}: every process of a task hub must use the same count (or use another prefix)",
                inner.cfg.prefix, inner.cfg.partitions
            )));
        }
        let r = Redis { inner: Arc::new(inner) };
        r.ensure_groups().await?;
        r.load_scripts().await?;
        Ok(r)
    }

    async fn manager(client: &redis::Client, response_timeout: Option<Duration>) -> Result<ConnectionManager, Error> {
        let config = ConnectionManagerConfig::new()
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(1000))
            .set_number_of_retries(6)
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(response_timeout);
        client.get_connection_manager_with_config(config).await.map_err(|e| backend_err("connecting", e))
    }

    /// Load every script (`EVALSHA` in pipelines needs them loaded; single calls reload them
    /// by themselves after a Redis restart).
    async fn load_scripts(&self) -> Result<(), Error> {
        let s = &self.inner.scripts;
        let mut c = self.conn();
        for script in [&s.commit, &s.create, &s.send, &s.purge, &s.lease, &s.timers, &s.apply, &s.complete, &s.abandon]
        {
            script.load_async(&mut c).await.map_err(|e| backend_err("loading a script", e))?;
        }
        Ok(())
    }

    async fn ensure_groups(&self) -> Result<(), Error> {
        let mut c = self.inner.conn.clone();
        for p in 0..self.inner.cfg.partitions {
            let r: Result<Value, _> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(format!("{}:act", self.tag(p)))
                .arg("w")
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut c)
                .await;
            if let Err(e) = r
                && !e.to_string().contains("BUSYGROUP")
            {
                return Err(backend_err("creating the activity consumer group", e));
            }
        }
        Ok(())
    }

    fn tag(&self, p: u32) -> String {
        tag(&self.inner.cfg.prefix, p)
    }

    fn part_of(&self, instance_id: &str) -> u32 {
        partition_of(instance_id, self.inner.cfg.partitions)
    }

    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
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

    /// Real time according to Redis (local time corrected by the skew measured at connect).
    fn real_now(&self) -> Millis {
        (to_millis(SystemTime::now()) as i64 + self.inner.skew_ms).max(0) as Millis
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

    /// How many activity work items are queued or running.
    pub async fn pending_activities(&self) -> Result<usize, Error> {
        let mut pipe = redis::pipe();
        for p in 0..self.inner.cfg.partitions {
            pipe.cmd("XLEN").arg(format!("{}:act", self.tag(p)));
        }
        let counts: Vec<usize> = pipe.query_async(&mut self.conn()).await.map_err(|e| backend_err("XLEN", e))?;
        Ok(counts.into_iter().sum())
    }

    // ------------------------------------------------------------ background tasks

    /// Start the maintenance and control-reader tasks (once per handle).
    async fn ensure_started(&self) {
        self.inner
            .started
            .get_or_init(|| async {
                let weak = Arc::downgrade(&self.inner);
                tokio::spawn(maintenance(weak.clone()));
                tokio::spawn(ctl_reader(weak));
            })
            .await;
    }

    /// Become an orchestration worker: register, take leases (the first time, before returning).
    async fn ensure_orchestrating(&self) -> Result<(), Error> {
        self.ensure_started().await;
        let first = {
            let mut o = lock(&self.inner.owner);
            o.last_fetch = Some(Instant::now());
            let first = !o.active;
            o.active = true;
            first
        };
        if first {
            self.rebalance().await?;
            self.read_ctl(None).await?;
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    /// Heartbeat, renew leases, and take or hand back partitions to reach this worker's share.
    async fn rebalance(&self) -> Result<(), Error> {
        let inner = &self.inner;
        let _one_at_a_time = inner.rebalancing.lock().await;
        let now = self.real_now();
        let lease_ms = inner.cfg.lease.as_millis() as u64;
        let wkey = format!("{{{}}}:workers", inner.cfg.prefix);
        let mut c = self.conn();
        let (_, _, live): (Value, Value, Vec<String>) = redis::pipe()
            .cmd("ZADD")
            .arg(&wkey)
            .arg(now + lease_ms)
            .arg(&inner.worker_id)
            .cmd("ZREMRANGEBYSCORE")
            .arg(&wkey)
            .arg("-inf")
            .arg(now)
            .cmd("ZRANGE")
            .arg(&wkey)
            .arg(0)
            .arg(-1)
            .query_async(&mut c)
            .await
            .map_err(|e| backend_err("heartbeat", e))?;
        let n = live.len().max(1) as u32;
        let rank = live.iter().position(|w| *w == inner.worker_id).unwrap_or(0) as u32;
        let parts = inner.cfg.partitions;
        let target = parts.div_ceil(n);

        // Renew what we hold.
        let held: Vec<(u32, u64)> = self.owned_partitions();
        for (p, epoch) in held {
            let ok: i64 = inner
                .scripts
                .lease
                .key(format!("{}:lease", self.tag(p)))
                .arg(self.tag(p))
                .arg("renew")
                .arg(&inner.worker_id)
                .arg(lease_ms)
                .arg(epoch)
                .invoke_async(&mut c)
                .await
                .map_err(|e| backend_err("renewing a lease", e))?;
            if ok == 0 {
                self.drop_partition(p, epoch);
            }
        }

        // Preferred partitions: a contiguous run by rank, so workers rarely compete.
        let preferred: Vec<u32> = (0..parts).map(|i| (rank * target + i) % parts).collect();
        let (owned, draining_ready): (usize, Vec<(u32, u64)>) = {
            let mut o = lock(&inner.owner);
            let mut owned = o.parts.values().filter(|p| !p.draining).count();
            // Too many: hand back the least preferred.
            if owned > target as usize {
                for p in preferred.iter().rev() {
                    if owned <= target as usize {
                        break;
                    }
                    if let Some(part) = o.parts.get_mut(p)
                        && !part.draining
                    {
                        part.draining = true;
                        owned -= 1;
                    }
                }
            }
            let ready =
                o.parts.iter().filter(|(_, s)| s.draining && s.locked() == 0).map(|(p, s)| (*p, s.epoch)).collect();
            (owned, ready)
        };
        for (p, epoch) in draining_ready {
            self.drop_partition(p, epoch);
            let _: Result<i64, _> = inner
                .scripts
                .lease
                .key(format!("{}:lease", self.tag(p)))
                .arg(self.tag(p))
                .arg("release")
                .arg(&inner.worker_id)
                .arg(lease_ms)
                .arg(epoch)
                .invoke_async(&mut c)
                .await;
        }
        let mut owned = owned;
        for p in preferred {
            if owned >= target as usize {
                break;
            }
            if lock(&inner.owner).parts.contains_key(&p) {
                continue;
            }
            let epoch: u64 = inner
                .scripts
                .lease
                .key(format!("{}:lease", self.tag(p)))
                .arg(self.tag(p))
                .arg("acquire")
                .arg(&inner.worker_id)
                .arg(lease_ms)
                .arg(0)
                .invoke_async(&mut c)
                .await
                .map_err(|e| backend_err("acquiring a lease", e))?;
            if epoch > 0 {
                lock(&inner.owner).parts.insert(p, Part::new(epoch));
                owned += 1;
            }
        }
        let mut o = lock(&inner.owner);
        o.next_heartbeat = Some(Instant::now() + inner.cfg.lease / 3);
        // Other partitions' outbox drains may have put work in our outboxes or timer sets.
        for part in o.parts.values_mut() {
            part.outbox_dirty = true;
            part.timer_due = 0;
        }
        Ok(())
    }

    /// Forget a partition (lost, handed back, or to be taken again under a new epoch). Its
    /// locked items' commits are refused.
    fn drop_partition(&self, p: u32, epoch: u64) {
        let mut o = lock(&self.inner.owner);
        if o.parts.get(&p).is_some_and(|s| s.epoch == epoch) {
            o.parts.remove(&p);
            o.locks.retain(|_, l| l.part != p);
        }
    }

    /// Hand every partition back and leave the live-worker set.
    async fn stop_orchestrating(&self) {
        let _one_at_a_time = self.inner.rebalancing.lock().await;
        let parts: Vec<(u32, u64)> = {
            let mut o = lock(&self.inner.owner);
            if o.parts.values().any(|p| p.locked() > 0) {
                return;
            }
            o.active = false;
            let parts = o.parts.iter().map(|(p, s)| (*p, s.epoch)).collect();
            o.parts.clear();
            o.locks.clear();
            parts
        };
        let mut c = self.conn();
        for (p, epoch) in parts {
            let _: Result<i64, _> = self
                .inner
                .scripts
                .lease
                .key(format!("{}:lease", self.tag(p)))
                .arg(self.tag(p))
                .arg("release")
                .arg(&self.inner.worker_id)
                .arg(1000)
                .arg(epoch)
                .invoke_async(&mut c)
                .await;
        }
        let wkey = format!("{{{}}}:workers", self.inner.cfg.prefix);
        let _: Result<i64, _> = redis::cmd("ZREM").arg(wkey).arg(&self.inner.worker_id).query_async(&mut c).await;
    }

    /// Read new control entries of the owned partitions into their inboxes; blocks up to
    /// `block` if there is none (`None`: do not block).
    async fn read_ctl(&self, block: Option<Duration>) -> Result<usize, Error> {
        let cursors: Vec<(u32, u64, u64)> = {
            let o = lock(&self.inner.owner);
            o.parts.iter().map(|(p, s)| (*p, s.epoch, s.last)).collect()
        };
        if cursors.is_empty() {
            if block.is_some() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            return Ok(0);
        }
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(self.inner.cfg.read_batch);
        if let Some(b) = block {
            cmd.arg("BLOCK").arg(b.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS");
        for (p, _, _) in &cursors {
            cmd.arg(format!("{}:ctl", self.tag(*p)));
        }
        for (_, _, last) in &cursors {
            cmd.arg(stream_id(*last));
        }
        let reply: Value = if block.is_some() {
            let mut guard = self.inner.ctl_conn.lock().await;
            if guard.is_none() {
                *guard = Some(Self::manager(&self.inner.client, Some(BLOCK_MAX + Duration::from_secs(5))).await?);
            }
            let c = guard.as_mut().expect("set above");
            cmd.query_async(c).await.map_err(|e| backend_err("XREAD", e))?
        } else {
            cmd.query_async(&mut self.conn()).await.map_err(|e| backend_err("XREAD", e))?
        };
        let streams = keys::parse_read(&reply);
        let mut added = 0;
        let mut o = lock(&self.inner.owner);
        for (key, entries) in streams {
            let Some(&(p, epoch, _)) = cursors.iter().find(|(p, _, _)| key == format!("{}:ctl", self.tag(*p))) else {
                continue;
            };
            let Some(part) = o.parts.get_mut(&p) else { continue };
            if part.epoch != epoch {
                continue;
            }
            for e in entries {
                if e.n <= part.last {
                    continue;
                }
                part.last = e.n;
                let (Some(inst), Some(m)) = (e.get_str("i"), e.get("m")) else { continue };
                let message = match from_json::<InstanceMessage>(m, "a control message") {
                    Ok(m) => m,
                    Err(err) => {
                        eprintln!("durable redis backend: dropping an unreadable control entry {}: {err}", e.n);
                        continue;
                    }
                };
                let st = part.insts.entry(inst.clone()).or_default();
                st.inbox.push(PendingMessage { id: e.n, message });
                if !st.has_new {
                    st.has_new = true;
                    if st.locked.is_none() {
                        part.ready.push_back(inst);
                    }
                }
                added += 1;
            }
        }
        drop(o);
        if added > 0 {
            self.inner.ready.notify_waiters();
        }
        Ok(added)
    }

    /// Take up to `max` ready instances, locked.
    fn pop_ready(&self, max: usize) -> Vec<(u64, u32, String, Vec<PendingMessage>)> {
        let mut out = Vec::new();
        let mut guard = lock(&self.inner.owner);
        let o = &mut *guard;
        let ids: Vec<u32> = o.parts.keys().copied().collect();
        if ids.is_empty() {
            return out;
        }
        let start = o.rr as usize % ids.len();
        o.rr = o.rr.wrapping_add(1);
        let mut progress = true;
        while out.len() < max && progress {
            progress = false;
            for k in 0..ids.len() {
                if out.len() >= max {
                    break;
                }
                let p = ids[(start + k) % ids.len()];
                let lock_id = self.inner.next_lock.fetch_add(1, Ordering::Relaxed);
                let Some(part) = o.parts.get_mut(&p) else { continue };
                if part.draining {
                    continue;
                }
                let epoch = part.epoch;
                while let Some(id) = part.ready.pop_front() {
                    let Some(st) = part.insts.get_mut(&id) else { continue };
                    if st.locked.is_some() || !st.has_new {
                        continue;
                    }
                    st.has_new = false;
                    st.locked = Some(lock_id);
                    let msgs = st.inbox.clone();
                    out.push((lock_id, p, id.clone(), msgs));
                    o.locks.insert(
                        lock_id,
                        LockInfo { part: p, epoch, instance: id, generation: String::new(), stale: Vec::new() },
                    );
                    progress = true;
                    break;
                }
            }
        }
        out
    }

    /// Load the records of locked instances (one round trip) and make the work items.
    async fn load_items(
        &self,
        popped: Vec<(u64, u32, String, Vec<PendingMessage>)>,
    ) -> Result<Vec<OrchestrationWorkItem>, Error> {
        let locks: Vec<(u64, String)> = popped.iter().map(|(l, _, id, _)| (*l, id.clone())).collect();
        let r = self.load_items_inner(popped).await;
        if r.is_err() {
            for (l, id) in locks {
                self.abandon_local(&id, l);
            }
        }
        r
    }

    async fn load_items_inner(
        &self,
        popped: Vec<(u64, u32, String, Vec<PendingMessage>)>,
    ) -> Result<Vec<OrchestrationWorkItem>, Error> {
        let mut pipe = redis::pipe();
        for (_, p, id, _) in &popped {
            let t = self.tag(*p);
            pipe.cmd("HMGET").arg(format!("{t}:i:{id}")).arg("st").arg("snap").arg("g").arg("m0");
            pipe.cmd("LLEN").arg(format!("{t}:h:{id}"));
        }
        let replies: Vec<Value> =
            pipe.query_async(&mut self.conn()).await.map_err(|e| backend_err("loading instances", e))?;
        let mut items = Vec::new();
        for (k, (lock_id, _, id, msgs)) in popped.into_iter().enumerate() {
            let fields = match &replies[2 * k] {
                Value::Array(a) => a.iter().map(keys::bytes).collect::<Vec<_>>(),
                _ => vec![None; 4],
            };
            let hlen = reply_int(&replies[2 * k + 1]).max(0) as u64;
            let generation = fields.get(2).cloned().flatten().map(|b| String::from_utf8_lossy(&b).into_owned());
            let m0: u64 =
                fields.get(3).cloned().flatten().and_then(|b| String::from_utf8_lossy(&b).parse().ok()).unwrap_or(0);
            let status: Option<InstanceStatus> = match (&generation, fields.first().cloned().flatten()) {
                (Some(_), Some(b)) => Some(from_json(&b, "an instance status")?),
                _ => None,
            };
            let snapshot = match (&status, fields.get(1).cloned().flatten()) {
                (Some(_), Some(b)) => Some(b),
                _ => None,
            };
            let (messages, stale): (Vec<_>, Vec<_>) =
                if status.is_some() { msgs.into_iter().partition(|m| m.id > m0) } else { (msgs, Vec::new()) };
            {
                let mut o = lock(&self.inner.owner);
                if let Some(l) = o.locks.get_mut(&lock_id) {
                    l.generation = generation.unwrap_or_default();
                    l.stale = stale.iter().map(|m| m.id).collect();
                }
            }
            items.push(OrchestrationWorkItem {
                instance_id: id,
                lock: lock_id,
                status,
                snapshot,
                history_len: hlen,
                messages,
            });
        }
        Ok(items)
    }

    fn abandon_local(&self, instance_id: &str, lock_id: u64) -> bool {
        let mut o = lock(&self.inner.owner);
        let Some(l) = o.locks.remove(&lock_id) else { return false };
        let Some(part) = o.parts.get_mut(&l.part) else { return false };
        if let Some(st) = part.insts.get_mut(instance_id)
            && st.locked == Some(lock_id)
        {
            st.locked = None;
            st.has_new = true;
            part.ready.push_back(instance_id.to_string());
        }
        drop(o);
        self.inner.ready.notify_waiters();
        true
    }

    async fn fetch_orchestration_batch(&self, max: usize, wait: Duration) -> Result<Vec<OrchestrationWorkItem>, Error> {
        self.inner.fetching.fetch_add(1, Ordering::SeqCst);
        let _guard = FetchGuard(self);
        self.ensure_orchestrating().await?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut read_once = false;
        loop {
            let notified = self.inner.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let popped = self.pop_ready(max.max(1));
            if !popped.is_empty() {
                return self.load_items(popped).await;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                if read_once {
                    return Ok(Vec::new());
                }
                // Nothing in memory: look at the streams once without blocking.
                read_once = true;
                self.read_ctl(None).await?;
                continue;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(deadline - now) => {}
            }
        }
    }

    fn commit_args(&self, commit: &StepCommit, info: &LockInfo) -> Result<(Vec<Vec<u8>>, CommitEffects), Error> {
        let inner = &self.inner;
        let mut a: Vec<Vec<u8>> = Vec::with_capacity(32);
        let t = self.tag(info.part);
        a.push(t.into_bytes());
        a.push(info.part.to_string().into_bytes());
        a.push(inner.worker_id.clone().into_bytes());
        a.push(info.epoch.to_string().into_bytes());
        a.push(info.generation.clone().into_bytes());
        a.push(commit.instance_id.clone().into_bytes());
        let consumed: Vec<u64> = commit.consumed.iter().chain(info.stale.iter()).copied().collect();
        a.push(consumed.len().to_string().into_bytes());
        a.extend(consumed.iter().map(|n| stream_id(*n).into_bytes()));
        a.push(if commit.reset_history { b"1".to_vec() } else { b"0".to_vec() });
        a.push(commit.new_events.len().to_string().into_bytes());
        for e in &commit.new_events {
            a.push(to_json(e)?.into_bytes());
        }
        match &commit.snapshot {
            SnapshotChange::Keep => a.extend([b"k".to_vec(), Vec::new()]),
            SnapshotChange::Set(s) => a.extend([b"s".to_vec(), s.clone()]),
            SnapshotChange::Delete => a.extend([b"d".to_vec(), Vec::new()]),
        }
        match &commit.status {
            Some(s) => {
                a.push(to_json(s)?.into_bytes());
                a.push(s.runtime_status.to_string().into_bytes());
            }
            None => a.extend([Vec::new(), Vec::new()]),
        }
        let mut fx = CommitEffects::default();
        a.push(commit.actions.len().to_string().into_bytes());
        let now = Backend::now(self);
        for action in &commit.actions {
            let (kind, target, args): (&str, u32, Vec<Vec<u8>>) = match action {
                Action::ScheduleActivity(r) => {
                    fx.activities = true;
                    (
                        "act",
                        self.part_of(&r.instance_id),
                        vec![r.instance_id.clone().into_bytes(), to_json(r)?.into_bytes()],
                    )
                }
                Action::SetTimer(t) => {
                    let p = self.part_of(&t.instance_id);
                    fx.timers.push((p, t.fire_at));
                    (
                        "tmr",
                        p,
                        vec![
                            t.instance_id.clone().into_bytes(),
                            t.key.clone().into_bytes(),
                            t.fire_at.to_string().into_bytes(),
                            to_json(&t.message)?.into_bytes(),
                        ],
                    )
                }
                Action::CancelTimer { instance_id, key } => {
                    ("cnl", self.part_of(instance_id), vec![instance_id.clone().into_bytes(), key.clone().into_bytes()])
                }
                Action::SendMessage { instance_id, message } => (
                    "snd",
                    self.part_of(instance_id),
                    vec![instance_id.clone().into_bytes(), to_json(message)?.into_bytes()],
                ),
                Action::CreateInstance(new) => {
                    let status = new.initial_status(now);
                    let (pp, pi, fail) = match new.already_exists_reply() {
                        Some((parent, msg)) => (self.part_of(&parent), parent, to_json(&msg)?),
                        None => (0, String::new(), String::new()),
                    };
                    (
                        "new",
                        self.part_of(&new.instance_id),
                        vec![
                            new.instance_id.clone().into_bytes(),
                            to_json(&status)?.into_bytes(),
                            now.to_string().into_bytes(),
                            to_json(&new.start_message())?.into_bytes(),
                            pp.to_string().into_bytes(),
                            pi.into_bytes(),
                            fail.into_bytes(),
                        ],
                    )
                }
            };
            if target != info.part {
                fx.remote = true;
            }
            a.push(kind.as_bytes().to_vec());
            a.push(target.to_string().into_bytes());
            a.push(args.len().to_string().into_bytes());
            a.extend(args);
        }
        Ok((a, fx))
    }

    /// Apply a commit's outcome to the in-memory state.
    fn after_commit(&self, commit: &StepCommit, outcome: &str, fx: &CommitEffects) -> Result<(), Error> {
        let mut guard = lock(&self.inner.owner);
        let o = &mut *guard;
        let Some(info) = o.locks.remove(&commit.lock) else {
            return Err(Error::LockLost(commit.instance_id.clone()));
        };
        match outcome {
            "OK" => {
                if let Some(part) = o.parts.get_mut(&info.part)
                    && part.epoch == info.epoch
                {
                    let done: HashSet<u64> = commit.consumed.iter().chain(info.stale.iter()).copied().collect();
                    let mut remove = false;
                    if let Some(st) = part.insts.get_mut(&commit.instance_id) {
                        st.inbox.retain(|m| !done.contains(&m.id));
                        st.locked = None;
                        if st.has_new {
                            part.ready.push_back(commit.instance_id.clone());
                        } else if st.inbox.is_empty() {
                            remove = true;
                        }
                    }
                    if remove {
                        part.insts.remove(&commit.instance_id);
                    }
                    if fx.remote {
                        part.outbox_dirty = true;
                    }
                }
                for (p, at) in &fx.timers {
                    if let Some(part) = o.parts.get_mut(p) {
                        part.timer_due = part.timer_due.min(*at);
                    }
                }
                let ready = o.parts.get(&info.part).is_some_and(|p| !p.ready.is_empty());
                drop(guard);
                if fx.remote || !fx.timers.is_empty() {
                    self.inner.wake.notify_one();
                }
                if ready {
                    self.inner.ready.notify_waiters();
                }
                Ok(())
            }
            "GONE" => {
                // Replaced or purged since the fetch: look again with fresh data.
                if let Some(part) = o.parts.get_mut(&info.part)
                    && let Some(st) = part.insts.get_mut(&commit.instance_id)
                {
                    st.locked = None;
                    st.has_new = true;
                    part.ready.push_back(commit.instance_id.clone());
                }
                drop(guard);
                self.inner.ready.notify_waiters();
                Err(Error::LockLost(commit.instance_id.clone()))
            }
            _ => {
                // The lease is gone (taken over, or expired): forget the partition.
                if o.parts.get(&info.part).is_some_and(|p| p.epoch == info.epoch) {
                    o.parts.remove(&info.part);
                    o.locks.retain(|_, l| l.part != info.part);
                }
                drop(guard);
                self.inner.wake.notify_one();
                Err(Error::LockLost(commit.instance_id.clone()))
            }
        }
    }

    /// The outcome of a commit is unknown (the connection failed): take the partition again
    /// under a new epoch, which fences the commit if it is still on its way, and re-read it.
    fn reset_partition(&self, commit: &StepCommit) {
        let mut o = lock(&self.inner.owner);
        if let Some(info) = o.locks.remove(&commit.lock)
            && o.parts.get(&info.part).is_some_and(|p| p.epoch == info.epoch)
        {
            o.parts.remove(&info.part);
            o.locks.retain(|_, l| l.part != info.part);
        }
        drop(o);
        self.inner.wake.notify_one();
    }

    /// Commit several steps in one pipeline; one result per commit, in order.
    async fn commit_pipelined(&self, commits: Vec<StepCommit>) -> Vec<Result<(), Error>> {
        let mut prepared = Vec::with_capacity(commits.len());
        let mut results: Vec<Option<Result<(), Error>>> = Vec::with_capacity(commits.len());
        for c in &commits {
            let info = {
                let o = lock(&self.inner.owner);
                o.locks.get(&c.lock).map(|l| LockInfo {
                    part: l.part,
                    epoch: l.epoch,
                    instance: l.instance.clone(),
                    generation: l.generation.clone(),
                    stale: l.stale.clone(),
                })
            };
            match info {
                Some(info) if info.instance == c.instance_id => match self.commit_args(c, &info) {
                    Ok((args, fx)) => {
                        prepared.push((results.len(), info.part, args, fx));
                        results.push(None);
                    }
                    Err(e) => {
                        self.abandon_local(&c.instance_id, c.lock);
                        results.push(Some(Err(e)));
                    }
                },
                _ => results.push(Some(Err(Error::LockLost(c.instance_id.clone())))),
            }
        }
        if !prepared.is_empty() {
            let script = &self.inner.scripts.commit;
            let mut pipe = redis::pipe();
            for (_, p, args, _) in &prepared {
                pipe.cmd("EVALSHA").arg(script.get_hash()).arg(1).arg(format!("{}:lease", self.tag(*p))).arg(args);
            }
            let mut replies: Result<Vec<Value>, redis::RedisError> = pipe.query_async(&mut self.conn()).await;
            if let Err(e) = &replies
                && e.to_string().to_ascii_lowercase().contains("noscript")
            {
                let loaded = script.load_async(&mut self.conn()).await;
                if loaded.is_ok() {
                    replies = pipe.query_async(&mut self.conn()).await;
                }
            }
            match replies {
                Ok(replies) => {
                    for ((k, _, _, fx), reply) in prepared.iter().zip(replies) {
                        let c = &commits[*k];
                        results[*k] = Some(self.after_commit(c, &reply_str(&reply), fx));
                    }
                }
                Err(e) => {
                    for (k, _, _, _) in &prepared {
                        self.reset_partition(&commits[*k]);
                        results[*k] = Some(Err(backend_err("committing a step (it will run again)", &e)));
                    }
                }
            }
        }
        results.into_iter().map(|r| r.unwrap_or_else(|| Err(Error::Backend("redis: no reply".into())))).collect()
    }

    // ------------------------------------------------------------ activities

    fn note_activity_fetch(&self) {
        let mut a = lock(&self.inner.activity);
        a.active = true;
        a.last_fetch = Some(Instant::now());
    }

    /// Read activity items into the buffer (spawned: a dropped fetch loses nothing).
    async fn read_activities(&self, block: Option<Duration>, count: usize) -> Result<(), Error> {
        let this = self.clone();
        let task = tokio::spawn(async move {
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP").arg("w").arg(&this.inner.worker_id).arg("COUNT").arg(count);
            if let Some(b) = block {
                cmd.arg("BLOCK").arg(b.as_millis().max(1) as u64);
            }
            cmd.arg("STREAMS");
            let parts = this.inner.cfg.partitions;
            for p in 0..parts {
                cmd.arg(format!("{}:act", this.tag(p)));
            }
            for _ in 0..parts {
                cmd.arg(">");
            }
            let reply: Result<Value, redis::RedisError> = if block.is_some() {
                let mut guard = this.inner.act_conn.lock().await;
                if guard.is_none() {
                    *guard = Some(Self::manager(&this.inner.client, Some(BLOCK_MAX + Duration::from_secs(5))).await?);
                }
                cmd.query_async(guard.as_mut().expect("set above")).await
            } else {
                cmd.query_async(&mut this.conn()).await
            };
            let reply = match reply {
                Ok(r) => r,
                Err(e) if e.to_string().contains("NOGROUP") => {
                    this.ensure_groups().await?;
                    return Ok(());
                }
                Err(e) => return Err(backend_err("XREADGROUP", e)),
            };
            let mut items = Vec::new();
            for (key, entries) in keys::parse_read(&reply) {
                let Some(p) = (0..parts).find(|p| key == format!("{}:act", this.tag(*p))) else { continue };
                items.extend(entries.iter().filter_map(|e| this.work_item(p, e)));
            }
            lock(&this.inner.acts).buffer.extend(items);
            Ok::<(), Error>(())
        });
        task.await.map_err(|e| Error::Backend(format!("redis: activity read task failed: {e}")))?
    }

    fn work_item(&self, p: u32, e: &Entry) -> Option<ActivityWorkItem> {
        let r = e.get("r")?;
        match from_json::<ActivityRequest>(r, "an activity request") {
            Ok(request) => Some(ActivityWorkItem { work_id: keys::work_id(e.n, p), request }),
            Err(err) => {
                eprintln!("durable redis backend: unreadable activity entry {}: {err}", e.n);
                None
            }
        }
    }

    async fn fetch_activity_batch(&self, max: usize, wait: Duration) -> Result<Vec<ActivityWorkItem>, Error> {
        self.ensure_started().await;
        self.note_activity_fetch();
        let deadline = tokio::time::Instant::now() + wait;
        let mut read_once = false;
        loop {
            {
                let mut acts = lock(&self.inner.acts);
                let n = max.max(1).min(acts.buffer.len());
                if n > 0 {
                    let items: Vec<_> = acts.buffer.drain(..n).collect();
                    for i in &items {
                        acts.in_flight.insert(i.work_id, i.clone());
                    }
                    return Ok(items);
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline && read_once {
                return Ok(Vec::new());
            }
            let block = if now >= deadline { None } else { Some((deadline - now).min(BLOCK_MAX)) };
            read_once = true;
            self.read_activities(block, max.max(ACT_PREFETCH)).await?;
            self.note_activity_fetch();
        }
    }

    async fn complete_one(&self, item: &ActivityWorkItem, outcome: Result<String, String>) -> Result<(), Error> {
        // Whatever happens, this handle no longer keeps the item: if the completion did not get
        // through, the item is claimed again after the visibility timeout and runs again.
        lock(&self.inner.acts).in_flight.remove(&item.work_id);
        let (n, p) = keys::split_work_id(item.work_id);
        let msg = to_json(&item.request.result_message(outcome))?;
        let _: i64 = self
            .inner
            .scripts
            .complete
            .key(format!("{}:lease", self.tag(p)))
            .arg(self.tag(p))
            .arg(stream_id(n))
            .arg(&item.request.instance_id)
            .arg(msg)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("completing an activity", e))?;
        Ok(())
    }

    async fn abandon_one(&self, work_id: u64) -> Result<(), Error> {
        lock(&self.inner.acts).in_flight.remove(&work_id);
        let (n, p) = keys::split_work_id(work_id);
        let _: i64 = self
            .inner
            .scripts
            .abandon
            .key(format!("{}:lease", self.tag(p)))
            .arg(self.tag(p))
            .arg(stream_id(n))
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("handing an activity back", e))?;
        Ok(())
    }

    /// Keep our running items (`XCLAIM` resets their idle time), claim items of dead workers
    /// (`XAUTOCLAIM`), and hand prefetched items back if activities are no longer fetched.
    async fn activity_upkeep(&self) -> Result<(), Error> {
        let (active, idle) = {
            let a = lock(&self.inner.activity);
            (a.active, a.last_fetch.is_none_or(|t| t.elapsed() > ACT_IDLE_AFTER))
        };
        if !active {
            return Ok(());
        }
        let mut c = self.conn();
        if idle {
            let left: Vec<u64> = lock(&self.inner.acts).buffer.drain(..).map(|i| i.work_id).collect();
            for w in left {
                self.abandon_one(w).await?;
            }
        }
        let mine: Vec<u64> = {
            let acts = lock(&self.inner.acts);
            acts.in_flight.keys().chain(acts.buffer.iter().map(|i| &i.work_id)).copied().collect()
        };
        let mut by_part: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for w in &mine {
            let (n, p) = keys::split_work_id(*w);
            by_part.entry(p).or_default().push(stream_id(n));
        }
        for (p, ids) in by_part {
            let _: Value = redis::cmd("XCLAIM")
                .arg(format!("{}:act", self.tag(p)))
                .arg("w")
                .arg(&self.inner.worker_id)
                .arg(0)
                .arg(ids)
                .arg("JUSTID")
                .query_async(&mut c)
                .await
                .map_err(|e| backend_err("XCLAIM", e))?;
        }
        if idle {
            if lock(&self.inner.acts).in_flight.is_empty() {
                lock(&self.inner.activity).active = false;
            }
            return Ok(());
        }
        let mine: HashSet<u64> = mine.into_iter().collect();
        let visibility = self.inner.cfg.visibility.as_millis() as u64;
        for p in 0..self.inner.cfg.partitions {
            let reply: Value = redis::cmd("XAUTOCLAIM")
                .arg(format!("{}:act", self.tag(p)))
                .arg("w")
                .arg(&self.inner.worker_id)
                .arg(visibility)
                .arg("0-0")
                .arg("COUNT")
                .arg(ACT_PREFETCH)
                .query_async(&mut c)
                .await
                .map_err(|e| backend_err("XAUTOCLAIM", e))?;
            let entries = match &reply {
                Value::Array(a) if a.len() >= 2 => keys::parse_entries(&a[1]),
                _ => Vec::new(),
            };
            let items: Vec<_> =
                entries.iter().filter_map(|e| self.work_item(p, e)).filter(|i| !mine.contains(&i.work_id)).collect();
            lock(&self.inner.acts).buffer.extend(items);
        }
        Ok(())
    }

    // ------------------------------------------------------------ owner upkeep

    /// Move due timers of owned partitions into their control streams.
    async fn pump_timers(&self) -> Result<(), Error> {
        let now = Backend::now(self);
        let due: Vec<(u32, u64)> = {
            let o = lock(&self.inner.owner);
            o.parts.iter().filter(|(_, s)| s.timer_due <= now).map(|(p, s)| (*p, s.epoch)).collect()
        };
        let mut c = self.conn();
        for (p, epoch) in due {
            let reply: Value = self
                .inner
                .scripts
                .timers
                .key(format!("{}:lease", self.tag(p)))
                .arg(self.tag(p))
                .arg(&self.inner.worker_id)
                .arg(epoch)
                .arg(now)
                .arg(1000)
                .invoke_async(&mut c)
                .await
                .map_err(|e| backend_err("firing timers", e))?;
            match &reply {
                Value::Array(a) if a.len() == 2 => {
                    let moved = reply_int(&a[0]);
                    let next = reply_int(&a[1]);
                    let mut o = lock(&self.inner.owner);
                    if let Some(part) = o.parts.get_mut(&p)
                        && part.epoch == epoch
                    {
                        // More due than one call moves: look again at once.
                        part.timer_due = if moved >= 1000 {
                            0
                        } else if next < 0 {
                            u64::MAX
                        } else {
                            next as u64
                        };
                    }
                }
                _ => self.drop_partition(p, epoch),
            }
        }
        Ok(())
    }

    /// Move outbox operations of owned partitions to their target partitions.
    async fn drain_outboxes(&self) -> Result<(), Error> {
        let dirty: Vec<u32> = {
            let mut o = lock(&self.inner.owner);
            o.parts
                .iter_mut()
                .filter(|(_, s)| s.outbox_dirty)
                .map(|(p, s)| {
                    s.outbox_dirty = false;
                    *p
                })
                .collect()
        };
        let mut c = self.conn();
        for p in dirty {
            let ob = format!("{}:ob", self.tag(p));
            loop {
                let reply: Value = redis::cmd("XRANGE")
                    .arg(&ob)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(500)
                    .query_async(&mut c)
                    .await
                    .map_err(|e| backend_err("reading the outbox", e))?;
                let entries = keys::parse_entries(&reply);
                if entries.is_empty() {
                    break;
                }
                let mut done = Vec::new();
                let mut blocked: HashSet<u32> = HashSet::new();
                for e in &entries {
                    let target: u32 = e.get_str("t").and_then(|s| s.parse().ok()).unwrap_or(u32::MAX);
                    if target >= self.inner.cfg.partitions || blocked.contains(&target) {
                        if target >= self.inner.cfg.partitions {
                            done.push(stream_id(e.n));
                        }
                        continue;
                    }
                    let n: usize = e.get_str("n").and_then(|s| s.parse().ok()).unwrap_or(0);
                    let mut inv = self.inner.scripts.apply.key(format!("{}:lease", self.tag(target)));
                    inv.arg(self.tag(target))
                        .arg(target)
                        .arg(p)
                        .arg(e.get("q").unwrap_or(b"0"))
                        .arg(e.get("k").unwrap_or(b""))
                        .arg(n);
                    for i in 1..=n {
                        inv.arg(e.get(&format!("a{i}")).unwrap_or(b""));
                    }
                    let r: String =
                        inv.invoke_async(&mut c).await.map_err(|e| backend_err("applying an outbox entry", e))?;
                    if r == "GAP" {
                        blocked.insert(target);
                    } else {
                        done.push(stream_id(e.n));
                        // Applying may have queued work in the target's outbox (a refused
                        // sub-orchestration answers its parent).
                        if let Some(part) = lock(&self.inner.owner).parts.get_mut(&target) {
                            part.outbox_dirty = true;
                        }
                    }
                }
                if !done.is_empty() {
                    let _: Value = redis::cmd("XDEL")
                        .arg(&ob)
                        .arg(&done)
                        .query_async(&mut c)
                        .await
                        .map_err(|e| backend_err("XDEL", e))?;
                }
                if !blocked.is_empty() {
                    // An earlier entry is still on its way (another drainer): look again later.
                    if let Some(part) = lock(&self.inner.owner).parts.get_mut(&p) {
                        part.outbox_dirty = true;
                    }
                    break;
                }
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct CommitEffects {
    activities: bool,
    remote: bool,
    timers: Vec<(u32, Millis)>,
}

struct FetchGuard<'a>(&'a Redis);

impl Drop for FetchGuard<'_> {
    fn drop(&mut self) {
        self.0.inner.fetching.fetch_sub(1, Ordering::SeqCst);
        lock(&self.0.inner.owner).last_fetch = Some(Instant::now());
    }
}

/// The control reader: keeps the owned partitions' inboxes filled (blocking reads).
async fn ctl_reader(weak: Weak<Inner>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let r = Redis { inner };
        let active = lock(&r.inner.owner).active;
        let res = if active {
            r.read_ctl(Some(BLOCK_MAX)).await
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(0)
        };
        drop(r);
        match res {
            Ok(_) => backoff = Duration::from_millis(50),
            Err(e) => {
                eprintln!("durable redis backend: reading control streams failed: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Leases, heartbeats, timers, outboxes and activity upkeep.
async fn maintenance(weak: Weak<Inner>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let r = Redis { inner };
        let res = maintenance_round(&r).await;
        let sleep = match res {
            Ok(d) => {
                backoff = Duration::from_millis(50);
                d
            }
            Err(e) => {
                eprintln!("durable redis backend: upkeep failed: {e}; retrying in {backoff:?}");
                let d = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                d
            }
        };
        let _ = tokio::time::timeout(sleep, r.inner.wake.notified()).await;
    }
}

/// One round of upkeep; how long to sleep until the next.
async fn maintenance_round(r: &Redis) -> Result<Duration, Error> {
    let mut sleep = Duration::from_secs(1);
    let (active, idle, heartbeat_due) = {
        let o = lock(&r.inner.owner);
        let idle = r.inner.fetching.load(Ordering::SeqCst) == 0
            && o.last_fetch.is_none_or(|t| t.elapsed() > IDLE_AFTER.max(r.inner.cfg.lease));
        (o.active, idle, o.next_heartbeat.is_none_or(|t| Instant::now() >= t) || o.parts.is_empty())
    };
    if active {
        if idle {
            r.stop_orchestrating().await;
        } else {
            if heartbeat_due {
                r.rebalance().await?;
            }
            r.pump_timers().await?;
            r.drain_outboxes().await?;
            let o = lock(&r.inner.owner);
            if let Some(t) = o.next_heartbeat {
                sleep = sleep.min(t.saturating_duration_since(Instant::now()));
            }
            if r.inner.virtual_start.is_none() {
                let now = Backend::now(r);
                if let Some(due) = o.parts.values().map(|p| p.timer_due).min()
                    && due != u64::MAX
                {
                    sleep = sleep.min(Duration::from_millis(due.saturating_sub(now).max(1)));
                }
            }
            if o.parts.values().any(|p| p.outbox_dirty) {
                sleep = sleep.min(Duration::from_millis(20));
            }
            if o.parts.len() < r.inner.cfg.partitions as usize {
                // Partitions of dead workers free up when their leases expire.
                sleep = sleep.min(r.inner.cfg.lease / 3);
            }
        }
    }
    let refresh_due = {
        let mut a = lock(&r.inner.activity);
        if !a.active {
            false
        } else if a.next_refresh.is_none_or(|t| Instant::now() >= t) {
            a.next_refresh = Some(Instant::now() + r.inner.cfg.visibility / 4);
            true
        } else {
            false
        }
    };
    if refresh_due {
        r.activity_upkeep().await?;
    }
    if lock(&r.inner.activity).active {
        sleep = sleep.min(r.inner.cfg.visibility / 4);
    }
    Ok(sleep)
}

impl Backend for Redis {
    fn now(&self) -> Millis {
        match self.inner.virtual_start {
            Some(start) => start.saturating_add(self.inner.advanced_ms.load(Ordering::SeqCst)),
            None => self.real_now().saturating_add(self.inner.advanced_ms.load(Ordering::SeqCst)),
        }
    }

    fn create_instance(&self, new: super::NewInstance) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            let p = self.part_of(&new.instance_id);
            let now = Backend::now(self);
            let created: i64 = self
                .inner
                .scripts
                .create
                .key(format!("{}:lease", self.tag(p)))
                .arg(self.tag(p))
                .arg(p)
                .arg(&new.instance_id)
                .arg(to_json(&new.initial_status(now))?)
                .arg(now)
                .arg(to_json(&new.start_message())?)
                .invoke_async(&mut self.conn())
                .await
                .map_err(|e| backend_err("creating an instance", e))?;
            if created == 0 {
                return Err(Error::InstanceAlreadyExists(new.instance_id));
            }
            Ok(())
        })
    }

    fn send_message<'a>(&'a self, instance_id: &'a str, message: InstanceMessage) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let p = self.part_of(instance_id);
            let sent: i64 = self
                .inner
                .scripts
                .send
                .key(format!("{}:lease", self.tag(p)))
                .arg(self.tag(p))
                .arg(instance_id)
                .arg(to_json(&message)?)
                .invoke_async(&mut self.conn())
                .await
                .map_err(|e| backend_err("sending a message", e))?;
            if sent == 0 {
                return Err(Error::InstanceNotFound(instance_id.to_string()));
            }
            Ok(())
        })
    }

    fn status<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<Option<InstanceStatus>, Error>> {
        Box::pin(async move {
            let p = self.part_of(instance_id);
            let st: Option<Vec<u8>> = redis::cmd("HGET")
                .arg(format!("{}:i:{instance_id}", self.tag(p)))
                .arg("st")
                .query_async(&mut self.conn())
                .await
                .map_err(|e| backend_err("HGET", e))?;
            st.map(|b| from_json(&b, "an instance status")).transpose()
        })
    }

    fn release(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            self.stop_orchestrating().await;
            Ok(())
        })
    }

    fn queue_depths(&self) -> BoxFuture<'_, Result<Option<crate::metrics::QueueDepths>, Error>> {
        Box::pin(async move {
            let mut pipe = redis::pipe();
            for p in 0..self.inner.cfg.partitions {
                let t = self.tag(p);
                pipe.cmd("XLEN").arg(format!("{t}:act"));
                pipe.cmd("ZCARD").arg(format!("{t}:tm"));
                pipe.cmd("XLEN").arg(format!("{t}:ctl"));
            }
            let v: Vec<u64> = pipe.query_async(&mut self.conn()).await.map_err(|e| backend_err("queue depths", e))?;
            let mut d = crate::metrics::QueueDepths::default();
            for c in v.chunks(3) {
                d.activities += c[0];
                d.timers += c[1];
                d.messages += c[2];
            }
            Ok(Some(d))
        })
    }

    fn snapshot<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        Box::pin(async move {
            let p = self.part_of(instance_id);
            let bytes: Option<Vec<u8>> = redis::cmd("HGET")
                .arg(format!("{}:i:{instance_id}", self.tag(p)))
                .arg("snap")
                .query_async(&mut self.conn())
                .await
                .map_err(|e| backend_err("HGET", e))?;
            Ok(bytes)
        })
    }

    fn history<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<Option<Vec<HistoryEvent>>, Error>> {
        Box::pin(async move {
            let t = self.tag(self.part_of(instance_id));
            let (exists, events): (bool, Vec<Vec<u8>>) = redis::pipe()
                .cmd("EXISTS")
                .arg(format!("{t}:i:{instance_id}"))
                .cmd("LRANGE")
                .arg(format!("{t}:h:{instance_id}"))
                .arg(0)
                .arg(-1)
                .query_async(&mut self.conn())
                .await
                .map_err(|e| backend_err("LRANGE", e))?;
            if !exists {
                return Ok(None);
            }
            events.iter().map(|e| from_json(e, "a history event")).collect::<Result<Vec<_>, _>>().map(Some)
        })
    }

    fn list(&self, query: InstanceQuery) -> BoxFuture<'_, Result<InstancePage, Error>> {
        Box::pin(async move {
            let after = match &query.continuation {
                None => None,
                Some(c) => Some(
                    c.split_once(':')
                        .and_then(|(ms, id)| Some((ms.parse::<Millis>().ok()?, id.to_string())))
                        .ok_or_else(|| {
                            Error::Backend(format!("invalid continuation {c:?}: pass the one a page returned"))
                        })?,
                ),
            };
            let mut c = self.conn();
            let mut pipe = redis::pipe();
            for p in 0..self.inner.cfg.partitions {
                let min = after.as_ref().map(|(ms, _)| ms.to_string()).unwrap_or_else(|| "-inf".into());
                pipe.cmd("ZRANGEBYSCORE").arg(format!("{}:idx", self.tag(p))).arg(min).arg("+inf").arg("WITHSCORES");
            }
            let per_part: Vec<Vec<(String, f64)>> =
                pipe.query_async(&mut c).await.map_err(|e| backend_err("ZRANGEBYSCORE", e))?;
            let mut all: Vec<(Millis, String)> = per_part
                .into_iter()
                .flatten()
                .map(|(id, ms)| (ms as Millis, id))
                .filter(|k| after.as_ref().is_none_or(|a| k > a))
                .collect();
            all.sort();
            let limit = query.limit.unwrap_or(100).max(1);
            let mut instances = Vec::new();
            let mut more = false;
            for chunk in all.chunks(256) {
                let mut pipe = redis::pipe();
                for (_, id) in chunk {
                    pipe.cmd("HGET").arg(format!("{}:i:{id}", self.tag(self.part_of(id)))).arg("st");
                }
                let sts: Vec<Option<Vec<u8>>> = pipe.query_async(&mut c).await.map_err(|e| backend_err("HGET", e))?;
                for st in sts.into_iter().flatten() {
                    let s: InstanceStatus = from_json(&st, "an instance status")?;
                    if query.matches(&s) {
                        if instances.len() == limit {
                            more = true;
                            break;
                        }
                        instances.push(s);
                    }
                }
                if more {
                    break;
                }
            }
            let continuation =
                if more { instances.last().map(|s| format!("{}:{}", s.created_ms, s.instance_id)) } else { None };
            Ok(InstancePage { instances, continuation })
        })
    }

    fn purge<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let p = self.part_of(instance_id);
            let r: Value = self
                .inner
                .scripts
                .purge
                .key(format!("{}:lease", self.tag(p)))
                .arg(self.tag(p))
                .arg(instance_id)
                .invoke_async(&mut self.conn())
                .await
                .map_err(|e| backend_err("purging an instance", e))?;
            match r {
                Value::Int(1) => Ok(true),
                Value::Int(_) => Ok(false),
                other => Err(Error::InvalidState {
                    id: instance_id.to_string(),
                    status: reply_str(&other),
                    what: "only a finished instance can be purged; terminate it first".to_string(),
                }),
            }
        })
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
