//! The `backlog` scenario (Redis only): work queued while no worker runs, then one worker
//! started on it. N starts (default 1,000,000) of an orchestration that finishes in its first
//! step, and `--signals S` (default 200,000) signals to one entity, are queued first; the
//! worker then drains them. Reported: the resident memory of this process (which runs the
//! worker and the client) while it drains, what the backend held in memory
//! (`Redis::inbox_stats`), and Redis's `SLOWLOG`: the longest command (a commit script, mostly)
//! against the lease duration, which it must stay far below.

use crate::parked::{Rss, mb};
use crate::scenarios::Tally;
use crate::server::Setting;
use crate::workload::sequence;
use crate::{WAIT, connect_redis, start};
use durable::backend::Backend;
use durable::prelude::*;
use std::sync::Arc;
use std::time::Instant;

/// Resident memory of this process now (`VmRSS`), in bytes; 0 where `/proc` cannot tell.
fn rss() -> u64 {
    Rss::read().map_or(0, |r| r.now)
}

/// Queue `n` starts and `signals` signals to one entity, then drain them with one worker; the
/// figures' lines end with `setting`.
pub(crate) async fn backlog(
    url: &str,
    n: u64,
    signals: u64,
    concurrency: Option<usize>,
    setting: &Setting,
) -> Result<(), String> {
    let redis = connect_redis(url).await?;
    let backend: Arc<dyn Backend> = Arc::new(redis.clone());
    let client = Client::from_arc(backend.clone());
    let admin = redis::Client::open(url).map_err(|e| format!("redis URL {url}: {e}"))?;
    let mut admin = admin.get_multiplexed_async_connection().await.map_err(|e| format!("connecting: {e}"))?;

    // Queue, 64 requests in flight.
    let t0 = Instant::now();
    let senders = 64u64;
    let mut tasks = tokio::task::JoinSet::new();
    let key = format!("backlog-{}", std::process::id());
    for s in 0..senders {
        let client = client.clone();
        let key = key.clone();
        tasks.spawn(async move {
            let mut i = s;
            while i < n.max(signals) {
                if i < n {
                    client.start(sequence, 0).await?;
                }
                if i < signals {
                    client.signal_entity::<Tally>(key.clone()).add(1).await?;
                }
                i += senders;
            }
            Ok::<(), durable::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| format!("a sender failed: {e}"))?.map_err(|e| format!("queueing: {e}"))?;
    }
    let queued = t0.elapsed();
    println!("queued {n} starts and {signals} signals to one entity in {:.1} s {setting}", queued.as_secs_f64());

    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(1000)
        .arg("slowlog-max-len")
        .arg(100_000)
        .query_async(&mut admin)
        .await
        .map_err(|e| format!("CONFIG SET: {e}"))?;
    let _: () =
        redis::cmd("SLOWLOG").arg("RESET").query_async(&mut admin).await.map_err(|e| format!("SLOWLOG: {e}"))?;

    let rss0 = rss();
    let t1 = Instant::now();
    let (worker, _) = start(&backend, concurrency).await?;
    let mut peak = rss0;
    let deadline = Instant::now() + WAIT;
    loop {
        peak = peak.max(rss());
        let depths = client.queue_depths().await.map_err(|e| format!("queue depths: {e}"))?;
        let entity = client.entity_state::<Tally>(key.clone()).await.map_err(|e| format!("entity: {e}"))?;
        let applied = entity.map_or(0, |t| t.count);
        if depths.as_ref().is_some_and(|d| d.messages == 0 && d.activities == 0) && applied == signals {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("not drained in {WAIT:?}: {depths:?}, {applied} signals applied"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = t1.elapsed();
    let stats = redis.inbox_stats();
    let rss1 = rss();
    worker.shutdown().await.map_err(|e| format!("worker shutdown: {e}"))?;

    let slow: Vec<(u64, u64, u64, Vec<String>)> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query_async::<Vec<redis::Value>>(&mut admin)
        .await
        .map_err(|e| format!("SLOWLOG GET: {e}"))?
        .into_iter()
        .filter_map(|v| match v {
            redis::Value::Array(a) if a.len() >= 4 => {
                let int = |v: &redis::Value| redis::from_redis_value::<u64>(v.clone()).unwrap_or(0);
                let args = redis::from_redis_value::<Vec<String>>(a[3].clone()).unwrap_or_default();
                Some((int(&a[0]), int(&a[1]), int(&a[2]), args))
            }
            _ => None,
        })
        .collect();
    println!(
        "drained in {:.1} s ({:.0} starts/s with the signals) {setting}",
        drained.as_secs_f64(),
        n as f64 / drained.as_secs_f64()
    );
    println!(
        "worker process RSS: {:.1} MB before the worker started, peak {:.1} MB while draining, {:.1} MB once drained {setting}",
        mb(rss0),
        mb(peak),
        mb(rss1)
    );
    println!(
        "backend: at most {} control entries held at once (read-ahead 4,096 per partition, 8 partitions), largest step {} messages {setting}",
        stats.peak_held, stats.largest_step
    );
    let mut slow = slow;
    slow.sort_by_key(|s| std::cmp::Reverse(s.2));
    let longest: Vec<String> = slow
        .iter()
        .take(3)
        .map(|(_, _, us, args)| {
            let what: Vec<&str> = args.iter().take(2).map(String::as_str).collect();
            format!("{:.1} ms ({})", *us as f64 / 1000.0, what.join(" "))
        })
        .collect();
    println!(
        "SLOWLOG: {} commands over 1 ms; the longest: {} (the lease: 5,000 ms) {setting}",
        slow.len(),
        if longest.is_empty() { "none".to_string() } else { longest.join(", ") }
    );
    Ok(())
}
