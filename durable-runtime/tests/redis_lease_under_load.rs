//! Lease renewal never waits behind other work: with every Redis round trip slowed down, a
//! burst of sub-orchestrations (thousands of outbox entries to drain) never lets a partition
//! lease expire under its owner, and no activity runs twice.

use durable_runtime::backend::Redis;
use durable_runtime::metrics::worker_metrics;
use durable_runtime::{Client, RuntimeStatus, Worker};
use durable_test_support::fixtures::{self, hello, say_hello};
use durable_test_support::leftovers::{Allow, check_nothing_left, purge_everything};
use durable_test_support::redis_server::RedisServer;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// Parents started at once; each runs one [`hello`] sub-orchestration with one activity.
const PARENTS: usize = 2_000;
const LEASE: Duration = Duration::from_secs(2);
const VISIBILITY: Duration = Duration::from_secs(4);
/// Added to every packet in each direction between the workers and Redis.
const DELAY: Duration = Duration::from_millis(5);

/// A TCP proxy to `127.0.0.1:upstream` that holds every chunk `delay` before passing it on (in
/// order, without limiting throughput); its port.
async fn delaying_proxy(upstream: u16, delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((down, _)) = listener.accept().await {
            let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)).await else { continue };
            let _ = down.set_nodelay(true);
            let _ = up.set_nodelay(true);
            let (dr, dw) = down.into_split();
            let (ur, uw) = up.into_split();
            forward(dr, uw, delay);
            forward(ur, dw, delay);
        }
    });
    port
}

/// Copy `from` to `to`, each chunk `delay` after it arrived.
fn forward(from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if from.readable().await.is_err() {
                break;
            }
            match from.try_read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send((tokio::time::Instant::now() + delay, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
    });
    tokio::spawn(async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if write_all(&mut to, &bytes).await.is_err() {
                break;
            }
        }
    });
}

/// Write all of `bytes` (tokio's `io-util` is not enabled here).
async fn write_all(to: &mut tokio::net::tcp::OwnedWriteHalf, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        to.writable().await?;
        match to.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn connect(url: &str) -> Redis {
    Redis::builder(url)
        .prefix("load")
        .lease_duration(LEASE)
        .activity_visibility_timeout(VISIBILITY)
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_redis_and_a_burst_of_sub_orchestrations_lose_no_lease() {
    let server = RedisServer::start();
    let proxy = delaying_proxy(server.port, DELAY).await;
    let slow_url = format!("redis://127.0.0.1:{proxy}");
    let direct = connect(&server.url()).await;
    let client = Client::new(direct);

    // Two workers behind the slow link; they split the partitions before the burst.
    let (a, b) = (connect(&slow_url).await, connect(&slow_url).await);
    let builder = |r: Redis| Worker::builder(r).orchestrator(hello).orchestrator(fixtures::parent).activity(say_hello);
    let wa = builder(a.clone()).start().await.unwrap();
    let wb = builder(b.clone()).start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while a.owned_partitions().len() + b.owned_partitions().len() != 8
        || a.owned_partitions().is_empty()
        || b.owned_partitions().is_empty()
    {
        assert!(Instant::now() < deadline, "the workers never split the partitions");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let m = worker_metrics();
    let lost_before = m.commits_lock_lost.load(Ordering::SeqCst);
    let started_before = m.activities_started.load(Ordering::SeqCst);
    let completed_before = m.activities_completed.load(Ordering::SeqCst);

    let t0 = Instant::now();
    let ids: Vec<String> = start_parents(&client, PARENTS).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut left = ids.clone();
    while !left.is_empty() {
        assert!(Instant::now() < deadline, "{} of {PARENTS} parents still running after 300 s", left.len());
        let mut still = Vec::new();
        for chunk in left.chunks(200) {
            let mut set = tokio::task::JoinSet::new();
            for (k, id) in chunk.iter().enumerate() {
                let (client, id) = (client.clone(), id.clone());
                set.spawn(async move { (k, client.status(&id).await) });
            }
            let mut statuses: Vec<_> = set.join_all().await;
            statuses.sort_by_key(|(k, _)| *k);
            for (id, (_, s)) in chunk.iter().zip(statuses) {
                let s = s.unwrap().expect("a started instance has a status");
                match s.runtime_status {
                    RuntimeStatus::Completed => {}
                    RuntimeStatus::Failed | RuntimeStatus::Terminated => panic!("{id} ended as {s:?}"),
                    _ => still.push(id.clone()),
                }
            }
        }
        left = still;
        if !left.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let lost = m.commits_lock_lost.load(Ordering::SeqCst) - lost_before;
    let started = m.activities_started.load(Ordering::SeqCst) - started_before;
    let completed = m.activities_completed.load(Ordering::SeqCst) - completed_before;
    println!(
        "{PARENTS} parents + {PARENTS} sub-orchestrations in {:?} over a link delayed {DELAY:?} each way \
         (lease {LEASE:?}): {lost} commits refused for a lost lease, {started} activity executions",
        t0.elapsed()
    );
    assert_eq!(lost, 0, "steps lost their partition lease under load");
    assert_eq!(started, PARENTS as u64, "every activity runs exactly once (executions started)");
    assert_eq!(completed, PARENTS as u64, "every activity runs exactly once (executions completed)");
    purge_everything(&client).await;
    wa.shutdown().await.unwrap();
    wb.shutdown().await.unwrap();
    check_nothing_left(&server.url(), "load", Allow::default(), Duration::from_secs(10)).await;
}

/// Start `n` [`fixtures::parent`]s, 200 at a time; their ids.
async fn start_parents(client: &Client, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    let all: Vec<usize> = (0..n).collect();
    for chunk in all.chunks(200) {
        let mut set = tokio::task::JoinSet::new();
        for &i in chunk {
            let client = client.clone();
            set.spawn(async move { client.start(fixtures::parent, vec![format!("city-{i}")]).await });
        }
        ids.extend(set.join_all().await.into_iter().map(|r| r.unwrap().to_string()));
    }
    ids
}
