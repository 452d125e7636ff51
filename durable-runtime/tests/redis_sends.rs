//! Clients' messages sent at the same moment share one call of the send script per partition
//! (`backend/redis/sends.rs`), and each is still answered on its own: a message for an instance
//! that does not exist fails alone, the others in its call are delivered, each exactly once; a
//! burst larger than a round goes in several, whole; a round Redis refuses fails each of its
//! messages, and the next goes through; a round lost with its runtime leaves the queue free.

use durable_runtime::backend::{Backend, InstanceMessage, Redis};
use durable_runtime::{Client, Error, Worker};
use durable_test_support::fixtures::Counter;
use durable_test_support::redis_server::{RedisServer, function_calls_logged};
use durable_test_support::wait::{PATIENCE, settle};
use futures_util::future::join_all;
use std::time::{Duration, Instant};

/// The calls of the send script Redis ran since its slow log was reset (it logs every command;
/// the scripts run as functions of the library `connect` loaded).
async fn send_calls(c: &mut redis::aio::MultiplexedConnection) -> usize {
    function_calls_logged(c, "_send").await
}

/// The entries of every partition's control stream (the inboxes): messages delivered.
async fn delivered(c: &mut redis::aio::MultiplexedConnection, partitions: u32) -> usize {
    let mut n = 0;
    for p in 0..partitions {
        let len: usize = redis::cmd("XLEN").arg(format!("{{durable:p{p}}}:ctl")).query_async(c).await.unwrap();
        n += len;
    }
    n
}

/// A Redis of the test's own whose slow log records every command, a backend with
/// `partitions` on it, a client, and a connection of the test's own.
async fn start(partitions: u32) -> (RedisServer, Redis, Client, redis::aio::MultiplexedConnection) {
    let server = RedisServer::start();
    let backend = Redis::builder(server.url()).partitions(partitions).connect().await.unwrap();
    let client = Client::new(backend.clone());
    let mut c = redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: () =
        redis::cmd("CONFIG").arg("SET").arg("slowlog-log-slower-than").arg(0).query_async(&mut c).await.unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("slowlog-max-len").arg(10_000).query_async(&mut c).await.unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query_async(&mut c).await.unwrap();
    (server, backend, client, c)
}

/// Wait until each entity `keys[i]` holds `want[i]`, then check that it stays there while the
/// worker has nothing left to do (a signal applied twice would take it further).
async fn applied(client: &Client, keys: &[String], want: impl Fn(usize) -> i64) {
    let deadline = Instant::now() + PATIENCE;
    for (i, key) in keys.iter().enumerate() {
        loop {
            let v = client.entity_state::<Counter>(key.as_str()).await.unwrap().map(|c| c.value);
            if v == Some(want(i)) {
                break;
            }
            assert!(Instant::now() < deadline, "entity {key} holds {v:?}, not {}", want(i));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    settle().await;
    for (i, key) in keys.iter().enumerate() {
        let v = client.entity_state::<Counter>(key.as_str()).await.unwrap().map(|c| c.value);
        assert_eq!(v, Some(want(i)), "entity {key} moved on");
    }
}

// One thread: the messages are all queued before the round that sends them runs.
#[tokio::test(flavor = "current_thread")]
async fn messages_sent_at_once_share_a_call_per_partition_and_each_is_answered_on_its_own() {
    let partitions = 4;
    let (_server, backend, client, mut c) = start(partitions).await;

    // 12 entities, each sent 1 + 2 + … + 5 in five signals, all at once; and second, one
    // message for an instance that does not exist, in the partition of the first entity. The
    // first message goes alone, at once (nothing else is on its way then); the others are
    // queued meanwhile, and go together.
    let keys: Vec<String> = (0..12).map(|k| format!("k{k}")).collect();
    let entity = |key: &str| format!("@counter@{key}");
    let missing = (0..)
        .map(|i| format!("no-such-instance-{i}"))
        .find(|id| backend.partition_of(id) == backend.partition_of(&entity(&keys[0])))
        .unwrap();
    let mut signals = Vec::new();
    for n in 1..=5 {
        for key in &keys {
            signals.push(client.signal_entity::<Counter>(key.as_str()).add(n));
        }
    }
    let first = signals.remove(0);
    let to_missing = backend.send_message(&missing, InstanceMessage::Terminate { reason: "test".into() });
    let (first, to_missing, sent) = tokio::join!(first, to_missing, join_all(signals));
    first.unwrap();
    assert!(matches!(to_missing, Err(Error::InstanceNotFound(ref id)) if *id == missing), "{to_missing:?}");
    for r in sent {
        r.unwrap();
    }
    // 61 messages: the first alone, then one call per partition the others go to.
    let mut parts: Vec<u32> = keys.iter().map(|k| backend.partition_of(&entity(k))).collect();
    parts.sort();
    parts.dedup();
    assert_eq!(send_calls(&mut c).await, 1 + parts.len(), "calls of the send script for 61 messages");
    // Each signal delivered once; none for the missing instance.
    assert_eq!(delivered(&mut c, partitions).await, 60);

    // Each signal is applied once.
    let worker = Worker::builder(backend.clone()).entity::<Counter>().start().await.unwrap();
    applied(&client, &keys, |_| 15).await;
    worker.shutdown().await.unwrap();
}

// Two threads, more messages at once than one round takes (256): every one is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_a_round_is_sent_whole_and_once() {
    let partitions = 2;
    let (_server, backend, client, mut c) = start(partitions).await;
    let keys: Vec<String> = (0..6).map(|k| format!("b{k}")).collect();
    let mut signals = Vec::new();
    for i in 0..900 {
        signals.push(client.signal_entity::<Counter>(keys[i % keys.len()].as_str()).add(1));
    }
    for r in join_all(signals).await {
        r.unwrap();
    }
    assert_eq!(delivered(&mut c, partitions).await, 900);
    let calls = send_calls(&mut c).await;
    assert!((2..900).contains(&calls), "{calls} calls of the send script for 900 messages");
    let worker = Worker::builder(backend.clone()).entity::<Counter>().start().await.unwrap();
    applied(&client, &keys, |_| 150).await;
    worker.shutdown().await.unwrap();
}

// A round Redis refuses answers every message it carried, and the next round goes as usual.
#[tokio::test(flavor = "current_thread")]
async fn a_refused_round_fails_each_of_its_messages_and_the_next_goes_through() {
    let (_server, backend, client, mut c) = start(2).await;
    let keys: Vec<String> = (0..4).map(|k| format!("r{k}")).collect();
    // Redis refuses every write: it is over its memory limit.
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(1).query_async(&mut c).await.unwrap();
    let refused = join_all(keys.iter().map(|k| client.signal_entity::<Counter>(k.as_str()).add(1))).await;
    for r in refused {
        let e = r.unwrap_err();
        assert!(e.to_string().contains("OOM"), "{e}");
    }
    assert_eq!(delivered(&mut c, 2).await, 0);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(0).query_async(&mut c).await.unwrap();
    for r in join_all(keys.iter().map(|k| client.signal_entity::<Counter>(k.as_str()).add(2))).await {
        r.unwrap();
    }
    assert_eq!(delivered(&mut c, 2).await, 4);
    let worker = Worker::builder(backend.clone()).entity::<Counter>().start().await.unwrap();
    applied(&client, &keys, |_| 2).await;
    worker.shutdown().await.unwrap();
}

// A round whose runtime shuts down before the round runs: the message it was to send is
// answered, unsent, and the queue is free: a message sent afterwards, from another runtime
// that shares the handle, goes through (it waited forever before).
#[test]
fn a_round_lost_with_its_runtime_leaves_the_queue_free() {
    let server = RedisServer::start();
    // The runtime the connection was made in, and that outlives the other.
    let main = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let backend = main.block_on(Redis::builder(server.url()).partitions(1).connect()).unwrap();
    let client = Client::new(backend.clone());
    let short = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    short.block_on(async {
        // The first message goes alone; the second, sent while it is on its way, is queued
        // for a round spawned on this runtime, which never gets to run it.
        let mut first = Box::pin(client.signal_entity::<Counter>("a").add(1));
        let mut second = Box::pin(client.signal_entity::<Counter>("b").add(1));
        std::future::poll_fn(|cx| {
            assert!(first.as_mut().poll(cx).is_pending());
            assert!(second.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
    });
    drop(short);
    main.block_on(async {
        let next = tokio::time::timeout(PATIENCE, client.signal_entity::<Counter>("c").add(1)).await;
        next.expect("a message sent after the lost round waited for it").unwrap();
    });
}
