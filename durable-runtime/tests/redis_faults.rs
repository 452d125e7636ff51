//! Fault tests of the Redis backend with real processes: workers killed with `kill -9` while
//! orchestrations run, a worker paused (SIGSTOP) past its lease, and Redis itself killed and
//! restarted from its append-only file.
//!
//! Worker processes are this test binary run again with `--ignored --exact fault_worker_process`
//! and the role in `DURABLE_FAULT_ROLE` (see [`fault_worker_process`]).

use durable_runtime::backend::{Backend, Redis};
use durable_runtime::engine::{self, EngineConfig, Registry, replay_orchestrator};
use durable_runtime::{Client, Error, RuntimeStatus, Worker};
use durable_test_support::fixtures::{self, hello, say_hello};
use durable_test_support::history::{check_all_completed as check_all, check_history};
use durable_test_support::process::ChildProcess;
use durable_test_support::redis_server::RedisServer;
use std::time::{Duration, Instant};

const LEASE: Duration = Duration::from_secs(1);
const VISIBILITY: Duration = Duration::from_secs(2);

async fn connect(url: &str, prefix: &str) -> Redis {
    Redis::builder(url)
        .prefix(prefix)
        .lease_duration(LEASE)
        .activity_visibility_timeout(VISIBILITY)
        .connect()
        .await
        .unwrap()
}

fn worker_builder(backend: Redis) -> durable_runtime::WorkerBuilder {
    Worker::builder(backend).orchestrator(hello).orchestrator(fixtures::parent).activity(say_hello)
}

/// Not a test by itself: the body of a worker process the tests below spawn.
///
/// - `worker`: run a worker until killed; prints `READY`.
/// - `stepper`: fetch one orchestration step, print `FETCHED <instance> <epoch list>`, process
///   it, then wait (the runtime does not run: nothing renews the lease) until a line arrives
///   on stdin, commit, and print `COMMIT OK` or `COMMIT LOCKLOST` or `COMMIT ERR <e>`.
#[test]
#[ignore = "run by the fault tests as a worker process"]
fn fault_worker_process() {
    let Ok(role) = std::env::var("DURABLE_FAULT_ROLE") else { return };
    let url = std::env::var("DURABLE_FAULT_URL").unwrap();
    let prefix = std::env::var("DURABLE_FAULT_PREFIX").unwrap();
    match role.as_str() {
        "worker" => {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async {
                let backend = connect(&url, &prefix).await;
                let _w = worker_builder(backend).start().await.unwrap();
                println!("READY");
                std::future::pending::<()>().await;
            });
        }
        "stepper" => {
            // One thread, and the runtime runs only inside `block_on`: while this process waits
            // for stdin (or is stopped), nothing renews its lease — a paused process.
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let mut registry = Registry::new();
            registry.register::<hello>();
            let (backend, commit) = rt.block_on(async {
                let backend = connect(&url, &prefix).await;
                let item = backend.fetch_orchestration_work(Duration::from_secs(10)).await.unwrap().expect("work");
                let epochs: Vec<String> = backend.owned_partitions().iter().map(|(p, e)| format!("{p}:{e}")).collect();
                println!("FETCHED {} {}", item.instance_id, epochs.join(","));
                let commit = engine::process(&registry, &item, None, backend.now(), &EngineConfig::default());
                (backend, commit)
            });
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            let r = rt.block_on(backend.commit(commit));
            match r {
                Ok(()) => println!("COMMIT OK"),
                Err(Error::LockLost(_)) => println!("COMMIT LOCKLOST"),
                Err(e) => println!("COMMIT ERR {e}"),
            }
        }
        other => panic!("unknown role {other}"),
    }
}

/// A worker process in role `role` (see `fault_worker_process`).
fn spawn_worker(role: &str, url: &str, prefix: &str) -> ChildProcess {
    ChildProcess::spawn(
        "fault_worker_process",
        &[
            ("DURABLE_FAULT_ROLE", role.to_string()),
            ("DURABLE_FAULT_URL", url.to_string()),
            ("DURABLE_FAULT_PREFIX", prefix.to_string()),
        ],
    )
}

const LINE_PATIENCE: Duration = Duration::from_secs(30);

/// A small deterministic PRNG (xorshift), seeded from the clock and printed for reruns.
struct Rng(u64);
impl Rng {
    fn new() -> Self {
        let seed = std::env::var("DURABLE_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
        });
        println!("fault test seed: DURABLE_FAULT_SEED={seed}");
        Self(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_workers_while_500_orchestrations_run() {
    let server = RedisServer::start();
    let url = server.url();
    let prefix = "kill9";
    let mut rng = Rng::new();
    let mut workers: Vec<ChildProcess> = (0..3).map(|_| spawn_worker("worker", &url, prefix)).collect();
    for w in &workers {
        w.expect_line("READY", LINE_PATIENCE);
    }
    let client = Client::new(connect(&url, prefix).await);
    let started = Instant::now();
    let starter = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut expected = Vec::new();
            for i in 0..500 {
                let cities: Vec<String> = (0..3).map(|k| format!("c{i}-{k}")).collect();
                let parent = i % 5 == 0;
                let id = if parent {
                    client.start(fixtures::parent, cities.clone()).await.unwrap()
                } else {
                    client.start(hello, cities.clone()).await.unwrap()
                };
                expected.push((id.into_string(), parent, cities));
            }
            expected
        })
    };
    // Rounds of kill -9 at random moments while the instances start and run, each victim
    // replaced by a fresh process.
    let rounds = 5;
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_millis(100 + rng.below(400))).await;
        let victim = rng.below(workers.len() as u64) as usize;
        workers.remove(victim).kill9();
        let running = client
            .list(durable_runtime::InstanceQuery::new().with_status(RuntimeStatus::Running).with_limit(1000))
            .await
            .unwrap()
            .instances
            .len();
        println!("round {round}: killed worker {victim} at {:?}, {running} instances running", started.elapsed());
        let fresh = spawn_worker("worker", &url, prefix);
        fresh.expect_line("READY", LINE_PATIENCE);
        workers.push(fresh);
    }
    let expected = starter.await.unwrap();
    check_all(&client, &expected, Duration::from_secs(90)).await;
    println!("500 orchestrations through {rounds} kill -9 rounds in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_paused_past_its_lease_cannot_commit() {
    let server = RedisServer::start();
    let url = server.url();
    let prefix = "pause";
    let client_backend = connect(&url, prefix).await;
    let client = Client::new(client_backend.clone());
    let id = client.start_with_id(hello, "paused-1", vec!["Oslo".into()]).await.unwrap();
    let part = client_backend.partition_of(&id);

    let mut stepper = spawn_worker("stepper", &url, prefix);
    let fetched = stepper.expect_line("FETCHED", LINE_PATIENCE);
    let mut words = fetched.split_whitespace().skip(1);
    assert_eq!(words.next(), Some("paused-1"));
    let old_epoch: u64 = words
        .next()
        .unwrap()
        .split(',')
        .find_map(|pe| pe.split_once(':').filter(|(p, _)| p.parse::<u32>().unwrap() == part))
        .map(|(_, e)| e.parse().unwrap())
        .expect("the stepper owns the instance's partition");
    stepper.signal("-STOP");

    // Another worker takes the partition over once the lease has run out, and runs the step.
    let backend = connect(&url, prefix).await;
    let w = worker_builder(backend.clone()).start().await.unwrap();
    let done = client.wait_for_completion(&id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(done.output::<Vec<String>>().unwrap(), ["Hello Oslo!"]);
    let new_epoch = backend.owned_partitions().into_iter().find(|(p, _)| *p == part).map(|(_, e)| e);
    assert!(new_epoch.is_some_and(|e| e > old_epoch), "taken over with a newer epoch: {new_epoch:?} > {old_epoch}");

    // The paused worker wakes up and commits its step: refused by the epoch check.
    stepper.signal("-CONT");
    stepper.send_line("commit");
    assert_eq!(stepper.expect_line("COMMIT", LINE_PATIENCE), "COMMIT LOCKLOST");
    let history = client.history(&id).await.unwrap();
    check_history(&id, &history);
    replay_orchestrator::<hello>(&id, &history).unwrap();
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_with_aof_loses_nothing_acknowledged() {
    let mut server = RedisServer::start_durable();
    let url = server.url();
    let prefix = "restart";
    let backend = connect(&url, prefix).await;
    let w = worker_builder(backend.clone()).start().await.unwrap();
    let client = Client::new(backend.clone());
    let mut expected = Vec::new();
    let mut refused = 0;
    for i in 0..300 {
        if i == 100 {
            server.kill();
            // Starts while Redis is down fail: they were not acknowledged.
            let cities = vec!["down".to_string()];
            assert!(client.start(hello, cities).await.is_err());
            refused += 1;
            server.restart();
        }
        let cities: Vec<String> = (0..3).map(|k| format!("r{i}-{k}")).collect();
        let parent = i % 10 == 0;
        let r = if parent {
            client.start(fixtures::parent, cities.clone()).await
        } else {
            client.start(hello, cities.clone()).await
        };
        match r {
            Ok(id) => expected.push((id.into_string(), parent, cities)),
            Err(e) => {
                // Right after the restart the connection may still be coming back.
                println!("start {i} refused: {e}");
                refused += 1;
            }
        }
    }
    assert!(expected.len() >= 250, "most starts after the restart are acknowledged ({refused} refused)");
    check_all(&client, &expected, Duration::from_secs(60)).await;
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn configuration_errors_are_clear() {
    let server = RedisServer::start();
    let url = server.url();
    Redis::builder(&url).prefix("cfg").partitions(4).connect().await.unwrap();
    let err = Redis::builder(&url).prefix("cfg").partitions(8).connect().await.unwrap_err();
    assert!(err.to_string().contains("has 4 partitions, this process was configured with 8"), "{err}");
    let err = Redis::connect("http://127.0.0.1:1/").await.unwrap_err();
    assert!(err.to_string().contains("is not a Redis URL"), "{err}");
    if !cfg!(feature = "redis-tls") {
        let err = Redis::connect("rediss://127.0.0.1:1/").await.unwrap_err();
        assert!(err.to_string().contains("`redis-tls` feature"), "{err}");
    }
    let err = Redis::builder(&url).partitions(0).connect().await.unwrap_err();
    assert!(err.to_string().contains("partitions must be between 1 and 1024"), "{err}");
    // ACL user and password come from the URL.
    server.cli(&["ACL", "SETUSER", "app", "on", ">s3cret", "~*", "&*", "+@all"]);
    let with_user = format!("redis://app:s3cret@127.0.0.1:{}/", server.port);
    let b = Redis::builder(&with_user).prefix("acl").connect().await.unwrap();
    let client = Client::new(b);
    client.start_with_id(hello, "acl-1", vec![]).await.unwrap();
    let bad = format!("redis://app:wrong@127.0.0.1:{}/", server.port);
    assert!(Redis::builder(&bad).prefix("acl").connect().await.is_err());
}
