//! The Redis backend's queue depths per partition, with the age of the oldest message, and the
//! lease-change counters, as `/metrics` shows them.

use durable_runtime::backend::Redis;
use durable_runtime::metrics::{self, worker_metrics};
use durable_runtime::{Client, Worker};
use durable_test_support::fixtures::{hello, say_hello};
use durable_test_support::redis_server::RedisServer;
use durable_test_support::wait::{PATIENCE, eventually_some};
use std::sync::atomic::Ordering::Relaxed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depths_per_partition_with_the_oldest_message_age() {
    let server = RedisServer::start();
    let backend = Redis::builder(server.url()).partitions(4).connect().await.unwrap();
    let client = Client::new(backend.clone());
    // No worker yet: the start message waits in its partition's inbox.
    let id = client.start(hello, vec!["Oslo".to_string()]).await.unwrap();
    let d = client.queue_depths().await.unwrap().unwrap();
    assert_eq!(d.partitions.len(), 4);
    assert_eq!(d.messages, 1);
    let waiting: Vec<_> = d.partitions.iter().filter(|p| p.messages == 1).collect();
    assert_eq!(waiting.len(), 1, "{d:?}");
    assert!(waiting[0].oldest_message_age_ms.is_some(), "{d:?}");
    assert!(d.partitions.iter().filter(|p| p.messages == 0).all(|p| p.oldest_message_age_ms.is_none()), "{d:?}");
    // The age grows while nobody consumes it (Redis's clock).
    let first = waiting[0].oldest_message_age_ms.unwrap();
    let later = eventually_some("the oldest message to age", async || {
        let d = client.queue_depths().await.unwrap().unwrap();
        d.partitions.iter().find_map(|p| p.oldest_message_age_ms).filter(|age| *age >= first + 20)
    })
    .await;
    assert!(later >= first + 20);
    let mut text = String::new();
    metrics::render(&mut text, client.queue_depths().await.unwrap());
    let p = waiting[0].partition;
    assert!(text.contains(&format!("durable_partition_queue_messages{{partition=\"{p}\"}} 1\n")), "{text}");
    assert!(text.contains(&format!("durable_partition_oldest_message_age_seconds{{partition=\"{p}\"}} ")), "{text}");

    // A worker takes the partitions (counted) and consumes the message: nothing waits.
    let acquired = worker_metrics().leases_acquired.load(Relaxed);
    let worker = Worker::builder(backend.clone()).orchestrator(hello).activity(say_hello).start().await.unwrap();
    client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert!(worker_metrics().leases_acquired.load(Relaxed) >= acquired + 4);
    let d = client.queue_depths().await.unwrap().unwrap();
    assert_eq!(d.messages, 0, "{d:?}");
    assert!(d.partitions.iter().all(|p| p.oldest_message_age_ms.is_none()), "{d:?}");
    let released = worker_metrics().leases_released.load(Relaxed);
    worker.shutdown().await.unwrap();
    assert!(worker_metrics().leases_released.load(Relaxed) >= released + 4, "shutdown hands the leases back");
}
