//! The connection: to one Redis (the `redis` crate's connection manager), or to a Redis Cluster
//! (its async cluster client, which discovers the cluster from any node it is given, routes each
//! command to the master of its key's slot, and follows `MOVED`/`ASK` and failovers).
//!
//! On a cluster no command may span slots. Every script and command of the backend touches keys
//! of one partition (one hash tag, so one slot) or one hub-level key; the reads that cover many
//! partitions are one command per partition there (see `read_each`). A pipeline is sent as it
//! is to one Redis; on a cluster its commands are sent one by one, all at once, each to its own
//! slot's master (the cluster client refuses pipelines across slots, and retries a whole
//! pipeline when one of its commands is redirected, which would run the others twice).

use super::keys::{self, Entry};
use super::{BLOCK_MAX, Redis, backend_err};
use crate::error::Error;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A connection to one Redis or to a Redis Cluster. Cheap to clone (both are multiplexed).
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection, Arc<ClusterShared>),
}

/// What the clones of a cluster connection share: the readers' polls, and the replica
/// acknowledgements. A script's writes are acknowledged once `replicas` replicas of their
/// master have them (`WAIT n`), so that a failover to such a replica loses no write a caller
/// saw succeed. A master that has no replica answering within `timeout` is written to without
/// waiting for a while (`DEGRADED_FOR`, logged): after a failover the new master has none until
/// the old one returns.
pub(super) struct ClusterShared {
    /// The waits of the control and activity readers, cut short by a script of this handle
    /// (it may have written what they wait for: a completion for an owned partition, an
    /// activity a step queued), so that work this process hands itself needs no poll.
    pub(super) ctl: Poll,
    pub(super) act: Poll,
    replicas: u32,
    timeout: Duration,
    /// Slots whose master did not answer in time, until when they are not waited for.
    degraded: Mutex<HashMap<Route, Instant>>,
    /// The `run_id` of each partition's master when last looked at.
    run_ids: Mutex<HashMap<u32, String>>,
}

/// How long the writes to a master that had no replica acknowledge them are not waited for.
const DEGRADED_FOR: Duration = Duration::from_secs(5);

impl ClusterShared {
    pub(super) fn new(replicas: u32, timeout: Duration) -> Self {
        ClusterShared {
            ctl: Poll::new(),
            act: Poll::new(),
            replicas,
            timeout,
            degraded: Mutex::new(HashMap::new()),
            run_ids: Mutex::new(HashMap::new()),
        }
    }

    /// The route of a script call's first key (the partition's), if `cmd` is a script call and
    /// replicas are waited for; a script call wakes the readers.
    fn slot_of(&self, cmd: &Cmd) -> Option<Route> {
        let route = script_route(cmd)?;
        self.ctl.kick();
        self.act.kick();
        (self.replicas > 0).then_some(route)
    }

    /// Wait until `replicas` replicas of the masters of `slots` have everything written to them
    /// on this connection so far. An error of the connection is returned: the writes may be lost.
    async fn wait(&self, c: &ClusterConnection, slots: HashSet<Route>) -> redis::RedisResult<()> {
        let now = Instant::now();
        let slots: Vec<Route> = {
            let mut d = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
            d.retain(|_, until| *until > now);
            slots.into_iter().filter(|s| !d.contains_key(s)).collect()
        };
        let waits = slots.into_iter().map(|slot| {
            let mut c = c.clone();
            async move {
                let mut cmd = redis::cmd("WAIT");
                cmd.arg(self.replicas).arg(self.timeout.as_millis() as u64);
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(slot));
                let acked: i64 = redis::from_redis_value(c.route_command(cmd, route).await?.extract_error()?)?;
                Ok::<_, redis::RedisError>((slot, acked))
            }
        });
        for r in futures_util::future::join_all(waits).await {
            let (slot, acked) = r?;
            if acked < i64::from(self.replicas) {
                tracing::warn!(
                    route = ?slot,
                    acked,
                    wanted = self.replicas,
                    for_secs = DEGRADED_FOR.as_secs(),
                    "a Redis Cluster master has no replica that acknowledged a write in time (after a failover, until a new replica \
                     catches up): its writes are not waited for a while, and a failover of it may lose them"
                );
                self.degraded.lock().unwrap_or_else(|p| p.into_inner()).insert(slot, now + DEGRADED_FOR);
            }
        }
        Ok(())
    }
}

/// The route of a script call (by its first key), `None` if `cmd` is not one. A script runs as
/// `EVALSHA` or `EVAL`, or as a function of the library (`FCALL`): the first key comes after
/// the script (or function) and the number of keys either way.
fn script_route(cmd: &Cmd) -> Option<Route> {
    let mut args = cmd.args_iter().filter_map(|a| match a {
        redis::Arg::Simple(b) => Some(b),
        _ => None,
    });
    let name = args.next()?;
    if !["EVALSHA", "EVAL", "FCALL"].iter().any(|n| name.eq_ignore_ascii_case(n.as_bytes())) {
        return None;
    }
    Some(Route::with_key(args.nth(2)?, SlotAddr::Master))
}

/// What a handle connects to, to open more connections.
pub(super) enum Target {
    Single(redis::Client),
    Cluster(Box<ClusterClient>),
}

/// How long a write on a cluster waits for its replicas at most.
const REPLICA_ACK_TIMEOUT: Duration = Duration::from_millis(250);

/// The schemes of a Redis Cluster connection string.
pub(super) const CLUSTER_SCHEMES: [&str; 2] = ["redis+cluster", "rediss+cluster"];

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c, acks) => Box::pin(async move {
                let reply = call(c, cmd).await?;
                if let Some(slot) = acks.slot_of(cmd).filter(|_| !matches!(reply, Value::ServerError(_))) {
                    acks.wait(c, HashSet::from([slot])).await?;
                }
                Ok(reply)
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            // Not a transaction (the backend sends none): each command on its own, all at once.
            Conn::Cluster(c, acks) if offset == 0 && count == pipeline.len() => {
                let c = c.clone();
                Box::pin(async move {
                    let calls = pipeline.cmd_iter().map(|cmd| {
                        let mut c = c.clone();
                        async move { call(&mut c, cmd).await }
                    });
                    let replies: Vec<Value> =
                        futures_util::future::join_all(calls).await.into_iter().collect::<Result<_, _>>()?;
                    let written = pipeline
                        .cmd_iter()
                        .zip(&replies)
                        .filter(|(_, r)| !matches!(r, Value::ServerError(_)))
                        .filter_map(|(cmd, _)| acks.slot_of(cmd))
                        .collect();
                    acks.wait(&c, written).await?;
                    Ok(replies)
                })
            }
            Conn::Cluster(c, _) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c, _) => c.get_db(),
        }
    }
}

/// How long a command on a cluster is sent again while its slot has no reachable master (a
/// failover takes a few `cluster-node-timeout`s).
const NOT_SENT_FOR: Duration = Duration::from_secs(30);

/// Send `cmd` on a cluster. The cluster client is told not to send anything again itself: it
/// would also repeat a command whose connection dropped after it was sent, which may have run
/// (a script would apply twice). Here a command is sent again only when it surely did not run
/// — redirected (`MOVED`, `ASK`: the client has learnt the new slot map meanwhile), refused
/// while the cluster fails over (`TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, `READONLY`,
/// `LOADING`), or no connection could be made to the slot's master — with a backoff, for up
/// to [`NOT_SENT_FOR`]. Any other error is returned, so that the caller knows the outcome is
/// unknown (a commit takes its partition again under a new epoch; a client repeats only what
/// is safe to repeat).
async fn call(c: &mut ClusterConnection, cmd: &Cmd) -> redis::RedisResult<Value> {
    let deadline = Instant::now() + NOT_SENT_FOR;
    let mut backoff = Duration::from_millis(10);
    loop {
        let e = match c.req_packed_command(cmd).await {
            Err(e) => e,
            Ok(v) => return Ok(v),
        };
        if !not_sent(&e) || Instant::now() + backoff > deadline {
            return Err(e);
        }
        tracing::debug!(error = %e, retry_in = ?backoff, "a Redis Cluster command did not run; sending it again");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(500));
    }
}

/// Whether a command on a cluster surely did not run.
fn not_sent(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind as S};
    match e.kind() {
        ErrorKind::Server(k) => {
            matches!(k, S::Moved | S::Ask | S::TryAgain | S::ClusterDown | S::MasterDown | S::ReadOnly | S::BusyLoading)
        }
        ErrorKind::ClusterConnectionNotFound => true,
        _ => e.is_connection_refusal(),
    }
}

/// The node URLs of a cluster connection string
/// `redis+cluster://[user[:password]@]host:port[,host:port…][/]` (`rediss+cluster://` for TLS):
/// each node as `redis://[user[:password]@]host:port` (or `rediss://`).
pub(super) fn cluster_nodes(url: &str) -> Result<Vec<String>, Error> {
    let bad = |why: &str| {
        Error::Config(format!(
            "{url:?} is not a Redis Cluster URL ({why}): use redis+cluster://[user[:password]@]host:port[,host:port…] \
             (rediss+cluster://… for TLS); the cluster is discovered from any node given"
        ))
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let node_scheme = match scheme {
        "redis+cluster" => "redis",
        "rediss+cluster" => "rediss",
        _ => return Err(bad("the scheme is not redis+cluster or rediss+cluster")),
    };
    let (userinfo, hosts) = match rest.rfind('@') {
        Some(i) => (&rest[..=i], &rest[i + 1..]),
        None => ("", rest),
    };
    let hosts = match hosts.split_once('/') {
        Some((h, "" | "0")) => h,
        Some(_) => return Err(bad("a Redis Cluster has only database 0")),
        None => hosts,
    };
    let mut nodes = Vec::new();
    for h in hosts.split(',').map(str::trim) {
        let Some((host, port)) = h.rsplit_once(':') else {
            return Err(bad(&format!("node {h:?} has no port")));
        };
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad(&format!("node {h:?} is not host:port")));
        }
        nodes.push(format!("{node_scheme}://{userinfo}{h}"));
    }
    Ok(nodes)
}

impl Target {
    /// Open `url` (checked by the caller): a cluster client for a cluster URL, else a client.
    pub(super) fn open(url: &str) -> Result<Self, Error> {
        let scheme = url.split("://").next().unwrap_or("");
        if CLUSTER_SCHEMES.contains(&scheme) {
            let nodes = cluster_nodes(url)?;
            let client = ClusterClientBuilder::new(nodes)
                .connection_timeout(Duration::from_secs(2))
                .response_timeout(Duration::from_secs(10))
                // Commands that did not run are sent again by `call`, and only those.
                .retries(0)
                .build()
                .map_err(|e| Error::Config(format!("{url:?}: {e}")))?;
            Ok(Target::Cluster(Box::new(client)))
        } else {
            let client = redis::Client::open(url).map_err(|e| Error::Config(format!("{url:?}: {e}")))?;
            Ok(Target::Single(client))
        }
    }

    /// Whether this is a Redis Cluster.
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster(_))
    }

    /// The shared connection; on a cluster, script writes wait for `replicas` replicas (see
    /// [`ClusterShared`]).
    pub(super) async fn connect(&self, replicas: u32) -> Result<Conn, Error> {
        match self {
            Target::Single(client) => Ok(Conn::Single(Redis::manager(client, Some(Duration::from_secs(10))).await?)),
            Target::Cluster(client) => Ok(Conn::Cluster(
                client.get_async_connection().await.map_err(|e| backend_err("connecting to the cluster", e))?,
                Arc::new(ClusterShared::new(replicas, REPLICA_ACK_TIMEOUT)),
            )),
        }
    }

    /// Where it connects, for messages (the address of one Redis, the nodes given for a cluster).
    pub(super) fn describe(&self, url: &str) -> String {
        match self {
            Target::Single(client) => client.get_connection_info().addr().to_string(),
            Target::Cluster(_) => url.rsplit('@').next().unwrap_or(url).to_string(),
        }
    }
}

/// How long a reader waits after a read on a cluster found nothing: from `POLL_MIN`, twice as
/// long after each further empty read, up to `POLL_MAX`; back to `POLL_MIN` once one finds some.
///
/// Why polling: a blocking read (`XREAD BLOCK`) holds its connection until it returns, and the
/// cluster client has one multiplexed connection per node, so a blocked read would hold up
/// every command to that node; a blocking read cannot span slots either, so blocking would take
/// a dedicated connection per partition. A non-blocking read of every owned partition at once
/// costs one round trip; a busy reader never waits (each read finds some), an idle one sends
/// one read per partition every `POLL_MAX` and sees new work within `POLL_MAX`.
pub(super) struct Poll {
    wait_us: AtomicU64,
    kick: Notify,
}

/// The first wait after an empty read on a cluster.
const POLL_MIN: Duration = Duration::from_millis(1);
/// The longest wait between reads on a cluster.
pub(super) const POLL_MAX: Duration = Duration::from_millis(25);

impl Poll {
    pub(super) fn new() -> Self {
        Poll { wait_us: AtomicU64::new(POLL_MIN.as_micros() as u64), kick: Notify::new() }
    }

    /// A read found entries.
    pub(super) fn found(&self) {
        self.wait_us.store(POLL_MIN.as_micros() as u64, Ordering::Relaxed);
    }

    /// Something may have been written for the reader: end its wait (or the next one) now.
    fn kick(&self) {
        self.found();
        self.kick.notify_one();
    }

    /// A read found nothing: wait (at most `limit`) before the next one, or until kicked.
    pub(super) async fn idle(&self, limit: Duration) {
        let us = self.wait_us.load(Ordering::Relaxed);
        self.wait_us.store((us * 2).min(POLL_MAX.as_micros() as u64), Ordering::Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_micros(us).min(limit)) => {}
            _ = self.kick.notified() => {}
        }
    }
}

impl Redis {
    /// On a cluster: stream reads of one stream each (`XREAD`/`XREADGROUP … STREAMS key id`), all
    /// at once and without blocking; the streams that had entries, with them.
    pub(super) async fn read_each(&self, cmds: Vec<Cmd>) -> Result<Vec<(String, Vec<Entry>)>, redis::RedisError> {
        let mut pipe = redis::pipe();
        for c in cmds {
            pipe.add_command(c);
        }
        let replies: Vec<Value> = pipe.query_async(&mut self.conn()).await?;
        Ok(replies.into_iter().flat_map(keys::parse_read).filter(|(_, e)| !e.is_empty()).collect())
    }

    /// A dedicated connection for blocking reads (on one Redis; reads on a cluster do not block).
    pub(super) async fn blocking_conn(&self) -> Result<ConnectionManager, Error> {
        match &self.inner.target {
            Target::Single(client) => Self::manager(client, Some(BLOCK_MAX + Duration::from_secs(5))).await,
            Target::Cluster(_) => {
                Err(Error::Backend("redis: a blocking read was asked of a cluster connection".into()))
            }
        }
    }

    /// On a cluster, what the connection's clones share (the readers' polls among it).
    pub(super) fn cluster(&self) -> Option<&ClusterShared> {
        match &self.inner.conn {
            Conn::Cluster(_, acks) => Some(acks),
            Conn::Single(_) => None,
        }
    }

    /// On a cluster, the `run_id` check per partition: `INFO` of the master of each partition's
    /// slot, compared, for the owned ones, with the one seen before. A new one (the master failed
    /// over, or restarted) may have lost writes: the partition is read again from the start under
    /// a new epoch (`went_back`). With replicas acknowledging every write nothing was lost, and
    /// this costs one read of the partition. Partitions not owned are looked at too, so that one
    /// taken later in the same rebalance has a `run_id` seen *before* it was taken: a failover
    /// right after it was taken is then noticed like any other. `false` on one Redis (the caller
    /// checks there).
    pub(super) async fn check_cluster_run_ids(&self) -> bool {
        let Conn::Cluster(c, shared) = &self.inner.conn else { return false };
        let owned: HashMap<u32, u64> = self.owned_partitions().into_iter().collect();
        let checks = (0..self.inner.cfg.partitions).map(|p| {
            let mut c = c.clone();
            let key = format!("{}:lease", self.tag(p));
            async move {
                let mut cmd = redis::cmd("INFO");
                cmd.arg("server");
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_key(
                    key,
                    SlotAddr::Master,
                )));
                let info = c.route_command(cmd, route).await.ok().and_then(|v| keys::bytes(&v));
                (p, info.and_then(|i| super::lease::run_id_of(&String::from_utf8_lossy(&i)).map(str::to_string)))
            }
        });
        for (p, run_id) in futures_util::future::join_all(checks).await {
            let Some(run_id) = run_id else { continue };
            let before = shared.run_ids.lock().unwrap_or_else(|e| e.into_inner()).insert(p, run_id.clone());
            if let Some(&epoch) = owned.get(&p)
                && before.is_some_and(|b| b != run_id)
            {
                self.went_back(p, epoch, "a new run_id of the partition's master (a failover or a restart)");
            }
        }
        true
    }

    /// Whether this handle is connected to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.inner.target.is_cluster()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_calls_are_routed_by_their_first_key_whichever_way_they_run() {
        let key = b"{hub:p3}:lease";
        let route = Some(Route::with_key(key, SlotAddr::Master));
        let call = |name: &str, script: &str| {
            let mut c = redis::cmd(name);
            c.arg(script).arg(1).arg(&key[..]).arg("x");
            c
        };
        assert_eq!(script_route(&call("EVALSHA", "0123abcd")), route);
        assert_eq!(script_route(&call("EVAL", "return 1")), route);
        assert_eq!(script_route(&call("FCALL", "durable_0123_commit")), route);
        assert_eq!(script_route(&call("fcall", "durable_0123_commit")), route);
        let mut get = redis::cmd("GET");
        get.arg(&key[..]);
        assert_eq!(script_route(&get), None);
    }

    #[test]
    fn cluster_urls_name_every_node_with_the_credentials() {
        assert_eq!(
            cluster_nodes("redis+cluster://u:p@h1:7000,h2:7001/").unwrap(),
            vec!["redis://u:p@h1:7000", "redis://u:p@h2:7001"]
        );
        assert_eq!(cluster_nodes("rediss+cluster://h:1").unwrap(), vec!["rediss://h:1"]);
        for bad in ["redis+cluster://h1", "redis+cluster://h:1/3", "redis://h:1", "redis+cluster://:1"] {
            let e = cluster_nodes(bad).unwrap_err().to_string();
            assert!(e.contains("redis+cluster://[user"), "{bad}: {e}");
        }
    }
}
