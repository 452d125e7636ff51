//! On Redis 7 and later the backend's scripts run as one function library (`FUNCTION LOAD`,
//! `FCALL`), so their shared definitions are not run again at every call. What must hold:
//! calls do go through the library, and a Redis that lost it (`FUNCTION FLUSH`, a restart
//! without persistence) goes on working through scripts, then gets the library back.

use durable_runtime::backend::Redis;
use durable_runtime::{Client, Worker};
use durable_test_support::fixtures::{hello, say_hello};
use durable_test_support::redis_server::RedisServer;
use durable_test_support::wait::{PATIENCE, eventually};
use std::time::Duration;

/// How many calls of `command` (`fcall`, `evalsha`, `eval`) the server has run.
fn calls(server: &RedisServer, command: &str) -> u64 {
    let info = server.cli(&["INFO", "commandstats"]);
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

/// The function libraries Redis holds (`durable_` and 16 hex digits; their functions are
/// named after them, with a suffix).
fn libraries(server: &RedisServer) -> Vec<String> {
    let list = server.cli(&["FUNCTION", "LIST"]);
    list.lines()
        .map(str::trim)
        .filter(|l| {
            l.strip_prefix("durable_").is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .map(str::to_string)
        .collect()
}

async fn greet(client: &Client, n: usize) {
    let cities: Vec<String> = (0..n).map(|k| format!("city {k}")).collect();
    let id = client.start(hello, cities.clone()).await.unwrap();
    let out: Vec<String> = client.wait_for_completion(&id, PATIENCE).await.unwrap().output().unwrap();
    assert_eq!(out, cities.iter().map(|c| format!("Hello {c}!")).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_run_as_functions_and_the_library_comes_back_after_a_flush() {
    let server = RedisServer::start();
    let backend = Redis::builder(server.url()).lease_duration(Duration::from_secs(2)).connect().await.unwrap();
    let worker = Worker::builder(backend.clone()).orchestrator(hello).activity(say_hello).start().await.unwrap();
    let client = Client::new(backend);
    assert_eq!(libraries(&server).len(), 1, "one library once connected: {:?}", libraries(&server));

    let (fcall, evalsha) = (calls(&server, "fcall"), calls(&server, "evalsha"));
    greet(&client, 5).await;
    let fcalls = calls(&server, "fcall") - fcall;
    // The start and six steps' commits (the activities' results are handed over in memory, see
    // `redis_handover.rs`), heartbeats: all functions.
    assert!(fcalls >= 7, "{fcalls} FCALLs for one instance of 5 activities");
    assert_eq!(calls(&server, "evalsha"), evalsha, "a script ran by its SHA1 though the library is loaded");

    // Redis loses the library: the calls it refuses run again as scripts, and nothing is lost.
    assert_eq!(server.cli(&["FUNCTION", "FLUSH"]).trim(), "OK");
    greet(&client, 5).await;
    assert!(calls(&server, "eval") >= 1, "no call ran again by its text after the library was flushed");

    // The next heartbeat loads it again, and calls go through it again.
    eventually("the library loaded again", async || libraries(&server).len() == 1).await;
    let fcall = calls(&server, "fcall");
    greet(&client, 5).await;
    assert!(calls(&server, "fcall") >= fcall + 7, "the calls did not go back to the library");
    worker.shutdown().await.unwrap();
}
