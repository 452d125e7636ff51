//! Configuration: the [`RedisBuilder`] and its options, and connecting (URL checks, the clock,
//! the task hub's partition count).

use super::activities::{ActivityMode, Acts};
use super::clock::Clock;
use super::conn::{CLUSTER_SCHEMES, Conn, Target};
use super::lease::Owner;
use super::scripts::Scripts;
use super::{Inner, Redis, backend_err, keys};
use crate::error::Error;
use redis::Value;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Configures a [`Redis`] backend. Every process on one task hub (prefix) must use the same
/// partition count.
#[derive(Clone, Debug)]
pub struct RedisBuilder {
    url: String,
    cfg: Config,
}

/// The settings of a [`Redis`] handle.
#[derive(Clone, Debug)]
pub(super) struct Config {
    pub(super) prefix: String,
    pub(super) partitions: u32,
    pub(super) lease: Duration,
    pub(super) visibility: Duration,
    pub(super) virtual_clock: bool,
    pub(super) read_batch: usize,
    pub(super) read_ahead: usize,
    pub(super) step_messages: usize,
    pub(super) clock_ahead: Duration,
    pub(super) retention: Option<Duration>,
    pub(super) replica_acks: u32,
    pub(super) record_cache: usize,
}

impl RedisBuilder {
    /// A builder for `url` with the default settings.
    pub(super) fn new(url: String) -> Self {
        RedisBuilder {
            url,
            cfg: Config {
                prefix: "durable".into(),
                partitions: 8,
                lease: Duration::from_secs(5),
                visibility: Duration::from_secs(30),
                virtual_clock: false,
                read_batch: 512,
                read_ahead: 4096,
                step_messages: 1000,
                clock_ahead: Duration::ZERO,
                retention: None,
                replica_acks: 1,
                record_cache: 16 << 20,
            },
        }
    }

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
    /// waits before another worker claims it (default 30 s). A worker that shuts down gracefully
    /// hands its prefetched items back at once instead; the consumer (in Redis) of a worker that
    /// died is deleted once it holds nothing and has been idle for this long.
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

    /// How many control entries (messages to instances) of one partition the owner holds in
    /// memory, read ahead of the steps that consume them (default 4,096; one read may add up
    /// to [`read_batch`](Self::read_batch) more). A backlog — a burst of starts, a hot entity
    /// with many queued signals, work piled up while no worker ran — is read in pieces of this
    /// size, so a worker's memory does not grow with it. Messages an instance cannot consume
    /// yet (it is suspended, or no version of its code is registered here) do not count: they
    /// wait in memory until it can, and never stop the partition's other instances.
    pub fn read_ahead(mut self, n: usize) -> Self {
        self.cfg.read_ahead = n.max(1);
        self
    }

    /// How many messages one orchestration or entity step consumes at most (default 1,000),
    /// which bounds what one commit writes and deletes (one Lua script: Redis runs nothing
    /// else meanwhile). An instance with more waiting takes them in several steps, in order;
    /// `terminate` and `resume` are seen at once however many messages are queued before them.
    pub fn max_messages_per_step(mut self, n: usize) -> Self {
        self.cfg.step_messages = n.max(1);
        self
    }

    /// How many bytes of instance records (status, snapshot, generation) the owner of a
    /// partition keeps in memory after committing their steps, so that an instance's next step
    /// starts without reading its record from Redis again (default 16 MiB; `0` turns it off).
    /// When full, the records kept longest make room for new ones: instances that stopped
    /// stepping (parked on an event or a long timer) give way to those that step.
    /// What is kept is exactly what the commit wrote; a record changed by anyone else (the
    /// instance purged or started again under its id) makes the commit of a step that ran from
    /// the kept one fail its generation check, and that step runs again from a fresh read.
    /// Losing a partition, an unknown commit outcome or Redis going back in time drops what is
    /// kept for it.
    pub fn record_cache(mut self, bytes: usize) -> Self {
        self.cfg.record_cache = bytes;
        self
    }

    /// Make this handle's clock run `d` ahead of Redis's, as a worker's whose clock is wrong
    /// would: for tests that the scripts decide by Redis's clock. Not for production.
    #[doc(hidden)]
    pub fn clock_ahead_for_tests(mut self, d: Duration) -> Self {
        self.cfg.clock_ahead = d;
        self
    }

    /// Delete finished instances (Completed, Failed, Terminated) with everything they own
    /// (status, history, timers, index entries) once they have been finished for `d`. Default:
    /// keep them until purged.
    ///
    /// Every finished instance is recorded with the time it finished (its last status
    /// update), whether or not a retention is set; the worker that owns a partition deletes
    /// its expired instances in the background, in batches of 100 per script call, checking
    /// each is still finished (an instance restarted under the same id is kept). So the
    /// retention applies where orchestration workers run: give every worker process of the
    /// task hub the same one (a client-only process needs none). Expired instances go within
    /// about a quarter of `d` (at most 5 s) after they expire. Instances still running,
    /// chains of `continue_as_new` in progress and entities are never deleted. Instances that
    /// finished under a release without retention are not recorded: delete them once with
    /// `Client::purge_where`.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), durable_runtime::Error> {
    /// use durable_runtime::backend::Redis;
    /// use std::time::Duration;
    /// let backend = Redis::builder("redis://127.0.0.1:6379")
    ///     .retention(Duration::from_secs(7 * 24 * 3600))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn retention(mut self, d: Duration) -> Self {
        self.cfg.retention = Some(d);
        self
    }

    /// On a Redis Cluster: how many replicas of a master must have a write before it counts as
    /// done (default 1; 0 to not wait). Each write of the task hub's state (a step's commit, a
    /// start, an event, an activity's completion, …) is one script on one master; it is
    /// followed by `WAIT n 250` on that master, so that a failover to a replica that has it
    /// loses nothing a caller saw succeed. Redis replicates asynchronously, so without this a
    /// failover loses the last writes its master acknowledged. A master with no replica that
    /// answers within 250 ms (after a failover, before a new replica catches up) is written to
    /// without waiting for 5 s at a time, with a warning. Ignored on one Redis.
    pub fn replica_acks(mut self, n: u32) -> Self {
        self.cfg.replica_acks = n;
        self
    }

    /// Connect, check the task hub's configuration, and create the consumer groups.
    pub async fn connect(self) -> Result<Redis, Error> {
        Redis::connect_with(self.url, self.cfg).await
    }
}

impl Redis {
    /// Check the settings, connect, measure Redis's clock, and check the task hub's partition
    /// count.
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
        check_url(&url)?;
        let target = Target::open(&url)?;
        let conn = target.connect(cfg.replica_acks).await?;
        let addr = target.describe(&url);
        let worker_id = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let clock_ahead = cfg.clock_ahead;
        let stream_keys = super::StreamKeys::new(&cfg.prefix, cfg.partitions);
        let mut inner = Inner {
            stream_keys,
            cfg,
            worker_id,
            target,
            conn,
            commit_conn: tokio::sync::OnceCell::new(),
            ctl_conn: tokio::sync::Mutex::new(None),
            act_conn: tokio::sync::Mutex::new(None),
            act_upkeep: tokio::sync::Mutex::new(()),
            scripts: Scripts::new(),
            clock: Clock::new(clock_ahead),
            virtual_start: None,
            advanced_ms: AtomicU64::new(0),
            owner: Mutex::new(Owner::default()),
            acts: Mutex::new(Acts::default()),
            completions: Mutex::default(),
            sends: Mutex::default(),
            waits: Mutex::default(),
            wake: Notify::new(),
            relet: Notify::new(),
            run_id: Mutex::new(None),
            ready: Notify::new(),
            room: Notify::new(),
            started: tokio::sync::OnceCell::new(),
            fetching: AtomicUsize::new(0),
            rebalancing: tokio::sync::Mutex::new(()),
            activity: Mutex::new(ActivityMode::default()),
            next_lock: AtomicU64::new(1),
        };
        let mut c = inner.conn.clone();
        check_eviction_policy(&mut c, &addr).await?;
        // The clock: Redis's, so that every process agrees on when a timer is due.
        let sent = Instant::now();
        let (secs, micros): (u64, u64) =
            redis::cmd("TIME").query_async(&mut c).await.map_err(|e| backend_err("TIME", e))?;
        let redis_ms = secs * 1000 + micros / 1000;
        inner.clock.set(redis_ms, sent, Instant::now());
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
        r.check_run_id().await;
        Ok(r)
    }

    /// The partition count task hub `prefix` at `url` records (every process of a task hub
    /// must use it), or `None` if no process has connected to it yet: for tools that connect
    /// to an existing task hub without being told its configuration. `url` as in
    /// [`Redis::connect`], a Redis Cluster's as well.
    pub async fn hub_partitions(url: &str, prefix: &str) -> Result<Option<u32>, Error> {
        check_url(url)?;
        let mut c = Target::open(url)?.connect(0).await?;
        redis::cmd("GET")
            .arg(format!("{{{prefix}}}:partitions"))
            .query_async(&mut c)
            .await
            .map_err(|e| backend_err("reading the task hub's partition count", e))
    }

    /// A connection that reconnects with exponential backoff by itself.
    pub(super) async fn manager(
        client: &redis::Client,
        response_timeout: Option<Duration>,
    ) -> Result<ConnectionManager, Error> {
        let config = ConnectionManagerConfig::new()
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(1000))
            .set_number_of_retries(6)
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(response_timeout);
        client.get_connection_manager_with_config(config).await.map_err(|e| backend_err("connecting", e))
    }
}

/// Refuse a URL that is not a Redis (or Redis Cluster) URL, or asks for TLS without the
/// `redis-tls` feature.
fn check_url(url: &str) -> Result<(), Error> {
    let scheme = url.split("://").next().unwrap_or("");
    if (scheme == "rediss" || scheme == "rediss+cluster") && !cfg!(feature = "redis-tls") {
        return Err(Error::Config(format!(
            "{url:?} asks for TLS ({scheme}://): build durable with the `redis-tls` feature, or use redis:// (redis+cluster://) on a trusted network"
        )));
    }
    if !["redis", "rediss"].contains(&scheme) && !CLUSTER_SCHEMES.contains(&scheme) {
        return Err(Error::Config(format!(
            "{url:?} is not a Redis URL: use redis://[user[:password]@]host[:port][/db] (rediss://… for TLS), or \
                 redis+cluster://[user[:password]@]host:port[,host:port…] for a Redis Cluster"
        )));
    }
    #[cfg(feature = "redis-tls")]
    if scheme.starts_with("rediss") {
        // rustls needs a process-wide crypto provider; keep one the application installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    Ok(())
}

/// Refuse a Redis that may evict keys when it is full (`maxmemory-policy` other than
/// `noeviction`): the task hub's keys are not a cache. Leases carry TTLs, so the `volatile-*`
/// policies evict them first, and any policy may evict an instance's inbox, its history or a
/// partition's sequence counters, which stalls instances or applies a step only in part.
/// Where `CONFIG GET` is not allowed (an ACL without it, a managed Redis), say so and go on.
/// On a cluster every master is asked.
async fn check_eviction_policy(c: &mut Conn, addr: &str) -> Result<(), Error> {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("GET").arg("maxmemory-policy");
    let reply: Result<Value, redis::RedisError> = match c {
        Conn::Cluster(cc, _) => {
            use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
            cc.route_command(cmd, RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None)))
                .await
                .and_then(|v| v.extract_error())
        }
        Conn::Single(_) => cmd.query_async(c).await,
    };
    let policy = match reply {
        Ok(v) => {
            // `[name, value]`, or on a cluster one such pair per master.
            let mut words = Vec::new();
            flatten(&v, &mut words);
            words.windows(2).filter(|w| w[0] == "maxmemory-policy").map(|w| w[1].clone()).find(|p| p != "noeviction")
        }
        Err(e) if e.is_io_error() => return Err(backend_err("CONFIG GET maxmemory-policy", e)),
        Err(e) => {
            tracing::warn!(
                redis = addr,
                error = %e,
                "cannot read Redis's maxmemory-policy (CONFIG GET is not allowed): make sure it is `noeviction`, \
                 or Redis may evict the task hub's keys when it is full and lose or stall instances"
            );
            return Ok(());
        }
    };
    match policy {
        Some(p) => Err(Error::Config(format!(
            "Redis at {addr}: maxmemory-policy is {p}, so when it reaches maxmemory it evicts keys, and the \
             task hub's keys are not a cache (leases have TTLs and are evicted first; an evicted inbox, history or \
             sequence key stalls instances or applies a step only in part). Run `CONFIG SET maxmemory-policy noeviction` \
             (and set it in redis.conf), so that a full Redis refuses writes instead of losing data"
        ))),
        _ => Ok(()),
    }
}

/// Every string of a reply, depth first.
fn flatten(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(a) | Value::Set(a) => a.iter().for_each(|v| flatten(v, out)),
        Value::Map(m) => m.iter().for_each(|(k, v)| {
            flatten(k, out);
            flatten(v, out);
        }),
        other => out.extend(super::keys::bytes(other).map(|b| String::from_utf8_lossy(&b).into_owned())),
    }
}
