//! The owner of a partition keeps each instance's record as its last commit left it
//! (`RedisBuilder::record_cache`), so a step starts without reading the record again. What
//! must hold: the record is in fact not read again, and a kept record that someone else
//! changed since (an entity purged and created anew by its next signal) is never stepped
//! from: the commit refuses it and the step runs again from Redis; and instances that stopped
//! stepping give their room to the ones that step.

use durable_runtime::backend::{RecordCacheStats, Redis};
use durable_runtime::{Client, Worker};
use durable_test_support::fixtures::{Counter, hello, say_hello, wait_event};
use durable_test_support::redis_server::RedisServer;
use durable_test_support::wait::{PATIENCE, eventually, parked_at};

/// The record cache's figures after one `hello` over `cities` cities ran to completion, with
/// a record cache of `bytes`.
async fn one_run(bytes: usize, cities: usize) -> RecordCacheStats {
    let server = RedisServer::start();
    let backend = Redis::builder(server.url()).record_cache(bytes).connect().await.unwrap();
    let worker = Worker::builder(backend.clone()).orchestrator(hello).activity(say_hello).start().await.unwrap();
    let client = Client::new(backend.clone());
    let input: Vec<String> = (0..cities).map(|k| format!("city {k}")).collect();
    let id = client.start(hello, input.clone()).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    let out: Vec<String> = done.output().unwrap();
    assert_eq!(out, input.iter().map(|c| format!("Hello {c}!")).collect::<Vec<_>>());
    let stats = backend.record_cache_stats();
    worker.shutdown().await.unwrap();
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_starts_from_the_record_its_last_commit_left() {
    const CITIES: usize = 20;
    // One step per city and the first: only the first reads the record.
    let with = one_run(16 << 20, CITIES).await;
    assert_eq!(with.misses, 1, "{with:?}");
    assert_eq!(with.hits, CITIES as u64, "{with:?}");
    // It finished: nothing of it is kept.
    assert_eq!((with.kept, with.bytes), (0, 0), "{with:?}");
    let without = one_run(0, CITIES).await;
    assert_eq!((without.hits, without.misses), (0, CITIES as u64 + 1), "{without:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_entity_starts_from_nothing_though_its_record_was_kept() {
    let server = RedisServer::start();
    let backend = Redis::connect(&server.url()).await.unwrap();
    let worker = Worker::builder(backend.clone()).entity::<Counter>().start().await.unwrap();
    let client = Client::new(backend.clone());
    client.signal_entity::<Counter>("k").add(3).await.unwrap();
    client.signal_entity::<Counter>("k").add(4).await.unwrap();
    eventually("the counter at 7", async || {
        client.entity_state::<Counter>("k").await.unwrap().is_some_and(|c| c.value == 7)
    })
    .await;
    // The worker keeps the entity's record as its last step left it (value 7); the purge
    // deletes it in Redis, and the next signal creates the entity anew.
    assert!(client.purge("@counter@k").await.unwrap(), "the entity is purged");
    client.signal_entity::<Counter>("k").add(5).await.unwrap();
    eventually("the counter at 5 (or past it)", async || {
        client.entity_state::<Counter>("k").await.unwrap().is_some_and(|c| c.value >= 5)
    })
    .await;
    client.signal_entity::<Counter>("k").add(1).await.unwrap();
    eventually("the counter past 5", async || {
        client.entity_state::<Counter>("k").await.unwrap().is_some_and(|c| c.value > 5)
    })
    .await;
    let value = client.entity_state::<Counter>("k").await.unwrap().unwrap().value;
    assert_eq!(value, 6, "the purged entity's state came back (7 + 5 + 1 = 13 if stepped from the kept record)");
    // Its first step read the record, and so did the one after the purge, once the step from
    // the kept record was refused.
    let stats = backend.record_cache_stats();
    assert_eq!(stats.misses, 2, "{stats:?}");
    assert!(stats.hits >= 2, "{stats:?}");
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_instances_give_their_room_to_the_ones_that_step() {
    const BUDGET: usize = 8 << 10;
    let server = RedisServer::start();
    let backend = Redis::builder(server.url()).record_cache(BUDGET).connect().await.unwrap();
    let worker = Worker::builder(backend.clone())
        .orchestrator(hello)
        .orchestrator(wait_event)
        .activity(say_hello)
        .start()
        .await
        .unwrap();
    let client = Client::new(backend.clone());
    // More parked instances than the cache holds: their records filled it.
    let mut parked = Vec::new();
    for _ in 0..40 {
        parked.push(client.start(wait_event, 0).await.unwrap());
    }
    for id in &parked {
        parked_at(&client, id.as_str(), "wait_for_event").await;
    }
    let full = backend.record_cache_stats();
    assert!(full.bytes <= BUDGET && full.kept > 0, "{full:?}");
    // A new instance's records take the room of the records kept longest: its steps after
    // the first start from the kept record.
    let out = one_hello(&client, 20).await;
    assert_eq!(out.len(), 20);
    let after = backend.record_cache_stats();
    assert!(after.hits >= full.hits + 20, "{full:?} -> {after:?}: the new instance's steps read their record");
    assert!(after.bytes <= BUDGET, "{after:?}");
    worker.shutdown().await.unwrap();
}

async fn one_hello(client: &Client, cities: usize) -> Vec<String> {
    let input: Vec<String> = (0..cities).map(|k| format!("city {k}")).collect();
    let id = client.start(hello, input).await.unwrap();
    client.wait_for_completion(&id, PATIENCE).await.unwrap().output().unwrap()
}
