//! Fault tests of the Redis backend with real processes and a real `redis-server` (issue 11,
//! items 3 and 4):
//!
//! - a dead worker's activities are always reclaimed, however many pending entries of live
//!   workers come before them, and a worker shut down gracefully hands its prefetched items
//!   back at once (and its consumers are deleted);
//! - no commit is ever applied twice, even when Redis's script cache is flushed in the middle
//!   of a pipelined batch of commits.
//!
//! Worker processes are this test binary run again with `--ignored --exact worker_process` and
//! their settings in `DURABLE_FAULT_*` variables (see [`worker_process`]).

use durable_runtime::backend::Redis;
use durable_runtime::{Client, RuntimeStatus, Worker};
use durable_test_support::fixtures::{self, call_slow, hello, say_hello, slow};
use durable_test_support::history::{check_all_completed, check_history};
use durable_test_support::leftovers::{Allow, check_nothing_left, purge_everything};
use durable_test_support::process::ChildProcess;
use durable_test_support::redis_server::RedisServer;
use redis::Value;
use redis::aio::MultiplexedConnection;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const LEASE: Duration = Duration::from_secs(1);

async fn connect(url: &str, prefix: &str, partitions: u32, visibility: Duration) -> Redis {
    Redis::builder(url)
        .prefix(prefix)
        .partitions(partitions)
        .lease_duration(LEASE)
        .activity_visibility_timeout(visibility)
        .connect()
        .await
        .unwrap()
}

fn worker_builder(backend: Redis) -> durable_runtime::WorkerBuilder {
    Worker::builder(backend)
        .orchestrator(hello)
        .orchestrator(fixtures::parent)
        .orchestrator(call_slow)
        .activity(say_hello)
        .activity(slow)
}

/// Not a test by itself: the body of a worker process the tests below spawn. It runs a worker
/// (at most `DURABLE_FAULT_ACTIVITIES` activities at once), prints `READY`, and when a line
/// arrives on stdin shuts the worker down gracefully, prints `STOPPED` and exits.
#[test]
#[ignore = "run by the fault tests as a worker process"]
fn worker_process() {
    let Ok(url) = std::env::var("DURABLE_FAULT_URL") else { return };
    let var = |name: &str| std::env::var(name).unwrap();
    let prefix = var("DURABLE_FAULT_PREFIX");
    let partitions: u32 = var("DURABLE_FAULT_PARTITIONS").parse().unwrap();
    let visibility = Duration::from_millis(var("DURABLE_FAULT_VISIBILITY_MS").parse().unwrap());
    let activities: usize = var("DURABLE_FAULT_ACTIVITIES").parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let backend = connect(&url, &prefix, partitions, visibility).await;
        let w = worker_builder(backend).max_concurrent_activities(activities).start().await.unwrap();
        println!("READY");
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            let _ = tx.send(());
        });
        let _ = rx.await;
        w.shutdown().await.unwrap();
        println!("STOPPED");
    });
}

/// A worker process (see `worker_process`), once it is ready.
fn spawn_worker(url: &str, prefix: &str, partitions: u32, visibility: Duration, activities: usize) -> ChildProcess {
    let p = ChildProcess::spawn(
        "worker_process",
        &[
            ("DURABLE_FAULT_URL", url.to_string()),
            ("DURABLE_FAULT_PREFIX", prefix.to_string()),
            ("DURABLE_FAULT_PARTITIONS", partitions.to_string()),
            ("DURABLE_FAULT_VISIBILITY_MS", visibility.as_millis().to_string()),
            ("DURABLE_FAULT_ACTIVITIES", activities.to_string()),
        ],
    );
    p.expect_line("READY", Duration::from_secs(30));
    p
}

/// Ask a worker process to shut down gracefully, and wait until it has.
fn shut_down(mut p: ChildProcess) {
    p.send_line("shutdown");
    p.expect_line("STOPPED", Duration::from_secs(60));
    p.wait();
}

async fn redis_conn(url: &str) -> MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// The activity consumers of partition 0 and how many pending entries each has.
async fn consumers(c: &mut MultiplexedConnection, prefix: &str) -> BTreeMap<String, i64> {
    consumers_of(c, prefix, 0).await
}

/// The activity consumers of partition `p` and how many pending entries each has.
async fn consumers_of(c: &mut MultiplexedConnection, prefix: &str, p: u32) -> BTreeMap<String, i64> {
    let reply: Value = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(format!("{{{prefix}:p{p}}}:act"))
        .arg("w")
        .query_async(c)
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    let Value::Array(list) = reply else { return out };
    for consumer in list {
        let fields: Vec<(String, Value)> = match consumer {
            Value::Array(flat) => flat
                .chunks(2)
                .map(|kv| (redis::from_redis_value::<String>(kv[0].clone()).unwrap(), kv[1].clone()))
                .collect(),
            Value::Map(m) => m.into_iter().map(|(k, v)| (redis::from_redis_value::<String>(k).unwrap(), v)).collect(),
            _ => continue,
        };
        let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap();
        let name: String = redis::from_redis_value(get("name")).unwrap();
        let pending: i64 = redis::from_redis_value(get("pending")).unwrap();
        out.insert(name, pending);
    }
    out
}

/// Pending activity entries of the worker process `pid` (its consumer names start with it).
async fn pending_of(c: &mut MultiplexedConnection, prefix: &str, pid: u32) -> i64 {
    consumers(c, prefix).await.iter().filter(|(n, _)| n.starts_with(&format!("{pid}-"))).map(|(_, p)| p).sum()
}

/// Whether the worker process `pid` still has a consumer.
async fn has_consumer(c: &mut MultiplexedConnection, prefix: &str, pid: u32) -> bool {
    consumers(c, prefix).await.keys().any(|n| n.starts_with(&format!("{pid}-")))
}

/// Waits until `f` holds, polling; panics after `patience` saying what it waited for.
async fn poll_until(what: &str, patience: Duration, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out after {patience:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How long one of the items worker B holds runs.
const SHORT_MS: u64 = 3_000;
/// How many items worker B holds: 2 running, 6 prefetched (it reads 8 at a time).
const B_ITEMS: usize = 8;

/// Worker A runs 100 activities that outlast the test (their pending entries come first in the
/// consumer group), then worker B reads the next 8 items in one go: 2 running, 6 prefetched.
/// Returns the processes, the test's client, the ids of B's instances and a connection.
async fn a_holds_100_then_b_prefetches(
    url: &str,
    prefix: &str,
    visibility: Duration,
) -> (ChildProcess, ChildProcess, Client, Vec<String>, MultiplexedConnection) {
    let mut c = redis_conn(url).await;
    let a = spawn_worker(url, prefix, 1, visibility, 100);
    let client = Client::new(connect(url, prefix, 1, visibility).await);
    for i in 0..100 {
        client.start_with_id(call_slow, &format!("long-{i}"), 3_600_000).await.unwrap();
    }
    poll_until("worker A runs its 100 activities", Duration::from_secs(30), async || {
        pending_of(&mut c, prefix, a.pid()).await == 100
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..B_ITEMS {
        ids.push(client.start_with_id(call_slow, &format!("short-{i}"), SHORT_MS).await.unwrap().into_string());
    }
    // A steps the instances but has no room for their activities: they wait in the stream
    // until B starts and reads them all at once.
    poll_until("8 more activity items queued", Duration::from_secs(30), async || {
        let len: usize = redis::cmd("XLEN").arg(format!("{{{prefix}:p0}}:act")).query_async(&mut c).await.unwrap();
        len == 100 + B_ITEMS
    })
    .await;
    let b = spawn_worker(url, prefix, 1, visibility, 2);
    poll_until("worker B holds 8 items", Duration::from_secs(30), async || {
        pending_of(&mut c, prefix, b.pid()).await == B_ITEMS as i64
    })
    .await;
    (a, b, client, ids, c)
}

async fn wait_all_completed(client: &Client, ids: &[String], deadline: Instant, what: &str) {
    for id in ids {
        let left = deadline.saturating_duration_since(Instant::now());
        let done = match client.wait_for_completion(id, left).await {
            Ok(done) => done,
            Err(e) => panic!("{what}: {id} did not finish in time: {e}"),
        };
        assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{id}: {done:?}");
        assert_eq!(done.output::<u64>().unwrap(), SHORT_MS);
        check_history(id, &client.history(id).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_activities_are_always_reclaimed() {
    let server = RedisServer::start();
    let url = server.url();
    let prefix = "reclaim";
    let visibility = Duration::from_secs(2);
    let (a, b, client, ids, mut c) = a_holds_100_then_b_prefetches(&url, prefix, visibility).await;
    let b_pid = b.pid();
    b.kill9();
    let killed = Instant::now();
    // A third worker with room to spare claims B's items once they are idle past the
    // visibility timeout, even though A's 100 pending entries come first.
    let backend = connect(&url, prefix, 1, visibility).await;
    let w = worker_builder(backend).start().await.unwrap();
    let bound = visibility + Duration::from_millis(SHORT_MS) + Duration::from_secs(10);
    wait_all_completed(&client, &ids, killed + bound, "a dead worker's item").await;
    println!("B's {B_ITEMS} items finished {:?} after B was killed (bound {bound:?})", killed.elapsed());
    // B's consumer has no pending entry left and is deleted once it has been idle a while.
    poll_until("the dead worker's consumer is deleted", visibility * 2 + Duration::from_secs(10), async || {
        !has_consumer(&mut c, prefix, b_pid).await
    })
    .await;
    println!("B's consumer deleted {:?} after B was killed", killed.elapsed());
    w.shutdown().await.unwrap();
    a.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_workers_prefetched_activities_are_handed_back() {
    let server = RedisServer::start();
    let url = server.url();
    let prefix = "handback";
    // Long: the items must come back by the hand-back, not by the visibility timeout.
    let visibility = Duration::from_secs(60);
    let (a, b, client, ids, mut c) = a_holds_100_then_b_prefetches(&url, prefix, visibility).await;
    let b_pid = b.pid();
    let backend = connect(&url, prefix, 1, visibility).await;
    let w = worker_builder(backend).start().await.unwrap();
    let stopping = Instant::now();
    // B finishes its 2 running items and hands the 6 prefetched ones back as it stops.
    shut_down(b);
    println!("B stopped in {:?}", stopping.elapsed());
    let bound = Duration::from_millis(2 * SHORT_MS) + Duration::from_secs(10);
    assert!(bound < visibility);
    wait_all_completed(&client, &ids, stopping + bound, "a stopped worker's item").await;
    println!("B's {B_ITEMS} items finished {:?} after B was told to stop (bound {bound:?})", stopping.elapsed());
    assert!(!has_consumer(&mut c, prefix, b_pid).await, "a stopped worker deletes its consumers");
    w.shutdown().await.unwrap();
    a.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_commit_is_applied_twice_when_scripts_and_functions_are_flushed() {
    let server = RedisServer::start();
    let url = server.url();
    let prefix = "flush";
    let visibility = Duration::from_secs(5);
    let client = Client::new(connect(&url, prefix, PARTS, visibility).await);
    // Flush the script cache over and over while the workers commit (not while the test starts
    // instances: only the workers' commits are under test).
    let stop = Arc::new(AtomicBool::new(false));
    let flushing = Arc::new(AtomicBool::new(false));
    let flushes = Arc::new(AtomicU64::new(0));
    let flusher = {
        let (stop, flushing, flushes) = (stop.clone(), flushing.clone(), flushes.clone());
        let mut c = redis_conn(&url).await;
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                if flushing.load(Ordering::SeqCst) {
                    // Both ways Redis can lose the code: the function library (calls run
                    // again as scripts) and the script cache (calls run again by their text).
                    let flushed: Result<(), _> = redis::cmd("FUNCTION").arg("FLUSH").query_async(&mut c).await;
                    let flushed = flushed.and(redis::cmd("SCRIPT").arg("FLUSH").query_async::<()>(&mut c).await);
                    if flushed.is_err() {
                        break; // the test failed and its server is gone
                    }
                    flushes.fetch_add(1, Ordering::SeqCst);
                }
                // Pace the fault: a flush every few milliseconds.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let started = Instant::now();
    let workers: Vec<ChildProcess> = (0..2).map(|_| spawn_worker(&url, prefix, PARTS, visibility, 100)).collect();
    // Waves of instances ready at once: the workers step and commit them in batches. Long
    // inputs make each commit a few KB, so that Redis reads a batch in several parts and a
    // flush can come between two commits of one batch.
    let filler = "x".repeat(2000);
    for wave in 0..WAVES {
        flushing.store(false, Ordering::SeqCst);
        let mut expected = Vec::new();
        for i in 0..PER_WAVE {
            let cities: Vec<String> = (0..3).map(|k| format!("w{wave}-{i}-{k}-{filler}")).collect();
            let parent = i % 5 == 0;
            let id = if parent {
                client.start(fixtures::parent, cities.clone()).await.unwrap()
            } else {
                client.start(hello, cities.clone()).await.unwrap()
            };
            expected.push((id.into_string(), parent, cities));
        }
        flushing.store(true, Ordering::SeqCst);
        check_all_completed(&client, &expected, Duration::from_secs(120)).await;
    }
    stop.store(true, Ordering::SeqCst);
    flusher.await.unwrap();
    println!(
        "{} orchestrations under {} script flushes in {:?}, no duplicate",
        WAVES * PER_WAVE,
        flushes.load(Ordering::SeqCst),
        started.elapsed()
    );
    // The fault did happen: Redis refused scripts it no longer had.
    let mut c = redis_conn(&url).await;
    let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut c).await.unwrap();
    let refused = |command: &str| -> u64 {
        let line = stats.lines().find(|l| l.starts_with(&format!("cmdstat_{command}:"))).unwrap_or_default();
        println!("{line}");
        ["rejected_calls=", "failed_calls="]
            .iter()
            .filter_map(|k| line.split([',', ':']).find_map(|f| f.strip_prefix(k)))
            .map(|n| n.parse::<u64>().unwrap())
            .sum()
    };
    let (evalsha, fcall) = (refused("evalsha"), refused("fcall"));
    assert!(evalsha + fcall > 0, "no script or function call was refused: the test did not test anything");
    // Workers that stop leave no consumer and no pending activity behind.
    purge_everything(&client).await;
    for w in workers {
        shut_down(w);
    }
    check_nothing_left(&url, prefix, Allow::default(), Duration::from_secs(10)).await;
    for p in 0..PARTS {
        let left = consumers_of(&mut c, prefix, p).await;
        assert!(left.is_empty(), "partition {p}: consumers left behind after a graceful shutdown: {left:?}");
        let pending: Value =
            redis::cmd("XPENDING").arg(format!("{{{prefix}:p{p}}}:act")).arg("w").query_async(&mut c).await.unwrap();
        let Value::Array(summary) = pending else { panic!("XPENDING: {pending:?}") };
        assert_eq!(summary.first(), Some(&Value::Int(0)), "partition {p}: activities left pending");
    }
}

/// Partitions of the commit test.
const PARTS: u32 = 4;
/// Waves of instances in the commit test, and instances per wave.
const WAVES: usize = 3;
const PER_WAVE: usize = 200;
