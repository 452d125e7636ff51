//! The Redis backend on a real local Redis Cluster (3 masters, 3 replicas, started by the test):
//! partitions spread over the masters, many workers share them, a different partition count is
//! refused, and a master killed with `kill -9` while 500 orchestrations run fails over to its
//! replica with every instance completing, histories without gap or duplicate.
//!
//! The conformance suite runs on a cluster too (`cluster::…` in `runtime.rs` and the others).
//! Worker processes of the fault test are this test binary run again with `--ignored --exact
//! cluster_worker_process`.

use durable_runtime::backend::Redis;
use durable_runtime::{Client, Error, Worker};
use durable_test_support::fixtures::{self, hello, say_hello};
use durable_test_support::history::check_all_completed;
use durable_test_support::process::ChildProcess;
use durable_test_support::redis_cluster::RedisCluster;
use durable_test_support::wait::{PATIENCE, eventually};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const LEASE: Duration = Duration::from_secs(2);
const VISIBILITY: Duration = Duration::from_secs(3);

async fn connect(url: &str, prefix: &str, partitions: u32) -> Result<Redis, Error> {
    Redis::builder(url)
        .prefix(prefix)
        .partitions(partitions)
        .lease_duration(LEASE)
        .activity_visibility_timeout(VISIBILITY)
        .connect()
        .await
}

fn worker_builder(backend: Redis) -> durable_runtime::WorkerBuilder {
    Worker::builder(backend).orchestrator(hello).orchestrator(fixtures::parent).activity(say_hello)
}

/// Not a test by itself: a worker process of the fault test (prints `READY`, runs until
/// killed).
#[test]
#[ignore = "run by the cluster fault test as a worker process"]
fn cluster_worker_process() {
    let Ok(url) = std::env::var("DURABLE_CLUSTER_URL") else { return };
    let prefix = std::env::var("DURABLE_CLUSTER_PREFIX").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let backend = connect(&url, &prefix, 16).await.unwrap();
        let _w = worker_builder(backend).start().await.unwrap();
        println!("READY");
        std::future::pending::<()>().await;
    });
}

fn spawn_worker(url: &str, prefix: &str) -> ChildProcess {
    ChildProcess::spawn(
        "cluster_worker_process",
        &[("DURABLE_CLUSTER_URL", url.to_string()), ("DURABLE_CLUSTER_PREFIX", prefix.to_string())],
    )
}

async fn start_cluster() -> RedisCluster {
    tokio::task::spawn_blocking(RedisCluster::start).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_spread_over_the_masters_and_workers_share_them() {
    let cluster = start_cluster().await;
    let url = cluster.url();
    let a = connect(&url, "spread", 16).await.unwrap();
    let b = connect(&url, "spread", 16).await.unwrap();
    assert!(a.is_cluster());
    // Every partition's keys live on one master; the 16 partitions use all three.
    let masters: BTreeSet<u16> = (0..16).map(|p| cluster.master_of(&format!("{{spread:p{p}}}:lease"))).collect();
    assert_eq!(masters.len(), 3, "partitions on {masters:?}");

    let wa = worker_builder(a.clone()).start().await.unwrap();
    let wb = worker_builder(b.clone()).start().await.unwrap();
    // Two workers share the partitions (8 each once both are live).
    eventually("both workers own partitions, none twice", async || {
        let (pa, pb) = (a.owned_partitions(), b.owned_partitions());
        let all: BTreeSet<u32> = pa.iter().chain(&pb).map(|(p, _)| *p).collect();
        !pa.is_empty() && !pb.is_empty() && all.len() == 16 && pa.len() + pb.len() == 16
    })
    .await;
    let client = Client::new(a.clone());
    let mut expected = Vec::new();
    for i in 0..60 {
        let cities: Vec<String> = (0..2).map(|k| format!("s{i}-{k}")).collect();
        let parent = i % 4 == 0;
        let id = if parent {
            client.start(fixtures::parent, cities.clone()).await.unwrap()
        } else {
            client.start(hello, cities.clone()).await.unwrap()
        };
        expected.push((id.into_string(), parent, cities));
    }
    check_all_completed(&client, &expected, PATIENCE).await;
    // Every master holds some of the task hub's keys, and the function library (loaded on
    // every master at connect), through which its scripts ran.
    for m in cluster.masters() {
        let keys: u64 = cluster.cli(m, &["DBSIZE"]).trim().parse().unwrap();
        assert!(keys > 0, "master {m} holds no key");
        let libraries = cluster.cli(m, &["FUNCTION", "LIST"]);
        assert!(
            libraries.lines().any(|l| l.starts_with("durable_")),
            "master {m} has no function library: {libraries}"
        );
        let stats = cluster.cli(m, &["INFO", "commandstats"]);
        assert!(stats.lines().any(|l| l.starts_with("cmdstat_fcall:")), "master {m} ran no FCALL");
        // The scripts' writes waited for a replica (`replica_acks(1)`, the default), also when
        // they ran as functions.
        assert!(stats.lines().any(|l| l.starts_with("cmdstat_wait:")), "master {m} never waited for a replica");
    }
    // Listing walks every partition (one command per partition, each on its own master).
    let page = client.list(durable_runtime::InstanceQuery::new().with_limit(1000)).await.unwrap();
    assert_eq!(page.instances.len(), expected.len() + expected.iter().filter(|e| e.1).count());
    wa.shutdown().await.unwrap();
    wb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_partition_count_an_evicting_master_and_bad_urls_are_refused() {
    let cluster = start_cluster().await;
    let url = cluster.url();
    connect(&url, "count", 8).await.unwrap();
    let e = connect(&url, "count", 16).await.unwrap_err().to_string();
    assert!(e.contains("has 8 partitions") && e.contains("configured with 16"), "{e}");
    // One node is enough to find the others.
    let one = url.split(',').next().unwrap().to_string();
    let r = connect(&one, "count", 8).await.unwrap();
    assert_eq!(r.pending_activities().await.unwrap(), 0);
    let e = connect("redis+cluster://127.0.0.1", "count", 8).await.unwrap_err().to_string();
    assert!(e.contains("has no port") && e.contains("redis+cluster://[user"), "{e}");
    // Every master must keep its keys: one that evicts is found and refused.
    let last = *cluster.masters().last().unwrap();
    assert_eq!(cluster.cli(last, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]).trim(), "OK");
    let e = connect(&url, "count", 8).await.unwrap_err().to_string();
    assert!(e.contains("maxmemory-policy is allkeys-lru"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_master_fails_over_and_every_instance_completes() {
    let mut cluster = start_cluster().await;
    let url = cluster.url();
    let prefix = "failover";
    let workers: Vec<ChildProcess> = (0..2).map(|_| spawn_worker(&url, prefix)).collect();
    for w in &workers {
        w.expect_line("READY", Duration::from_secs(30));
    }
    let client = Client::new(connect(&url, prefix, 16).await.unwrap());
    let started = Instant::now();
    let starter = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut expected = Vec::new();
            let mut unknown = Vec::new();
            for i in 0..500 {
                let cities: Vec<String> = (0..3).map(|k| format!("f{i}-{k}")).collect();
                let parent = i % 5 == 0;
                let id = format!("f{i}");
                let r = if parent {
                    client.start_with_id(fixtures::parent, &id, cities.clone()).await
                } else {
                    client.start_with_id(hello, &id, cities.clone()).await
                };
                match r {
                    Ok(_) => expected.push((id, parent, cities)),
                    // Not acknowledged (the master died under it): it may or may not exist.
                    Err(e) => {
                        println!("start {id} failed: {e}");
                        unknown.push((id, parent, cities));
                    }
                }
            }
            (expected, unknown)
        })
    };
    // Once some instances run, kill -9 the master of partition 0 (instances of every kind
    // live there) while starts and steps go on.
    eventually("instances run", async || {
        client.list(durable_runtime::InstanceQuery::new().with_limit(200)).await.unwrap().instances.len() >= 150
    })
    .await;
    let victim = cluster.master_of(&format!("{{{prefix}:p0}}:lease"));
    cluster.kill(victim);
    let killed_at = started.elapsed();
    println!("killed master {victim} at {killed_at:?}");
    let c = &cluster;
    tokio::task::block_in_place(|| c.wait_ok(Duration::from_secs(30))).expect("the replica takes over");
    println!("cluster ok again after {:?}", started.elapsed() - killed_at);
    assert!(!cluster.masters().contains(&victim));
    let (mut expected, unknown) = starter.await.unwrap();
    assert!(unknown.len() <= 5, "{} starts failed", unknown.len());
    for u in unknown {
        if client.status(&u.0).await.unwrap().is_some() {
            expected.push(u);
        }
    }
    assert!(expected.len() >= 495);
    check_all_completed(&client, &expected, Duration::from_secs(120)).await;
    println!("500 orchestrations through a master failover in {:?}", started.elapsed());
    for w in workers {
        w.kill9();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_a_password_is_reached_with_the_credentials_of_the_url() {
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start_with_password("s3cret")).await.unwrap();
    let url = cluster.url();
    assert!(url.starts_with("redis+cluster://:s3cret@"), "{url}");
    let e = connect(&url.replace(":s3cret@", ":wrong@"), "auth", 8).await.unwrap_err().to_string();
    assert!(e.contains("authentication failed") && !e.contains("s3cret"), "{e}");
    let backend = connect(&url, "auth", 8).await.unwrap();
    let w = worker_builder(backend.clone()).start().await.unwrap();
    let client = Client::new(backend);
    let id = client.start(hello, vec!["Bern".to_string()]).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<Vec<String>>().unwrap(), ["Hello Bern!"]);
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_makes_the_owner_read_its_partitions_again_under_new_epochs() {
    let mut cluster = start_cluster().await;
    let url = cluster.url();
    // A lease longer than the failover: renewals alone would keep the old epochs.
    let backend = Redis::builder(url.as_str())
        .prefix("runid")
        .partitions(16)
        .lease_duration(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    let w = worker_builder(backend.clone()).start().await.unwrap();
    eventually("the worker owns every partition", async || backend.owned_partitions().len() == 16).await;
    let before = backend.owned_partitions();
    let victim = cluster.master_of("{runid:p0}:lease");
    let on_victim: Vec<(u32, u64)> =
        before.iter().copied().filter(|(p, _)| cluster.master_of(&format!("{{runid:p{p}}}:lease")) == victim).collect();
    cluster.kill(victim);
    let c = &cluster;
    tokio::task::block_in_place(|| c.wait_ok(Duration::from_secs(30))).expect("the replica takes over");
    // The master of these partitions has a new run_id: each is taken again under a new epoch
    // (and read again from the start); the others keep theirs.
    eventually("the failed-over partitions have new epochs", async || {
        let now = backend.owned_partitions();
        on_victim.iter().all(|(p, e)| now.iter().any(|(q, f)| q == p && f > e))
    })
    .await;
    let now = backend.owned_partitions();
    for (p, e) in before.iter().filter(|b| !on_victim.contains(b)) {
        assert!(now.contains(&(*p, *e)), "partition {p} kept its epoch {e}: {now:?}");
    }
    let client = Client::new(backend.clone());
    let id = client.start(hello, vec!["Oslo".to_string()]).await.unwrap();
    client.wait_for_completion(&id, PATIENCE).await.unwrap();
    w.shutdown().await.unwrap();
}
