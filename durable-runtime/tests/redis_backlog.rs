//! A backlog never fills the worker: what it reads ahead of the control streams and what one
//! step consumes are bounded (`RedisBuilder::read_ahead`, `max_messages_per_step`), whatever
//! is queued — thousands of signals to one entity, a burst of starts, events piled up behind a
//! suspended instance — and everything queued is still consumed, in order, exactly once.

use durable_runtime::backend::Redis;
use durable_runtime::{Client, RuntimeStatus, Worker};
use durable_test_support::fixtures::{Counter, hello, say_hello, sum_events};
use durable_test_support::leftovers::{Allow, check_nothing_left, purge_everything};
use durable_test_support::redis_server::RedisServer;
use durable_test_support::wait::{PATIENCE, eventually_some};

const READ_AHEAD: usize = 200;
const READ_BATCH: usize = 50;
const STEP: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_never_fills_the_worker() {
    let server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", server.port);
    let connect = || {
        Redis::builder(url.clone())
            .prefix("backlog")
            .partitions(2)
            .read_ahead(READ_AHEAD)
            .read_batch(READ_BATCH)
            .max_messages_per_step(STEP)
            .connect()
    };
    let client = Client::new(connect().await.unwrap());

    // Queued while no worker runs: 3,000 signals to one entity, 600 starts, an instance that is
    // suspended behind 300 events and then resumed, and one left suspended behind 400 events
    // (its messages must not hold back the rest of its partition).
    const SIGNALS: i64 = 3_000;
    for i in 1..=SIGNALS {
        client.signal_entity::<Counter>("hot").add(i).await.unwrap();
    }
    let mut started = Vec::new();
    for i in 0..600 {
        started.push(client.start(hello, vec![format!("city-{i}")]).await.unwrap());
    }
    let resumed = client.start_with_id(sum_events, "resumed", 300).await.unwrap();
    let parked = client.start_with_id(sum_events, "parked", 400).await.unwrap();
    client.suspend(&resumed, "backlog test").await.unwrap();
    client.suspend(&parked, "backlog test").await.unwrap();
    for i in 1..=400i64 {
        if i <= 300 {
            client.raise_event(&resumed, "e", i).await.unwrap();
        }
        client.raise_event(&parked, "e", i).await.unwrap();
    }
    client.resume(&resumed, "backlog test").await.unwrap();

    let backend = connect().await.unwrap();
    let worker = Worker::builder(backend.clone())
        .orchestrator(hello)
        .orchestrator(sum_events)
        .activity(say_hello)
        .entity::<Counter>()
        .start()
        .await
        .unwrap();

    // Everything queued is consumed, exactly once and in order.
    let expected_total = SIGNALS * (SIGNALS + 1) / 2;
    eventually_some("the entity to apply every signal", async || {
        client.entity_state::<Counter>("hot").await.unwrap().filter(|c| c.value == expected_total)
    })
    .await;
    for id in &started {
        let done = client.wait_for_completion(id, PATIENCE).await.unwrap();
        assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{id}: {done:?}");
    }
    let done = client.wait_for_completion(&resumed, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{done:?}");
    assert_eq!(done.output::<i64>().unwrap(), 300 * 301 / 2, "every event, each once");
    let status = client.status(&parked).await.unwrap().unwrap();
    assert_eq!(status.runtime_status, RuntimeStatus::Suspended);

    // Never more in memory than the read-ahead of each partition (plus one read; plus the
    // messages of the resumed instance, which count again once it can consume them), far from
    // the 4,300 queued; never a step larger than the bound (plus the `resume` found behind it).
    let stats = backend.inbox_stats();
    assert!(stats.peak_held <= 2 * (READ_AHEAD + READ_BATCH) + 302, "{stats:?}");
    assert!(stats.largest_step <= STEP + 1, "{stats:?}");
    // The parked instance's events wait in memory without counting against the read-ahead.
    assert_eq!(stats.stalled, 400, "{stats:?}");

    // Once resumed, it consumes them all (in steps of at most `STEP`).
    client.resume(&parked, "backlog test").await.unwrap();
    let done = client.wait_for_completion(&parked, PATIENCE).await.unwrap();
    assert_eq!(done.output::<i64>().unwrap(), 400 * 401 / 2, "{done:?}");
    // (The worker learns of its last commit a moment after the client sees its result.)
    let stats = eventually_some("the worker to hold nothing", async || {
        Some(backend.inbox_stats()).filter(|s| (s.held, s.stalled) == (0, 0))
    })
    .await;
    assert!(stats.largest_step <= STEP + 1, "{stats:?}");
    purge_everything(&client).await;
    worker.shutdown().await.unwrap();
    check_nothing_left(&url, "backlog", Allow::default(), PATIENCE).await;
}
