//! How the Redis backend stores an instance: one string for its record (status, snapshot and
//! bookkeeping) and one for its history, small enough that a parked instance costs well under
//! 1 KB; and instances written by the release before (a hash and a list of JSON events) are
//! read, stepped, listed and purged as they are, converted on first touch.

use durable_runtime::backend::Redis;
use durable_runtime::state::Snapshot;
use durable_runtime::{Client, HistoryEvent, InstanceQuery, InstanceStatus, RuntimeStatus, Worker, WorkerHandle};
use durable_test_support::fixtures::{Counter, sum_events, wait_event};
use durable_test_support::history::check_history;
use durable_test_support::leftovers::{Allow, check_nothing_left, purge_everything};
use durable_test_support::redis_server::RedisServer;
use durable_test_support::wait::{PATIENCE, eventually, parked_at};
use redis::aio::MultiplexedConnection;
use std::time::Duration;

const PARTITIONS: u32 = 2;

async fn worker(backend: &Redis) -> WorkerHandle {
    Worker::builder(backend.clone())
        .orchestrator(wait_event)
        .orchestrator(sum_events)
        .entity::<Counter>()
        .start()
        .await
        .unwrap()
}

async fn connect(server: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// Start `n` instances of `wait_event` and wait until each is parked at `wait_for_event`.
async fn park(client: &Client, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("lay-{i}");
        client.start_with_id(wait_event, &id, 0).await.unwrap();
        ids.push(id);
    }
    for id in &ids {
        parked_at(client, id, "wait_for_event").await;
    }
    ids
}

fn keys(backend: &Redis, prefix: &str, id: &str) -> (String, String) {
    let t = format!("{{{prefix}:p{}}}", backend.partition_of(id));
    (format!("{t}:i:{id}"), format!("{t}:h:{id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_instance_is_one_small_string() {
    let server = RedisServer::start();
    let backend = Redis::builder(server.url()).prefix("lay").partitions(PARTITIONS).connect().await.unwrap();
    let worker = worker(&backend).await;
    let client = Client::new(backend.clone());
    let ids = park(&client, 10).await;
    let mut c = connect(&server).await;
    for id in &ids {
        let (ik, hk) = keys(&backend, "lay", id);
        let ty: String = redis::cmd("TYPE").arg(&ik).query_async(&mut c).await.unwrap();
        assert_eq!(ty, "string", "{ik}");
        let exists: bool = redis::cmd("EXISTS").arg(&hk).query_async(&mut c).await.unwrap();
        assert!(!exists, "{hk}: a short history is kept in the record");
        let record: Vec<u8> = redis::cmd("GET").arg(&ik).query_async(&mut c).await.unwrap();
        // What a parked instance of `wait_event` holds: its status (name, execution id, input,
        // custom status, times, trace context), its 3 events, its suspension point and the
        // runtime's bookkeeping. The layout of the release before took 306 + 484 + 359 bytes
        // of payload for a similar instance, in a hash and a list.
        assert!(record.len() < 600, "{id}: record of {} bytes: {:?}", record.len(), String::from_utf8_lossy(&record));
        let used: i64 = redis::cmd("MEMORY").arg("USAGE").arg(&ik).query_async(&mut c).await.unwrap();
        assert!(used < 760, "{id}: {used} bytes in Redis");
    }
    for id in &ids {
        client.terminate(id, "done").await.unwrap();
    }
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_history_moves_to_a_key_of_its_own_and_is_kept_whole() {
    let server = RedisServer::start();
    let backend = Redis::builder(server.url()).prefix("lay").partitions(PARTITIONS).connect().await.unwrap();
    let worker = worker(&backend).await;
    let client = Client::new(backend.clone());
    let mut c = connect(&server).await;
    let id = "long";
    let (ik, hk) = keys(&backend, "lay", id);
    client.start_with_id(sum_events, id, 300).await.unwrap();
    for k in 1..=300i64 {
        client.raise_event(id, "e", k).await.unwrap();
    }
    let done = client.wait_for_completion(id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<i64>().unwrap(), 300 * 301 / 2);
    let history = client.history(id).await.unwrap();
    check_history(id, &history);
    let raised = history.iter().filter(|e| matches!(e.kind, durable_runtime::EventKind::EventRaised { .. })).count();
    assert_eq!(raised, 300);
    let stored: usize = redis::cmd("STRLEN").arg(&hk).query_async(&mut c).await.unwrap();
    assert!(stored > 2048, "a history of {} events is {stored} bytes in {hk}", history.len());
    let record: usize = redis::cmd("STRLEN").arg(&ik).query_async(&mut c).await.unwrap();
    assert!(record < 1024, "the record keeps no history once it moved out: {record} bytes");

    // Started again under the same id: a new, short history, kept in the record.
    client.start_with_id(sum_events, id, 1).await.unwrap();
    client.raise_event(id, "e", 7).await.unwrap();
    let done = client.wait_for_completion(id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<i64>().unwrap(), 7);
    let history = client.history(id).await.unwrap();
    check_history(id, &history);
    assert!(history.len() < 10, "{history:?}");
    let exists: bool = redis::cmd("EXISTS").arg(&hk).query_async(&mut c).await.unwrap();
    assert!(!exists, "{hk} is left from the execution before");
    worker.shutdown().await.unwrap();
}

/// Rewrite instance `id` the way the release before this one stored it: a hash (`st`: the
/// status as JSON with its long field names, `rs`, `g`, `m0`, `snap`: the snapshot with field
/// names) and a list of JSON events.
async fn downgrade(c: &mut MultiplexedConnection, backend: &Redis, client: &Client, id: &str) {
    let (ik, hk) = keys(backend, "lay", id);
    let status: InstanceStatus = client.status(id).await.unwrap().unwrap();
    let history = client.history(id).await.unwrap();
    let record: Vec<u8> = redis::cmd("GET").arg(&ik).query_async(c).await.unwrap();
    let nl = record.iter().position(|&b| b == b'\n').unwrap();
    let header = String::from_utf8(record[..nl].to_vec()).unwrap();
    let f: Vec<&str> = header.split(' ').collect();
    let (g, m0, s): (&str, &str, usize) = (f[0], f[1], f[4].parse().unwrap());
    let h: usize = if f[5] == "o" { 0 } else { f[5].parse().unwrap() };
    let snapshot = &record[nl + 1 + s + h..];
    let mut pipe = redis::pipe();
    pipe.cmd("DEL").arg(&ik).arg(&hk).ignore();
    pipe.cmd("HSET")
        .arg(&ik)
        .arg("st")
        .arg(serde_json::to_string(&status).unwrap())
        .arg("rs")
        .arg(status.runtime_status.to_string())
        .arg("g")
        .arg(g)
        .arg("m0")
        .arg(m0)
        .ignore();
    if !snapshot.is_empty() {
        let named = rmp_serde::to_vec_named(&Snapshot::from_bytes(snapshot).unwrap()).unwrap();
        pipe.cmd("HSET").arg(&ik).arg("snap").arg(named).ignore();
    }
    for e in &history {
        pipe.cmd("RPUSH").arg(&hk).arg(serde_json::to_string(e).unwrap()).ignore();
    }
    let _: () = pipe.query_async(c).await.unwrap();
    let ty: String = redis::cmd("TYPE").arg(&ik).query_async(c).await.unwrap();
    assert_eq!(ty, "hash");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_stored_by_the_release_before_go_on() {
    let server = RedisServer::start();
    let backend = Redis::builder(server.url()).prefix("lay").partitions(PARTITIONS).connect().await.unwrap();
    let client = Client::new(backend.clone());
    let first = worker(&backend).await;
    let ids = park(&client, 6).await;
    client.signal_entity::<Counter>("c1").add(5).await.unwrap();
    eventually("the counter has 5", async || {
        client.entity_state::<Counter>("c1").await.unwrap().is_some_and(|c| c.value == 5)
    })
    .await;
    first.shutdown().await.unwrap();

    let mut before: Vec<(InstanceStatus, Vec<HistoryEvent>)> = Vec::new();
    for id in &ids {
        before.push((client.status(id).await.unwrap().unwrap(), client.history(id).await.unwrap()));
    }
    let mut c = connect(&server).await;
    for id in ids.iter().chain([&"@counter@c1".to_string()]) {
        downgrade(&mut c, &backend, &client, id).await;
    }

    // Read as they are, each through one path first: a status, a history, a listing filtered by
    // name (the long status JSON starts with `{"name":`), an entity's state.
    assert_eq!(client.status(&ids[0]).await.unwrap().as_ref(), Some(&before[0].0));
    assert_eq!(client.history(&ids[1]).await.unwrap(), before[1].1);
    let page = client.list(InstanceQuery::new().with_name("wait_event").with_limit(100)).await.unwrap();
    let mut listed: Vec<_> = page.instances.iter().map(|s| s.instance_id.clone()).collect();
    listed.sort();
    assert_eq!(listed, ids);
    for (id, (status, _)) in ids.iter().zip(&before) {
        assert_eq!(page.instances.iter().find(|s| &s.instance_id == id), Some(status));
    }
    assert_eq!(client.entity_state::<Counter>("c1").await.unwrap().map(|c| c.value), Some(5));

    // A worker of this release steps them on from where they were.
    let second = worker(&backend).await;
    for (k, id) in ids.iter().enumerate() {
        client.raise_event(id, "go", format!("go {k}")).await.unwrap();
    }
    client.signal_entity::<Counter>("c1").add(2).await.unwrap();
    for (k, id) in ids.iter().enumerate() {
        let done = client.wait_for_completion(id, PATIENCE).await.unwrap();
        assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{done:?}");
        assert_eq!(done.output::<String>().unwrap(), format!("go {k}"));
        let history = client.history(id).await.unwrap();
        assert_eq!(history[..before[k].1.len()], before[k].1[..], "{id}: the history it had is kept");
        check_history(id, &history);
    }
    eventually("the counter has 7", async || {
        client.entity_state::<Counter>("c1").await.unwrap().is_some_and(|c| c.value == 7)
    })
    .await;
    for id in ids.iter().chain([&"@counter@c1".to_string()]) {
        let (ik, hk) = keys(&backend, "lay", id);
        for k in [ik, hk] {
            let ty: String = redis::cmd("TYPE").arg(&k).query_async(&mut c).await.unwrap();
            assert!(ty == "string" || ty == "none", "{k} is a {ty}");
        }
    }

    // Purged like any other, one of them while still in the old layout.
    second.shutdown().await.unwrap();
    downgrade(&mut c, &backend, &client, &ids[2]).await;
    assert!(client.purge(&ids[2]).await.unwrap());
    let (instances, entities) = purge_everything(&client).await;
    assert_eq!((instances, entities), (5, 1));
    check_nothing_left(&server.url(), "lay", Allow::default(), Duration::from_secs(5)).await;
}
