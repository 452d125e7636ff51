//! An activity's result goes straight into its instance's inbox when the worker that ran it
//! owns the instance's partition; the step that consumes it acknowledges the activity's entry
//! in its commit. What must hold: those results skip the control stream; a result another
//! worker delivered first for the same entry wins (only the first completion of an entry
//! counts), the handed-over one is dropped and nothing is recorded twice; and a result held
//! for a partition the worker stops holding reaches the partition's next owner.

use durable_runtime::backend::{ActivityRequest, Backend, Redis};
use durable_runtime::{Client, EventKind, RuntimeStatus, Worker, WorkerHandle};
use durable_test_support::fixtures::{call_slow, hello, say_hello, slow};
use durable_test_support::redis_server::RedisServer;
use durable_test_support::wait::{PATIENCE, eventually, eventually_some, wait_until};
use std::time::Duration;

async fn connect(server: &RedisServer) -> Redis {
    Redis::builder(server.url()).lease_duration(Duration::from_secs(2)).connect().await.unwrap()
}

async fn slow_worker(backend: &Redis) -> WorkerHandle {
    Worker::builder(backend.clone()).orchestrator(call_slow).activity(slow).start().await.unwrap()
}

/// A field of `XINFO STREAM key` (raw `redis-cli` output: names and values on lines of their own).
fn stream_info(server: &RedisServer, key: &str, field: &str) -> u64 {
    let info = server.cli(&["XINFO", "STREAM", key]);
    let lines: Vec<&str> = info.lines().collect();
    let at = lines.iter().position(|l| *l == field).unwrap_or_else(|| panic!("no {field} in {info}"));
    lines[at + 1].parse().unwrap()
}

/// How many entries of `key` group `w` has pending.
fn pending(server: &RedisServer, key: &str) -> u64 {
    server.cli(&["XPENDING", key, "w"]).lines().next().unwrap_or("0").parse().unwrap_or(0)
}

/// `id`'s history records `n` activity results.
async fn assert_completed_times(client: &Client, id: &str, n: usize) {
    let history = client.history(id).await.unwrap();
    let completed = history.iter().filter(|e| matches!(e.kind, EventKind::TaskCompleted { .. })).count();
    assert_eq!(completed, n, "{history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_of_activities_run_by_the_owner_skip_the_control_stream() {
    let server = RedisServer::start();
    let backend = connect(&server).await;
    let worker = Worker::builder(backend.clone()).orchestrator(hello).activity(say_hello).start().await.unwrap();
    let client = Client::new(backend.clone());
    let cities: Vec<String> = (0..5).map(|k| format!("city {k}")).collect();
    let id = client.start(hello, cities.clone()).await.unwrap();
    let out: Vec<String> = client.wait_for_completion(&id, PATIENCE).await.unwrap().output().unwrap();
    assert_eq!(out, cities.iter().map(|c| format!("Hello {c}!")).collect::<Vec<_>>());
    let tag = format!("{{durable:p{}}}", backend.partition_of(id.as_str()));
    // Only the start message went through the control stream (through `complete.lua`, each of
    // the five results would have too).
    assert_eq!(stream_info(&server, &format!("{tag}:ctl"), "entries-added"), 1);
    // Each activity's entry was acknowledged and deleted by the step that took its result.
    assert_eq!(stream_info(&server, &format!("{tag}:act"), "entries-added"), 5);
    assert_eq!(stream_info(&server, &format!("{tag}:act"), "length"), 0);
    assert_eq!(pending(&server, &format!("{tag}:act")), 0);
    // Each result recorded once.
    assert_completed_times(&client, id.as_str(), 5).await;
    worker.shutdown().await.unwrap();
}

/// `call_slow(ms)` started and suspended while its activity runs; once the activity is done,
/// its result waits in the worker's inbox (the instance takes nothing while suspended). The
/// instance, the activity's stream key and its entry id.
async fn result_held_while_suspended(
    server: &RedisServer,
    backend: &Redis,
    client: &Client,
    ms: u64,
) -> (String, String, String) {
    let id = client.start(call_slow, ms).await.unwrap().into_string();
    let tag = format!("{{durable:p{}}}", backend.partition_of(&id));
    let act = format!("{tag}:act");
    let mut conn = redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let entry: String = eventually_some("the activity is running", async || {
        let r: redis::Value =
            redis::cmd("XPENDING").arg(&act).arg("w").arg("-").arg("+").arg(1).query_async(&mut conn).await.ok()?;
        match r {
            redis::Value::Array(items) => match items.first()? {
                redis::Value::Array(e) => match e.first()? {
                    redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        }
    })
    .await;
    client.suspend(&id, "test").await.unwrap();
    wait_until(client, &id, |s| s.runtime_status == RuntimeStatus::Suspended).await;
    eventually("the result waits in the inbox", async || {
        let s = backend.inbox_stats();
        s.held + s.stalled == 1
    })
    .await;
    (id, act, entry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_delivered_first_by_another_worker_wins_over_one_handed_over() {
    let server = RedisServer::start();
    let backend = connect(&server).await;
    let worker = slow_worker(&backend).await;
    let client = Client::new(backend.clone());
    let (id, act, entry) = result_held_while_suspended(&server, &backend, &client, 300).await;
    // Meanwhile another worker (as after claiming the entry) completes it first, as
    // `complete.lua` does: acknowledges the entry and delivers its result.
    let fields = server.cli(&["XRANGE", &act, &entry, &entry]);
    let request = fields.lines().skip_while(|l| *l != "r").nth(1).expect("the entry's request").to_string();
    let request: ActivityRequest = serde_json::from_str(&request).unwrap();
    assert_eq!(server.cli(&["XACK", &act, "w", &entry]).trim(), "1");
    backend.send_message(&id, request.result_message(Ok("999".into()))).await.unwrap();
    client.resume(&id, "test").await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<u64>().unwrap(), 999, "the result that counted first is the other worker's");
    assert_completed_times(&client, &id, 1).await;
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_held_for_a_partition_handed_back_reaches_its_next_owner() {
    let server = RedisServer::start();
    let first = connect(&server).await;
    let worker = slow_worker(&first).await;
    let client = Client::new(first.clone());
    let (id, act, _) = result_held_while_suspended(&server, &first, &client, 300).await;
    // The worker stops with the result in memory: it sends it through the control stream.
    worker.shutdown().await.unwrap();
    assert_eq!(pending(&server, &act), 0, "the stopped worker left its activity's entry pending");
    let second = connect(&server).await;
    let worker = slow_worker(&second).await;
    let client = Client::new(second.clone());
    client.resume(&id, "test").await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<u64>().unwrap(), 300);
    assert_completed_times(&client, &id, 1).await;
    worker.shutdown().await.unwrap();
}
