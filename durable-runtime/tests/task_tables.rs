//! A wide fan-out's task table (open tasks, results not yet awaited) is kept entry by entry
//! apart from the rest of its snapshot (`WorkerBuilder::task_table_apart_from`), on both
//! backends: each step writes only the entries it changed. What must hold: the instance
//! gives the same results as with its table in the snapshot, a worker that did not step it
//! before reads the table back (its decoded copy is per worker), retries and timers in the
//! table work, the tools see the whole snapshot, and nothing of the table is left once the
//! instance ends or is purged.

use durable_runtime::backend::{Backend, Memory, Redis};
use durable_runtime::state::Snapshot;
use durable_runtime::{Client, EventKind, Worker, WorkerHandle};
use durable_test_support::fixtures::{double, flaky, wide, wide_flaky};
use durable_test_support::history::check_history;
use durable_test_support::leftovers::{Allow, check_nothing_left, purge_everything};
use durable_test_support::redis_server::RedisServer;
use durable_test_support::wait::{PATIENCE, eventually_some, parked_at};
use redis::aio::MultiplexedConnection;

const N: u64 = 600;

/// The snapshot as the tools read it, once it holds `open` open tasks.
async fn snapshot_with_open<B: Backend>(backend: &B, id: &str, open: usize) -> Snapshot {
    eventually_some(&format!("{id} suspended with {open} open tasks"), async || {
        let bytes = backend.snapshot(id).await.unwrap()?;
        let s = Snapshot::from_bytes(&bytes).unwrap();
        (s.runtime.open.len() == open).then_some(s)
    })
    .await
}

/// `wide_flaky`'s history: each of its `n` activities failed once, was retried once and
/// completed once; its timer and each backoff timer fired once.
async fn check_each_completed_once(client: &Client, id: &str, n: usize) {
    let history = client.history(id).await.unwrap();
    let count = |f: &dyn Fn(&EventKind) -> Option<u64>| {
        let mut ids: Vec<u64> = history.iter().filter_map(|e| f(&e.kind)).collect();
        ids.sort_unstable();
        let all = ids.len();
        ids.dedup();
        assert_eq!(all, ids.len(), "{id}: an event twice: {history:?}");
        ids.len()
    };
    assert_eq!(count(&|k| matches!(k, EventKind::TaskCompleted { .. }).then(|| task_id(k))), n);
    assert_eq!(count(&|k| matches!(k, EventKind::TaskFailed { .. }).then(|| task_id(k))), n);
    assert_eq!(count(&|k| matches!(k, EventKind::TaskRetryScheduled { .. }).then(|| task_id(k))), n);
    // Each retry's backoff timer, and the timer.
    assert_eq!(count(&|k| matches!(k, EventKind::TimerFired { .. }).then(|| task_id(k))), n + 1);
}

fn task_id(k: &EventKind) -> u64 {
    match k {
        EventKind::TaskCompleted { id, .. }
        | EventKind::TaskFailed { id, .. }
        | EventKind::TaskRetryScheduled { id, .. }
        | EventKind::TimerFired { id } => *id,
        _ => unreachable!(),
    }
}

/// A worker stepping `wide` only: its activities wait until a worker that runs them starts.
async fn orchestrations_only<B: Backend + Clone>(backend: &B) -> WorkerHandle {
    Worker::builder(backend.clone()).orchestrator(wide).start().await.unwrap()
}

async fn everything<B: Backend + Clone>(backend: &B, apart_from: usize) -> WorkerHandle {
    Worker::builder(backend.clone())
        .orchestrator(wide)
        .orchestrator(wide_flaky)
        .activity(double)
        .activity(flaky)
        .task_table_apart_from(apart_from)
        .start()
        .await
        .unwrap()
}

/// `wide(N)` parked with its N activities open, then finished by another worker (which reads
/// the table back): the result is every activity's.
async fn wide_fan_out_handed_over<B: Backend + Clone>(backend: &B, id: &str) {
    let client = Client::new(backend.clone());
    let first = orchestrations_only(backend).await;
    client.start_with_id(wide, id, N).await.unwrap();
    let s = snapshot_with_open(backend, id, N as usize).await;
    assert!(s.runtime.results.is_empty());
    first.shutdown().await.unwrap();
    let second = everything(backend, durable_runtime::engine::DEFAULT_TASK_TABLE_APART_FROM).await;
    parked_at(&client, id, "wait_for_event").await;
    client.raise_event(id, "more", 5u64).await.unwrap();
    let done = client.wait_for_completion(id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<u64>().unwrap(), N * (N + 1) + 10);
    check_history(id, &client.history(id).await.unwrap());
    second.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wide_fan_out_handed_to_another_worker_completes_on_memory() {
    let backend = Memory::new();
    wide_fan_out_handed_over(&backend, "wide-m").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wide_fan_out_gives_the_same_with_its_table_apart_or_in_the_snapshot() {
    for apart_from in [0, 8, 256] {
        let backend = Memory::new();
        let worker = everything(&backend, apart_from).await;
        let client = Client::new(backend.clone());
        let id = format!("same-{apart_from}");
        client.start_with_id(wide_flaky, &id, (id.clone(), 300u64)).await.unwrap();
        let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
        assert_eq!(done.output::<u64>().unwrap(), 300, "table apart from {apart_from} entries");
        check_each_completed_once(&client, &id, 300).await;
        worker.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_taking_turns_read_each_others_tables() {
    // Two workers on one Memory backend step the same instance in turn: each step of one after
    // a step of the other finds no decoded copy of its own and reads the table back.
    let backend = Memory::new();
    let a = everything(&backend, 16).await;
    let b = everything(&backend, 16).await;
    let client = Client::new(backend.clone());
    for k in 0..3 {
        let id = format!("turns-{k}");
        client.start_with_id(wide_flaky, &id, (id.clone(), 200u64)).await.unwrap();
        let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
        assert_eq!(done.output::<u64>().unwrap(), 200);
        check_each_completed_once(&client, &id, 200).await;
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

async fn connect(server: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

fn table_key(backend: &Redis, id: &str) -> (String, String) {
    let t = format!("{{tt:p{}}}", backend.partition_of(id));
    (format!("{t}:i:{id}"), format!("{t}:t:{id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_a_wide_table_is_a_hash_beside_a_small_record_and_goes_with_the_instance() {
    let server = RedisServer::start();
    let backend = Redis::builder(server.url()).prefix("tt").partitions(2).connect().await.unwrap();
    let mut c = connect(&server).await;
    let (ik, tk) = table_key(&backend, "wide-r");

    // Parked with N open activities: one entry per task in the hash, a small record.
    let client = Client::new(backend.clone());
    let first = orchestrations_only(&backend).await;
    client.start_with_id(wide, "wide-r", N).await.unwrap();
    snapshot_with_open(&backend, "wide-r", N as usize).await;
    let entries: usize = redis::cmd("HLEN").arg(&tk).query_async(&mut c).await.unwrap();
    assert_eq!(entries, N as usize, "{tk}");
    let record: usize = redis::cmd("STRLEN").arg(&ik).query_async(&mut c).await.unwrap();
    assert!(record < 2048, "the record holds no task of the table: {record} bytes");
    first.shutdown().await.unwrap();

    // Another worker finishes it; once the results are consumed the table is back in the
    // snapshot and the hash is gone.
    let second = everything(&backend, durable_runtime::engine::DEFAULT_TASK_TABLE_APART_FROM).await;
    parked_at(&client, "wide-r", "wait_for_event").await;
    let exists: bool = redis::cmd("EXISTS").arg(&tk).query_async(&mut c).await.unwrap();
    assert!(!exists, "{tk} is left once the table is small");
    client.raise_event("wide-r", "more", 5u64).await.unwrap();
    let done = client.wait_for_completion("wide-r", PATIENCE).await.unwrap();
    assert_eq!(done.output::<u64>().unwrap(), N * (N + 1) + 10);
    check_history("wide-r", &client.history("wide-r").await.unwrap());
    second.shutdown().await.unwrap();

    // Terminated with its table apart: the hash goes with the snapshot.
    let (_, tk2) = table_key(&backend, "wide-t");
    let third = orchestrations_only(&backend).await;
    client.start_with_id(wide, "wide-t", N).await.unwrap();
    snapshot_with_open(&backend, "wide-t", N as usize).await;
    client.terminate("wide-t", "enough").await.unwrap();
    eventually_some("wide-t terminated", async || {
        let s = client.status("wide-t").await.unwrap()?;
        (s.runtime_status == durable_runtime::RuntimeStatus::Terminated).then_some(())
    })
    .await;
    let exists: bool = redis::cmd("EXISTS").arg(&tk2).query_async(&mut c).await.unwrap();
    assert!(!exists, "{tk2} is left after the instance was terminated");
    third.shutdown().await.unwrap();

    // Retries and a timer among the table's tasks.
    let fourth = everything(&backend, 64).await;
    client.start_with_id(wide_flaky, "wide-f", ("wide-f".to_string(), 300u64)).await.unwrap();
    let done = client.wait_for_completion("wide-f", PATIENCE).await.unwrap();
    assert_eq!(done.output::<u64>().unwrap(), 300);
    check_each_completed_once(&client, "wide-f", 300).await;
    fourth.shutdown().await.unwrap();

    purge_everything(&client).await;
    check_nothing_left(&server.url(), "tt", Allow::default(), PATIENCE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_a_wide_fan_out_handed_to_another_worker_completes() {
    let server = RedisServer::start();
    let backend = Redis::builder(server.url()).prefix("tt").partitions(2).connect().await.unwrap();
    wide_fan_out_handed_over(&backend, "wide-h").await;
}
