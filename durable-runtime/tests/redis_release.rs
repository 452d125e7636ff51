//! A worker's graceful shutdown hands its Redis partitions back at once (their leases are
//! deleted), so other workers need not wait for the leases to expire.

use durable_runtime::Worker;
use durable_runtime::backend::Redis;
use durable_test_support::fixtures::hello;
use durable_test_support::redis_server::RedisServer;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_partition_leases() {
    let server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", server.port);
    let backend = Redis::builder(url.clone()).prefix("rel").partitions(4).connect().await.unwrap();
    let worker = Worker::builder(backend.clone()).orchestrator(hello).start().await.unwrap();
    // The worker takes the partitions as it starts fetching.
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.owned_partitions().len() < 4 {
        assert!(Instant::now() < deadline, "the worker never took its partitions");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    for p in 0..4 {
        let lease: Option<String> =
            redis::cmd("GET").arg(format!("{{rel:p{p}}}:lease")).query_async(&mut c).await.unwrap();
        assert!(lease.is_some(), "partition {p} should be leased while the worker runs");
    }
    worker.shutdown().await.unwrap();
    assert!(backend.owned_partitions().is_empty());
    for p in 0..4 {
        let lease: Option<String> =
            redis::cmd("GET").arg(format!("{{rel:p{p}}}:lease")).query_async(&mut c).await.unwrap();
        assert_eq!(lease, None, "partition {p} is still leased after shutdown");
    }
}
