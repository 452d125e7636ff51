//! Fault tests of the Redis backend with real processes and a real `redis-server` (issue 11):
//!
//! - no commit is ever applied twice, even when Redis's script cache is flushed in the middle
//!   of a pipelined batch of commits.
//!
//! Worker processes are this test binary run again with `--ignored --exact worker_process` and
//! their settings in `DURABLE_FAULT_*` variables (see [`worker_process`]).

use durable_runtime::backend::Redis;
use durable_runtime::engine::replay_orchestrator;
use durable_runtime::{Client, EventKind, HistoryEvent, RuntimeStatus, Worker};
use durable_test_support::fixtures::{self, call_slow, hello, say_hello, slow};
use durable_test_support::redis_server::RedisServer;
use redis::aio::MultiplexedConnection;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const LEASE: Duration = Duration::from_secs(1);

async fn connect(url: &str, prefix: &str, partitions: u32, visibility: Duration) -> Redis {
    Redis::builder(url)
        .prefix(prefix)
        .partitions(partitions)
        .lease_duration(LEASE)
        .activity_visibility_timeout(visibility)
        .connect()
        .await
        .unwrap()
}

fn worker_builder(backend: Redis) -> durable_runtime::WorkerBuilder {
    Worker::builder(backend)
        .orchestrator(hello)
        .orchestrator(fixtures::parent)
        .orchestrator(call_slow)
        .activity(say_hello)
        .activity(slow)
}

/// Not a test by itself: the body of a worker process the tests below spawn. It runs a worker
/// (at most `DURABLE_FAULT_ACTIVITIES` activities at once), prints `READY`, and when a line
/// arrives on stdin shuts the worker down gracefully, prints `STOPPED` and exits.
#[test]
#[ignore = "run by the fault tests as a worker process"]
fn worker_process() {
    let Ok(url) = std::env::var("DURABLE_FAULT_URL") else { return };
    let var = |name: &str| std::env::var(name).unwrap();
    let prefix = var("DURABLE_FAULT_PREFIX");
    let partitions: u32 = var("DURABLE_FAULT_PARTITIONS").parse().unwrap();
    let visibility = Duration::from_millis(var("DURABLE_FAULT_VISIBILITY_MS").parse().unwrap());
    let activities: usize = var("DURABLE_FAULT_ACTIVITIES").parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let backend = connect(&url, &prefix, partitions, visibility).await;
        let w = worker_builder(backend).max_concurrent_activities(activities).start().await.unwrap();
        println!("READY");
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            let _ = tx.send(());
        });
        let _ = rx.await;
        w.shutdown().await.unwrap();
        println!("STOPPED");
    });
}

/// A spawned worker process, killed on drop.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdin: Option<ChildStdin>,
}

impl Proc {
    fn spawn(url: &str, prefix: &str, partitions: u32, visibility: Duration, activities: usize) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["worker_process", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("DURABLE_FAULT_URL", url)
            .env("DURABLE_FAULT_PREFIX", prefix)
            .env("DURABLE_FAULT_PARTITIONS", partitions.to_string())
            .env("DURABLE_FAULT_VISIBILITY_MS", visibility.as_millis().to_string())
            .env("DURABLE_FAULT_ACTIVITIES", activities.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let p = Self { child, lines, stdin };
        p.expect_line("READY", Duration::from_secs(30));
        p
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for an output line containing `word` (up to `patience`).
    fn expect_line(&self, word: &str, patience: Duration) {
        let deadline = Instant::now() + patience;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                // The test harness prints `test NAME ... ` before the first line, unterminated.
                Ok(l) if l.contains(word) => return,
                Ok(_) => {}
                Err(e) => panic!("worker process {} never printed {word:?}: {e}", self.pid()),
            }
        }
    }

    /// Asks the worker to shut down gracefully and waits until it has.
    fn shut_down(mut self) {
        writeln!(self.stdin.as_mut().unwrap(), "shutdown").unwrap();
        self.expect_line("STOPPED", Duration::from_secs(60));
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// No event twice: contiguous sequence numbers, one start, each task scheduled and finished
/// once (the history checker of `redis_faults.rs`).
fn check_history(id: &str, history: &[HistoryEvent]) {
    let mut started = 0;
    let mut scheduled = HashSet::new();
    let mut finished = HashSet::new();
    for (i, e) in history.iter().enumerate() {
        assert_eq!(e.seq, i as u64, "{id}: history sequence has a gap or a duplicate: {history:?}");
        match &e.kind {
            EventKind::ExecutionStarted { .. } => started += 1,
            EventKind::TaskScheduled { id: t, .. } | EventKind::SubOrchestrationCreated { id: t, .. } => {
                assert!(scheduled.insert(*t), "{id}: task {t} scheduled twice: {history:?}")
            }
            EventKind::TaskCompleted { id: t, .. }
            | EventKind::TaskFailed { id: t, .. }
            | EventKind::SubOrchestrationCompleted { id: t, .. }
            | EventKind::SubOrchestrationFailed { id: t, .. } => {
                assert!(finished.insert(*t), "{id}: task {t} finished twice: {history:?}")
            }
            _ => {}
        }
    }
    assert_eq!(started, 1, "{id}: {history:?}");
}

async fn redis_conn(url: &str) -> MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_commit_is_applied_twice_when_scripts_are_flushed() {
    let server = RedisServer::start();
    let url = server.url();
    let prefix = "flush";
    let visibility = Duration::from_secs(5);
    let client = Client::new(connect(&url, prefix, PARTS, visibility).await);
    // Flush the script cache over and over while the workers commit (not while the test starts
    // instances: only the workers' commits are under test).
    let stop = Arc::new(AtomicBool::new(false));
    let flushing = Arc::new(AtomicBool::new(false));
    let flushes = Arc::new(AtomicU64::new(0));
    let flusher = {
        let (stop, flushing, flushes) = (stop.clone(), flushing.clone(), flushes.clone());
        let mut c = redis_conn(&url).await;
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                if flushing.load(Ordering::SeqCst) {
                    let flushed: Result<(), _> = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut c).await;
                    if flushed.is_err() {
                        break; // the test failed and its server is gone
                    }
                    flushes.fetch_add(1, Ordering::SeqCst);
                }
                // Pace the fault: a flush every few milliseconds.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let started = Instant::now();
    let workers: Vec<Proc> = (0..2).map(|_| Proc::spawn(&url, prefix, PARTS, visibility, 100)).collect();
    // Waves of instances ready at once: the workers step and commit them in batches. Long
    // inputs make each commit a few KB, so that Redis reads a batch in several parts and a
    // flush can come between two commits of one batch.
    let filler = "x".repeat(2000);
    for wave in 0..WAVES {
        flushing.store(false, Ordering::SeqCst);
        let mut expected = Vec::new();
        for i in 0..PER_WAVE {
            let cities: Vec<String> = (0..3).map(|k| format!("w{wave}-{i}-{k}-{filler}")).collect();
            let parent = i % 5 == 0;
            let id = if parent {
                client.start(fixtures::parent, cities.clone()).await.unwrap()
            } else {
                client.start(hello, cities.clone()).await.unwrap()
            };
            expected.push((id.into_string(), parent, cities));
        }
        flushing.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        for (id, parent, cities) in &expected {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let done = client.wait_for_completion(id, left).await.unwrap();
            let history = client.history(id).await.unwrap();
            check_history(id, &history);
            assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{id}: {done:?}");
            let greetings: Vec<String> = cities.iter().map(|c| format!("Hello {c}!")).collect();
            if *parent {
                assert_eq!(done.output::<String>().unwrap(), greetings.join(" "));
                replay_orchestrator::<fixtures::parent>(id, &history).unwrap();
                let child = format!("{id}:0");
                let child_history = client.history(&child).await.unwrap();
                check_history(&child, &child_history);
                replay_orchestrator::<hello>(&child, &child_history).unwrap();
            } else {
                assert_eq!(done.output::<Vec<String>>().unwrap(), greetings);
                replay_orchestrator::<hello>(id, &history).unwrap();
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    flusher.await.unwrap();
    println!(
        "{} orchestrations under {} script flushes in {:?}, no duplicate",
        WAVES * PER_WAVE,
        flushes.load(Ordering::SeqCst),
        started.elapsed()
    );
    // The fault did happen: Redis refused scripts it no longer had.
    let mut c = redis_conn(&url).await;
    let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut c).await.unwrap();
    let evalsha = stats.lines().find(|l| l.starts_with("cmdstat_evalsha:")).unwrap_or_default().to_string();
    println!("{evalsha}");
    let refused: u64 = ["rejected_calls=", "failed_calls="]
        .iter()
        .filter_map(|k| evalsha.split([',', ':']).find_map(|f| f.strip_prefix(k)))
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    assert!(refused > 0, "no script call was refused: the test did not test anything");
    for w in workers {
        w.shut_down();
    }
}

/// Partitions of the commit test.
const PARTS: u32 = 4;
/// Waves of instances in the commit test, and instances per wave.
const WAVES: usize = 3;
const PER_WAVE: usize = 200;
