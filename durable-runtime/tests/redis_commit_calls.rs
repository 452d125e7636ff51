//! The steps of one partition that a worker commits together go to Redis in one call of the
//! commit script, which checks the lease once for all of them. Each step is still checked on
//! its own: one that Redis refuses (its instance was purged since it was fetched) writes
//! nothing and does not hold back the others, which apply exactly once. A call takes steps up
//! to a size: large steps go in calls of their own.

use durable_runtime::backend::{Backend, Redis};
use durable_runtime::engine::{self, Registry};
use durable_runtime::{Client, Error, Worker};
use durable_test_support::fixtures::{Counter, hello_all, say_hello};
use durable_test_support::redis_server::{RedisServer, function_calls_logged};
use durable_test_support::wait::PATIENCE;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_refused_in_a_call_holds_back_none_of_the_others() {
    let server = RedisServer::start();
    // One partition: the three steps go in one call.
    let backend = Redis::builder(server.url()).partitions(1).connect().await.unwrap();
    let mut registry = Registry::new();
    registry.register_entity::<Counter>();
    let client = Client::new(backend.clone());
    for (key, n) in [("a", 1), ("b", 10), ("c", 100)] {
        client.signal_entity::<Counter>(key).add(n).await.unwrap();
    }
    let mut items = Vec::new();
    while items.len() < 3 {
        items.extend(backend.fetch_orchestration_work_batch(10, Duration::from_secs(5)).await.unwrap());
    }
    items.sort_by(|x, y| x.instance_id.cmp(&y.instance_id));
    let ids: Vec<&str> = items.iter().map(|i| i.instance_id.as_str()).collect();
    assert_eq!(ids, ["@counter@a", "@counter@b", "@counter@c"]);
    let commits: Vec<_> =
        items.iter().map(|item| engine::process(&registry, item, None, backend.now(), &Default::default())).collect();
    // `b` is purged between its fetch and its commit.
    assert!(client.purge("@counter@b").await.unwrap());
    let results = backend.commit_batch(commits).await.unwrap();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(matches!(results[1], Err(Error::LockLost(_))), "{:?}", results[1]);
    assert!(results[2].is_ok(), "{:?}", results[2]);
    let value = async |key: &str| client.entity_state::<Counter>(key).await.unwrap().map(|c| c.value);
    assert_eq!(value("a").await, Some(1));
    assert_eq!(value("c").await, Some(100));
    // The refused step wrote nothing: `b` stays purged.
    assert_eq!(value("b").await, None);
    // The applied steps consumed their signals: nothing of `a` or `c` is left to step. What
    // is fetched now is `b` at most (its signal, older than the purge, is dropped unapplied).
    let again = backend.fetch_orchestration_work_batch(10, Duration::from_millis(200)).await.unwrap();
    assert!(again.iter().all(|i| i.instance_id == "@counter@b"), "{:?}", again);
    let commits =
        again.iter().map(|item| engine::process(&registry, item, None, backend.now(), &Default::default())).collect();
    for r in backend.commit_batch(commits).await.unwrap() {
        r.unwrap();
    }
    assert_eq!(value("b").await, None);
    assert_eq!((value("a").await, value("c").await), (Some(1), Some(100)));
}

/// The commit calls Redis ran since the slow log was reset (it logs the commands that take over
/// a millisecond here: the calls of these large steps, not the commands they run, nor the
/// small scripts of the lease).
async fn commit_calls(c: &mut redis::aio::MultiplexedConnection) -> usize {
    function_calls_logged(c, "_commit").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_steps_of_one_partition_go_in_calls_of_their_own_and_all_apply() {
    let server = RedisServer::start();
    let backend = Redis::builder(server.url()).partitions(1).connect().await.unwrap();
    let mut c = redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let mut registry = Registry::new();
    registry.register::<hello_all>();
    let client = Client::new(backend.clone());
    // Each first step schedules 4,100 activities: over 20,000 arguments, a call of its own.
    const WIDTH: usize = 4_100;
    let inputs: Vec<Vec<String>> = (0..3).map(|i| (0..WIDTH).map(|k| format!("{i}-{k}")).collect()).collect();
    let mut ids = Vec::new();
    for input in &inputs {
        ids.push(client.start(hello_all, input.clone()).await.unwrap());
    }
    let mut items = Vec::new();
    while items.len() < 3 {
        items.extend(backend.fetch_orchestration_work_batch(10, Duration::from_secs(5)).await.unwrap());
    }
    let commits: Vec<_> =
        items.iter().map(|item| engine::process(&registry, item, None, backend.now(), &Default::default())).collect();
    let _: () =
        redis::cmd("CONFIG").arg("SET").arg("slowlog-log-slower-than").arg(1000).query_async(&mut c).await.unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("slowlog-max-len").arg(100_000).query_async(&mut c).await.unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query_async(&mut c).await.unwrap();
    for r in backend.commit_batch(commits).await.unwrap() {
        r.unwrap();
    }
    assert_eq!(commit_calls(&mut c).await, 3, "one commit call per large step");
    // And they all applied: a worker runs the activities and finishes the three.
    let worker = Worker::builder(backend.clone()).orchestrator(hello_all).activity(say_hello).start().await.unwrap();
    for (id, input) in ids.iter().zip(&inputs) {
        let done = client.wait_for_completion(id, PATIENCE).await.unwrap();
        let out: Vec<String> = done.output().unwrap();
        assert_eq!(out, input.iter().map(|c| format!("Hello {c}!")).collect::<Vec<_>>());
    }
    worker.shutdown().await.unwrap();
}
