//! Time is Redis's: the scripts that decide by time (which timers are due, which workers are
//! gone) read Redis's clock, and a handle's own clock follows Redis's (read at every heartbeat,
//! advanced by the monotonic clock in between; the wall clock is never read). A worker whose
//! clock is wrong fires no timer early and evicts no live worker.

use durable_runtime::backend::Redis;
use durable_runtime::{Client, EventKind, RuntimeStatus, Worker};
use durable_test_support::fixtures::wait_event;
use durable_test_support::leftovers::{Allow, check_nothing_left, purge_everything};
use durable_test_support::redis_server::RedisServer;
use durable_test_support::wait::eventually_some;
use std::time::{Duration, Instant};

/// An hour: how far ahead the wrong clock runs.
const AHEAD: Duration = Duration::from_secs(3600);

async fn redis_ms(url: &str) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut c).await.unwrap();
    secs * 1000 + micros / 1000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_clock_runs_ahead_fires_no_timer_early() {
    let server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", server.port);
    let builder = || Redis::builder(url.clone()).prefix("clock").partitions(1);
    let client = Client::new(builder().connect().await.unwrap());

    // A worker with a right clock runs the instance to its 4-second timer, then leaves.
    let right = builder().connect().await.unwrap();
    let worker = Worker::builder(right).orchestrator(wait_event).start().await.unwrap();
    let id = client.start(wait_event, 4).await.unwrap();
    let fire_at = eventually_some("the timer to be created", async || {
        client.history(&id).await.unwrap().into_iter().find_map(|e| match e.kind {
            EventKind::TimerCreated { fire_at, .. } => Some(fire_at),
            _ => None,
        })
    })
    .await;
    worker.shutdown().await.unwrap();

    // A worker whose clock is an hour ahead takes the partition over: by its clock the timer
    // is long due, by Redis's it is not.
    let wrong = builder().clock_ahead_for_tests(AHEAD).connect().await.unwrap();
    let worker = Worker::builder(wrong).orchestrator(wait_event).start().await.unwrap();
    eventually_some("the timer to fire", async || {
        let fired = client.history(&id).await.unwrap().iter().any(|e| matches!(e.kind, EventKind::TimerFired { .. }));
        fired.then_some(())
    })
    .await;
    let seen_at = redis_ms(&url).await;
    assert!(seen_at >= fire_at, "the timer due at {fire_at} fired by {seen_at}, by Redis's clock");
    client.raise_event(&id, "go", "now").await.unwrap();
    let done = client.wait_for_completion(&id, Duration::from_secs(20)).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{done:?}");
    purge_everything(&client).await;
    worker.shutdown().await.unwrap();
    check_nothing_left(&url, "clock", Allow::default(), Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_clock_runs_ahead_evicts_no_live_worker() {
    let server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", server.port);
    let lease = Duration::from_secs(2);
    let builder = || Redis::builder(url.clone()).prefix("members").partitions(4).lease_duration(lease);
    let right = builder().connect().await.unwrap();
    let wrong = builder().clock_ahead_for_tests(AHEAD).connect().await.unwrap();
    let ids = [right.worker_id().to_string(), wrong.worker_id().to_string()];
    let w1 = Worker::builder(right.clone()).orchestrator(wait_event).start().await.unwrap();
    let w2 = Worker::builder(wrong.clone()).orchestrator(wait_event).start().await.unwrap();

    // Both stay in the live-worker set, each marked live for one lease by Redis's clock, over
    // several heartbeats (a third of the lease each), and both get a share of the partitions.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let watch = Instant::now();
    // A worker joins the set with its first heartbeat, which may come after `start` returns:
    // once in, it must stay.
    let mut joined = std::collections::BTreeSet::new();
    eventually_some("both workers to share the partitions, watched over two leases", async || {
        let members: Vec<(String, u64)> = redis::cmd("ZRANGE")
            .arg("{members}:workers")
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut c)
            .await
            .unwrap();
        let now = redis_ms(&url).await;
        for (w, until) in &members {
            assert!(
                *until <= now + lease.as_millis() as u64 + 1000,
                "{w} is marked live until {until}, more than a lease after Redis's time {now}"
            );
        }
        let live: std::collections::BTreeSet<String> = members.iter().map(|(w, _)| w.clone()).collect();
        assert!(live.iter().all(|w| ids.contains(w)), "an unknown worker in the set: {live:?}");
        assert!(joined.is_subset(&live), "a live worker was evicted: {joined:?} joined, {live:?} in the set");
        joined.extend(live);
        let shared = !right.owned_partitions().is_empty() && !wrong.owned_partitions().is_empty();
        (shared && joined.len() == 2 && watch.elapsed() >= 2 * lease).then_some(())
    })
    .await;
    w1.shutdown().await.unwrap();
    w2.shutdown().await.unwrap();
}
