//! Clients' messages sent at the same moment share one call of the send script per partition
//! (`backend/redis/sends.rs`), and each is still answered on its own: a message for an instance
//! that does not exist fails alone, the others in its call are delivered, each exactly once.

use durable_runtime::backend::{Backend, InstanceMessage, Redis};
use durable_runtime::{Client, Error, Worker};
use durable_test_support::fixtures::Counter;
use durable_test_support::redis_server::RedisServer;
use durable_test_support::wait::PATIENCE;
use futures_util::future::join_all;
use std::time::Instant;

/// The calls of the send script Redis ran since its slow log was reset (it logs every command).
async fn send_calls(c: &mut redis::aio::MultiplexedConnection) -> usize {
    let log: Vec<redis::Value> = redis::cmd("SLOWLOG").arg("GET").arg(-1).query_async(c).await.unwrap();
    log.iter()
        .filter(|entry| {
            let redis::Value::Array(fields) = entry else { return false };
            let Some(redis::Value::Array(args)) = fields.get(3) else { return false };
            let arg = |k: usize| match args.get(k) {
                Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            };
            match arg(0).to_ascii_uppercase().as_str() {
                "FCALL" => arg(1).ends_with("_send"),
                // Before the function library is loaded, scripts run by their SHA1 or text.
                "EVALSHA" | "EVAL" => arg(3).contains("}:lease") && args.len() >= 6 && arg(1).len() == 40,
                _ => false,
            }
        })
        .count()
}

// One thread: the messages are all queued before the round that sends them runs.
#[tokio::test(flavor = "current_thread")]
async fn messages_sent_at_once_share_a_call_per_partition_and_each_is_answered_on_its_own() {
    let server = RedisServer::start();
    let partitions = 4;
    let backend = Redis::builder(server.url()).partitions(partitions).connect().await.unwrap();
    let client = Client::new(backend.clone());
    let mut c = redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: () =
        redis::cmd("CONFIG").arg("SET").arg("slowlog-log-slower-than").arg(0).query_async(&mut c).await.unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("slowlog-max-len").arg(10_000).query_async(&mut c).await.unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query_async(&mut c).await.unwrap();

    // 12 entities, each sent 1 + 2 + … + 5 in five signals, all at once; and one message for
    // an instance that does not exist, in the middle.
    let keys: Vec<String> = (0..12).map(|k| format!("k{k}")).collect();
    let mut signals = Vec::new();
    for n in 1..=5 {
        for key in &keys {
            signals.push(client.signal_entity::<Counter>(key.as_str()).add(n));
        }
    }
    let missing = backend.send_message("no-such-instance", InstanceMessage::Terminate { reason: "test".into() });
    let (sent, missing) = tokio::join!(join_all(signals), missing);
    for r in sent {
        r.unwrap();
    }
    assert!(matches!(missing, Err(Error::InstanceNotFound(ref id)) if id == "no-such-instance"), "{missing:?}");
    // 61 messages went in one call per partition at most (the function library may have been
    // loaded meanwhile: then one call per partition as a script, one as a function).
    let calls = send_calls(&mut c).await;
    assert!((1..=2 * partitions as usize).contains(&calls), "{calls} calls of the send script for 61 messages");

    // Each signal is applied once.
    let worker = Worker::builder(backend.clone()).entity::<Counter>().start().await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    for key in &keys {
        loop {
            let v = client.entity_state::<Counter>(key.as_str()).await.unwrap().map(|c| c.value);
            if v == Some(15) {
                break;
            }
            assert!(v.is_none_or(|v| v < 15), "entity {key} went past 15: {v:?}");
            assert!(Instant::now() < deadline, "entity {key} holds {v:?}, not 15");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    worker.shutdown().await.unwrap();
}
