//! Fault tests of the Redis backend with real processes: workers killed with `kill -9` while
//! orchestrations run, a worker paused (SIGSTOP) past its lease, and Redis itself killed and
//! restarted from its append-only file.
//!
//! Worker processes are this test binary run again with `--ignored --exact fault_worker_process`
//! and the role in `DURABLE_FAULT_ROLE` (see [`fault_worker_process`]).

use durable_runtime::backend::{Backend, Redis};
use durable_runtime::engine::{self, EngineConfig, Registry, replay_orchestrator};
use durable_runtime::{Client, Error, RuntimeStatus, Worker};
use durable_test_support::fixtures::{self, Counter, EXECUTION_LOG, MixedJob, hello, logged, mixed, say_hello};
use durable_test_support::history::{check_all_completed as check_all, check_history};
use durable_test_support::leftovers::{Allow, check_nothing_left, purge_everything};
use durable_test_support::process::ChildProcess;
use durable_test_support::redis_server::RedisServer;
use std::collections::BTreeMap;
use std::path::Path;
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
    Worker::builder(backend)
        .orchestrator(hello)
        .orchestrator(fixtures::parent)
        .orchestrator(mixed)
        .activity(say_hello)
        .activity(logged)
        .entity::<Counter>()
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
    spawn_logging_worker(role, url, prefix, None)
}

/// A worker process whose `logged` activity records each execution in `log`.
fn spawn_logging_worker(role: &str, url: &str, prefix: &str, log: Option<&Path>) -> ChildProcess {
    let mut env = vec![
        ("DURABLE_FAULT_ROLE", role.to_string()),
        ("DURABLE_FAULT_URL", url.to_string()),
        ("DURABLE_FAULT_PREFIX", prefix.to_string()),
    ];
    if let Some(log) = log {
        env.push((EXECUTION_LOG, log.display().to_string()));
    }
    ChildProcess::spawn("fault_worker_process", &env)
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

/// The workload of the kill -9 test: 300 greetings (one in five a parent with a child), and
/// 200 `mixed` instances — timers, events, entity locks, `continue_as_new`, and instances
/// that are terminated — whose activity executions are counted across processes.
#[derive(Default)]
struct Workload {
    greetings: Vec<(String, bool, Vec<String>)>,
    /// `(instance, job number)`.
    mixed: Vec<(String, u64)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_workers_while_500_orchestrations_run() {
    let server = RedisServer::start();
    let url = server.url();
    let prefix = "kill9";
    let log = server.dir().join("executions.log");
    let mut rng = Rng::new();
    let spawn = || spawn_logging_worker("worker", &url, prefix, Some(&log));
    let mut workers: Vec<ChildProcess> = (0..3).map(|_| spawn()).collect();
    for w in &workers {
        w.expect_line("READY", LINE_PATIENCE);
    }
    let client = Client::new(connect(&url, prefix).await);
    let started = Instant::now();
    let starter = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut w = Workload::default();
            let mut to_terminate = Vec::new();
            for i in 0..500u64 {
                if i % 5 >= 3 {
                    let job = w.mixed.len() as u64;
                    let id = client.start(mixed, MixedJob { i: job, generation: 0 }).await.unwrap().into_string();
                    match job % 5 {
                        1 => client.raise_event(&id, "go", "go").await.unwrap(),
                        4 => to_terminate.push(id.clone()),
                        _ => {}
                    }
                    w.mixed.push((id, job));
                    continue;
                }
                let cities: Vec<String> = (0..3).map(|k| format!("c{i}-{k}")).collect();
                let parent = i % 5 == 0;
                let id = if parent {
                    client.start(fixtures::parent, cities.clone()).await.unwrap()
                } else {
                    client.start(hello, cities.clone()).await.unwrap()
                };
                w.greetings.push((id.into_string(), parent, cities));
                // The ones waiting for an event that never comes are terminated a little later.
                if i % 50 == 49 {
                    for id in to_terminate.drain(..) {
                        client.terminate(&id, "the kill -9 test").await.unwrap();
                    }
                }
            }
            for id in to_terminate {
                client.terminate(&id, "the kill -9 test").await.unwrap();
            }
            w
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
        let fresh = spawn();
        fresh.expect_line("READY", LINE_PATIENCE);
        workers.push(fresh);
    }
    let w = starter.await.unwrap();
    check_all(&client, &w.greetings, Duration::from_secs(90)).await;

    // The mixed instances: each completes with its output (or was terminated), with a history
    // without gap or duplicate that replays; each lock-holding `add(1)` applied exactly once.
    let mut expected_keys = Vec::new();
    let mut locked = 0;
    for (id, job) in &w.mixed {
        let done = client.wait_for_completion(id, Duration::from_secs(60)).await.unwrap();
        let Some((keys, output)) = MixedJob::expected(*job) else {
            assert_eq!(done.runtime_status, RuntimeStatus::Terminated, "{id}: {done:?}");
            continue;
        };
        assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{id} (job {job}): {done:?}");
        assert_eq!(done.output::<String>().unwrap(), output, "{id}");
        let history = client.history(id).await.unwrap();
        check_history(id, &history);
        replay_orchestrator::<mixed>(id, &history).unwrap();
        expected_keys.extend(keys);
        locked += u64::from(job % 5 == 2);
    }
    let mut applied = 0;
    for k in 0..3 {
        applied += client.entity_state::<Counter>(format!("mixed-{k}")).await.unwrap().map_or(0, |c| c.value);
    }
    assert_eq!(applied, locked as i64, "each add under a lock applied exactly once");

    // Activities run at least once: every one the instances completed ran, and nothing else did.
    let log_text = std::fs::read_to_string(&log).unwrap();
    let mut runs: BTreeMap<&str, usize> = BTreeMap::new();
    for line in log_text.lines() {
        *runs.entry(line).or_default() += 1;
    }
    for key in &expected_keys {
        assert!(runs.contains_key(key.as_str()), "activity {key} never ran");
    }
    assert_eq!(runs.len(), expected_keys.len(), "activities ran that no instance asked for: {runs:?}");
    let again: usize = runs.values().map(|n| n - 1).sum();
    println!(
        "500 orchestrations through {rounds} kill -9 rounds in {:?}; {} logged activities, {again} run again",
        started.elapsed(),
        expected_keys.len()
    );

    // Purged, nothing of them is left: no key, entry, pending item, timer or dead consumer.
    let (instances, entities) = purge_everything(&client).await;
    assert!(instances >= 500 && entities == 3, "purged {instances} instances and {entities} entities");
    let allow = Allow { live_workers: workers.len(), ..Allow::default() };
    check_nothing_left(&url, prefix, allow, Duration::from_secs(30)).await;
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
    purge_everything(&client).await;
    w.shutdown().await.unwrap();
    check_nothing_left(&url, prefix, Allow::default(), Duration::from_secs(10)).await;
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
    purge_everything(&client).await;
    w.shutdown().await.unwrap();
    check_nothing_left(&url, prefix, Allow::default(), Duration::from_secs(10)).await;
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
