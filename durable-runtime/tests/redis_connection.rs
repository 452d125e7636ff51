//! The Redis connection under real conditions, each test on a `redis-server` of its own:
//! a configuration that would lose data is refused at connect, and clients and workers ride
//! out Redis being killed (`kill -9`) and restarted from its append-only file.

use durable_runtime::backend::Redis;
use durable_runtime::{Client, Error, RuntimeStatus, Worker};
use durable_test_support::fixtures::{call_slow, slow};
use durable_test_support::redis_server::RedisServer;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_maxmemory_policy_that_evicts_is_refused_at_connect() {
    let server = RedisServer::start();
    // As `redis-server --maxmemory-policy allkeys-lru` would have it.
    assert_eq!(server.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]).trim(), "OK");
    let err = Redis::builder(server.url()).prefix("evict").connect().await.unwrap_err();
    println!("{err}");
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("maxmemory-policy is allkeys-lru"), "{msg}");
    assert!(msg.contains("CONFIG SET maxmemory-policy noeviction"), "{msg}");
    // Nothing of the task hub was written.
    assert_eq!(server.cli(&["DBSIZE"]).trim(), "0");
    for policy in ["volatile-lru", "volatile-ttl", "allkeys-random"] {
        server.cli(&["CONFIG", "SET", "maxmemory-policy", policy]);
        let err = Redis::builder(server.url()).prefix("evict").connect().await.unwrap_err();
        assert!(err.to_string().contains(&format!("maxmemory-policy is {policy}")), "{err}");
    }
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    Redis::builder(server.url()).prefix("evict").connect().await.unwrap();
}

#[tokio::test]
async fn connect_goes_on_when_config_get_is_not_allowed() {
    let server = RedisServer::start();
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    // A user without CONFIG (as on managed Redis services): the policy cannot be read, the
    // connection goes on with a warning.
    server.cli(&["ACL", "SETUSER", "app", "on", ">s3cret", "~*", "&*", "+@all", "-config"]);
    let url = format!("redis://app:s3cret@127.0.0.1:{}/", server.port);
    let backend = Redis::builder(&url).prefix("acl").connect().await.unwrap();
    Client::new(backend).start_with_id(call_slow, "acl-1", 1).await.unwrap();
}

/// Kill -9 the server and start it again on the same port and directory (from its AOF) after
/// `down`, off the async runtime.
async fn kill_and_restart(server: RedisServer, down: Duration) -> RedisServer {
    tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.kill();
        std::thread::sleep(down);
        server.restart();
        server
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_completion_survive_a_redis_kill_and_restart() {
    let server = RedisServer::start_durable();
    let url = server.url();
    // A visibility timeout far past the waits' timeout: an activity whose completion the
    // worker lost while Redis was down would run again only after it, and its wait fail.
    let worker_backend = Redis::builder(&url)
        .prefix("waits")
        .lease_duration(Duration::from_secs(1))
        .activity_visibility_timeout(Duration::from_secs(600))
        .connect();
    let worker_backend = worker_backend.await.unwrap();
    let worker = Worker::builder(worker_backend).orchestrator(call_slow).activity(slow).start().await.unwrap();
    // The client has connections of its own, as in another process.
    let client = Client::new(Redis::builder(&url).prefix("waits").connect().await.unwrap());
    let mut ids = Vec::new();
    for i in 0..50u64 {
        // Activities of 0.2 to 2.6 s: some finish while Redis is down, most after.
        ids.push(client.start(call_slow, 200 + 50 * i).await.unwrap().into_string());
    }
    let started = Instant::now();
    let waits: Vec<_> = ids
        .iter()
        .map(|id| {
            let (client, id) = (client.clone(), id.clone());
            tokio::spawn(async move { client.wait_for_completion(&id, Duration::from_secs(120)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = kill_and_restart(server, Duration::from_millis(800)).await;
    println!("redis killed and restarted at {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(700)).await;
    let server = kill_and_restart(server, Duration::from_millis(300)).await;
    println!("redis killed and restarted again at {:?}", started.elapsed());
    let mut errors = Vec::new();
    for (id, w) in ids.iter().zip(waits) {
        match w.await.unwrap() {
            Ok(s) => {
                assert_eq!(s.runtime_status, RuntimeStatus::Completed, "{s:?}");
                assert!(s.output::<u64>().is_ok(), "{s:?}");
            }
            Err(e) => errors.push(format!("{id}: {e}")),
        }
    }
    println!("50 waits returned after {:?}; {} errors", started.elapsed(), errors.len());
    assert!(errors.is_empty(), "waits that failed:\n{}", errors.join("\n"));
    worker.shutdown().await.unwrap();
    drop(server);
}
