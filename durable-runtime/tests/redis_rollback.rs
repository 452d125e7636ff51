//! Redis going back in time: with `appendfsync everysec` a crash loses up to a second of
//! acknowledged writes, and a failover can land on a replica that was behind. The workers'
//! memory is then ahead of Redis (control-stream cursors, consumed entries, histories, leases);
//! they must notice, read their partitions again, and strand nothing.
//!
//! The test takes a snapshot of Redis (`SAVE`) while orchestrations run (right after a burst of
//! starts, so that entries are waiting in the control streams), lets them run on for 1.5 s and
//! finish, kills Redis with `kill -9` and starts it again from the snapshot on the same port,
//! with the same in-process workers still running. The lease is long enough that the leases in
//! the snapshot are still valid when Redis comes back: the workers keep their partitions, and
//! only the detection of Redis going back in time can tell that their memory is ahead.

use durable_runtime::backend::Redis;
use durable_runtime::engine::replay_orchestrator;
use durable_runtime::{Client, InstanceStatus, RuntimeStatus, Worker, WorkerHandle};
use durable_test_support::fixtures::{self, errand, hello, say_hello};
use durable_test_support::history::{check_all_completed, check_history};
use durable_test_support::leftovers::{Allow, check_nothing_left, purge_everything};
use durable_test_support::redis_server::RedisServer;
use durable_test_support::wait::{PATIENCE, eventually};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longer than the test runs: the leases in the snapshot are still valid when Redis comes back,
/// so the workers keep their partitions (their renewals pass the lease and epoch checks), and
/// only the detection of Redis going back in time can tell that their memory is ahead.
const LEASE: Duration = Duration::from_secs(30);
const VISIBILITY: Duration = Duration::from_secs(2);

async fn connect(url: &str) -> Redis {
    Redis::builder(url)
        .prefix("rollback")
        .lease_duration(LEASE)
        .activity_visibility_timeout(VISIBILITY)
        .connect()
        .await
        .unwrap()
}

async fn start_worker(url: &str) -> WorkerHandle {
    Worker::builder(connect(url).await)
        .orchestrator(errand)
        .orchestrator(fixtures::parent)
        .orchestrator(hello)
        .activity(say_hello)
        .start()
        .await
        .unwrap()
}

/// What the test started: errands by name, parents with their cities.
#[derive(Default)]
struct Started {
    errands: BTreeMap<String, String>,
    parents: Vec<(String, bool, Vec<String>)>,
}

/// Start an errand named `e{i}` and raise its event `go{i}` (kept until it waits for it), or
/// every fourth time a parent (a sub-orchestration in another partition, through the outbox).
async fn start_one(client: &Client, i: usize, started: &Mutex<Started>) {
    if i % 4 == 3 {
        let cities = vec![format!("p{i}")];
        let id = client.start(fixtures::parent, cities.clone()).await.unwrap().into_string();
        started.lock().unwrap().parents.push((id, true, cities));
    } else {
        let id = client.start(errand, format!("e{i}")).await.unwrap().into_string();
        started.lock().unwrap().errands.insert(id.clone(), format!("go{i}"));
        client.raise_event(&id, "go", format!("go{i}")).await.unwrap();
    }
}

/// Whether an instance is there and finished.
fn finished(s: &Option<InstanceStatus>) -> bool {
    s.as_ref().is_some_and(InstanceStatus::is_finished)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_back_in_time_strands_nothing() {
    let began = Instant::now();
    let mut server = RedisServer::start();
    let url = server.url();
    let w1 = start_worker(&url).await;
    let w2 = start_worker(&url).await;
    let client = Client::new(connect(&url).await);
    let started = Arc::new(Mutex::new(Started::default()));

    // Instances start all along (about one every 5 ms) while Redis is up.
    let stop = Arc::new(AtomicBool::new(false));
    let starter = {
        let (client, started, stop) = (client.clone(), started.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                start_one(&client, i, &started).await;
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            i
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A burst right before the snapshot: many of its start messages are still in the control
    // streams in the snapshot, and consumed after it. Back in the snapshot they are in the
    // streams again, behind the cursors of the workers that had read them.
    let burst: Vec<_> = (0..80)
        .map(|k| {
            let (client, started) = (client.clone(), started.clone());
            tokio::spawn(async move { start_one(&client, 1_000_000 + k, &started).await })
        })
        .collect();
    for b in burst {
        b.await.unwrap();
    }
    let snapshot = server.save_snapshot();
    let at_snapshot = {
        let s = started.lock().unwrap();
        s.errands.len() + s.parents.len()
    };
    // The run goes on: everything from here on is lost when Redis goes back to the snapshot.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut next = starter.await.unwrap();
    // Until all of them are done: Redis then goes back in time under idle workers, with no
    // commit on its way to fail and make them read their partitions again by chance.
    let ids: Vec<String> = {
        let s = started.lock().unwrap();
        s.errands.keys().cloned().chain(s.parents.iter().map(|(id, _, _)| id.clone())).collect()
    };
    eventually("the run before the restore completes", async || {
        for id in &ids {
            if !finished(&client.status(id).await.unwrap()) {
                return false;
            }
        }
        true
    })
    .await;
    server.restart_from(&snapshot);
    let restarted = Instant::now();
    println!("{next} instances started, about {at_snapshot} before the snapshot; Redis back in time");

    // New instances after the restore: their entries must be read (not taken for entries the
    // workers read before).
    for _ in 0..40 {
        start_one(&client, next, &started).await;
        next += 1;
    }
    let (errands, parents) = {
        let s = started.lock().unwrap();
        (s.errands.clone(), s.parents.clone())
    };

    // What exists after the restore must complete; the rest was lost with the last writes.
    let mut exists = Vec::new();
    let mut lost = 0;
    for id in errands.keys().chain(parents.iter().map(|(id, _, _)| id)) {
        match client.status(id).await.unwrap() {
            Some(_) => exists.push(id.clone()),
            None => lost += 1,
        }
    }
    assert!(lost > 0, "the restore lost the instances started after the snapshot");
    // An event raised after the snapshot was lost with it, though acknowledged: raised again, as
    // a sender does that must not lose it under `appendfsync everysec`. A second one is kept
    // unused.
    for (id, data) in &errands {
        if exists.contains(id) {
            let _ = client.raise_event(id, "go", data.clone()).await;
        }
    }
    eventually("every instance that exists after the restore completes", async || {
        for id in &exists {
            if !finished(&client.status(id).await.unwrap()) {
                return false;
            }
        }
        true
    })
    .await;
    let recovered = restarted.elapsed();

    // Each completed with the right output, no event lost or doubled, and its history replays.
    for id in exists.iter().filter(|id| errands.contains_key(*id)) {
        let done = client.status(id).await.unwrap().unwrap();
        assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{id}: {done:?}");
        let name = errands[id].replacen("go", "e", 1);
        let expected = format!("Hello {name}! Hello {}!", errands[id]);
        assert_eq!(done.output::<String>().unwrap(), expected, "{id}");
        let history = client.history(id).await.unwrap();
        check_history(id, &history);
        replay_orchestrator::<errand>(id, &history).unwrap();
    }
    let parents: Vec<_> = parents.into_iter().filter(|(id, _, _)| exists.contains(id)).collect();
    check_all_completed(&client, &parents, PATIENCE).await;
    println!(
        "{} instances existed after the restore and completed within {recovered:?} of the restart, {lost} were lost; {:?} in all",
        exists.len(),
        began.elapsed()
    );
    // Purged, nothing of any instance is left, the rollback's included.
    purge_everything(&client).await;
    w1.shutdown().await.unwrap();
    w2.shutdown().await.unwrap();
    check_nothing_left(&url, "rollback", Allow::default(), PATIENCE).await;
}
