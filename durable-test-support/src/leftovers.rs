//! What a Redis task hub holds once every instance is purged: nothing of any instance. The
//! check at the end of every fault test.

use std::time::{Duration, Instant};

/// The keys of a partition that stay when every instance is gone (see the key layout of
/// `durable::backend::Redis`).
pub const PARTITION_KEYS: &[&str] =
    &["ctl", "act", "tm", "tp", "ob", "oseq", "in", "idx", "fin", "lease", "epoch", "seq", "gen", "mark", "dead"];

/// The keys of the task hub itself.
const HUB_KEYS: &[&str] = &["workers", "partitions"];

/// Purge every finished instance and every entity `client` sees; how many of each.
pub async fn purge_everything(client: &durable::Client) -> (u64, usize) {
    let instances = client.purge_where(durable::InstanceQuery::new()).await.expect("purge_where");
    let entities = client.list_entities(None, usize::MAX).await.expect("list_entities");
    for e in &entities {
        client.purge_entity(&e.id.name, &e.id.key).await.expect("purge_entity");
    }
    (instances, entities.len())
}

/// What is allowed to remain.
#[derive(Clone, Copy, Debug, Default)]
pub struct Allow {
    /// Activity consumers (one per live worker and activity stream) of workers still running.
    pub live_workers: usize,
    /// Entries in the dead-letter streams.
    pub dead_letters: usize,
}

/// Wait (up to `patience`: consumers of killed workers are deleted by the live ones once idle
/// past the visibility timeout) until task hub `prefix` on the Redis at `url` holds nothing of
/// any instance — no record, history or timer key; no entry in a control, activity or outbox
/// stream; no pending activity; no timer; nothing in the listing indexes; no consumer but one
/// per live worker — and panic with what is left otherwise. Call it once every instance (and
/// entity) is purged.
pub async fn check_nothing_left(url: &str, prefix: &str, allow: Allow, patience: Duration) {
    let client = redis::Client::open(url).expect("a Redis URL");
    let mut c = client.get_multiplexed_async_connection().await.expect("connects to Redis");
    let deadline = Instant::now() + patience;
    loop {
        let left = leftovers(&mut c, prefix, allow).await;
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left behind in task hub {prefix}:\n  {}", left.join("\n  "));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What is left that should not be, one line each.
async fn leftovers(c: &mut redis::aio::MultiplexedConnection, prefix: &str, allow: Allow) -> Vec<String> {
    let mut left = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    for pattern in [format!("{{{prefix}:p*}}:*"), format!("{{{prefix}}}:*")] {
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(c)
                .await
                .expect("SCAN");
            keys.extend(batch);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
    let mut tags = std::collections::BTreeSet::new();
    for key in &keys {
        let Some((tag, rest)) = key.split_once("}:") else { continue };
        let tag = format!("{tag}}}");
        if tag == format!("{{{prefix}}}") {
            if !HUB_KEYS.contains(&rest) {
                left.push(format!("key {key}"));
            }
        } else if PARTITION_KEYS.contains(&rest) {
            tags.insert(tag);
        } else {
            left.push(format!("key {key}"));
        }
    }
    for tag in tags {
        let mut pipe = redis::pipe();
        for (cmd, key) in [("XLEN", "ctl"), ("XLEN", "act"), ("XLEN", "ob"), ("ZCARD", "tm"), ("HLEN", "tp")] {
            pipe.cmd(cmd).arg(format!("{tag}:{key}"));
        }
        for key in ["idx", "fin"] {
            pipe.cmd("ZCARD").arg(format!("{tag}:{key}"));
        }
        pipe.cmd("XLEN").arg(format!("{tag}:dead"));
        let counts: Vec<u64> = pipe.query_async(c).await.expect("counts");
        let names = ["control entries", "activity items", "outbox entries", "timers", "timer messages"];
        for (name, n) in names.iter().zip(&counts) {
            if *n > 0 {
                left.push(format!("{tag}: {n} {name}"));
            }
        }
        if counts[5] + counts[6] > 0 {
            left.push(format!("{tag}: {} in the listing index, {} in the finished index", counts[5], counts[6]));
        }
        if counts[7] as usize > allow.dead_letters {
            left.push(format!("{tag}: {} dead letters", counts[7]));
        }
        // The activity stream's consumer group: nothing pending, no consumer of a gone worker.
        let groups: redis::RedisResult<Vec<redis::Value>> =
            redis::cmd("XINFO").arg("GROUPS").arg(format!("{tag}:act")).query_async(c).await;
        if let Ok(groups) = groups {
            for g in groups {
                let fields: std::collections::HashMap<String, redis::Value> =
                    redis::from_redis_value(g).unwrap_or_default();
                let int = |k: &str| fields.get(k).and_then(|v| redis::from_redis_value::<u64>(v.clone()).ok());
                let (consumers, pending) = (int("consumers").unwrap_or(0), int("pending").unwrap_or(0));
                if pending > 0 {
                    left.push(format!("{tag}:act: {pending} pending activity items"));
                }
                if consumers as usize > allow.live_workers {
                    left.push(format!("{tag}:act: {consumers} consumers for {} live workers", allow.live_workers));
                }
            }
        }
    }
    left
}
