//! The `parked` scenario: what N idle instances cost. Each instance runs one activity and then
//! waits for an event that never comes; once all of them are parked the scenario reports the
//! memory they take in Redis (`INFO memory`, and `MEMORY USAGE` of every key of the run) and the
//! resident memory of this process, which runs the worker and the client.
//!
//! The benchmark keeps nothing per instance: ids are random (as `Client::start` makes them) and
//! only the first [`SAMPLES`] are kept, to be shown; so what this process holds for the parked
//! instances is the worker's and the client's share (and what the allocator kept of the start
//! burst: compare the peak, `VmHWM`).

use crate::WAIT;
use crate::server::Setting;
use crate::workload::{COUNTED, parked_on_event};
use durable::InstanceId;
use durable::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Instance ids kept to be shown (the first ones started).
const SAMPLES: usize = 2;
/// How long the parked instances are left alone before the resident memory is read again.
pub(crate) const IDLE: Duration = Duration::from_secs(10);

/// The Redis task hub of a run, for the parked scenario to look at its keys.
pub(crate) struct RedisHub {
    pub(crate) url: String,
    pub(crate) backend: durable::backend::Redis,
}

/// Resident memory of this process, from `/proc/self/status` (Linux), in bytes: now and peak.
#[derive(Clone, Copy)]
pub(crate) struct Rss {
    pub(crate) now: u64,
    pub(crate) peak: u64,
}

impl Rss {
    pub(crate) fn read() -> Option<Rss> {
        let s = std::fs::read_to_string("/proc/self/status").ok()?;
        Some(Rss { now: status_kb(&s, "VmRSS:")? * 1024, peak: status_kb(&s, "VmHWM:")? * 1024 })
    }
}

/// The value of a `Name:   123 kB` line of `/proc/<pid>/status`.
fn status_kb(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// A field `name:value` of an `INFO` reply.
fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok())
}

pub(crate) fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

/// `b` per instance, signed.
fn per(b: i64, n: u64) -> f64 {
    b as f64 / n as f64
}

/// What `INFO memory` and `DBSIZE` say at one moment.
#[derive(Clone, Copy)]
struct RedisMemory {
    used: u64,
    dataset: u64,
    keys: u64,
}

/// A connection to the hub's Redis, for looking at memory and keys.
struct Probe {
    conn: redis::aio::MultiplexedConnection,
    prefix: String,
}

impl Probe {
    async fn connect(hub: &RedisHub) -> Result<Probe, String> {
        let client = redis::Client::open(hub.url.as_str()).map_err(|e| format!("redis URL {}: {e}", hub.url))?;
        let conn = client.get_multiplexed_async_connection().await.map_err(|e| format!("connecting to Redis: {e}"))?;
        Ok(Probe { conn, prefix: hub.backend.prefix().to_string() })
    }

    async fn memory(&mut self) -> Result<RedisMemory, String> {
        let info: String =
            redis::cmd("INFO").arg("memory").query_async(&mut self.conn).await.map_err(|e| format!("INFO: {e}"))?;
        let keys: u64 = redis::cmd("DBSIZE").query_async(&mut self.conn).await.map_err(|e| format!("DBSIZE: {e}"))?;
        let field = |f: &str| info_field(&info, f).ok_or_else(|| format!("INFO memory has no {f}"));
        Ok(RedisMemory { used: field("used_memory")?, dataset: field("used_memory_dataset")?, keys })
    }

    /// `MEMORY USAGE` and `OBJECT ENCODING` of every key of the hub, summed by kind: `i`
    /// (instance records), `h` (histories), and the partitions' shared keys by name.
    async fn breakdown(&mut self) -> Result<BTreeMap<String, KindUsage>, String> {
        let mut kinds: BTreeMap<String, KindUsage> = BTreeMap::new();
        let mut cursor = 0u64;
        loop {
            // `{prefix:pN}:…` (partition keys) and `{prefix}:…` (the hub's own).
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{{{}[:}}]*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.conn)
                .await
                .map_err(|e| format!("SCAN: {e}"))?;
            if !keys.is_empty() {
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.cmd("MEMORY").arg("USAGE").arg(k).arg("SAMPLES").arg(0);
                    pipe.cmd("OBJECT").arg("ENCODING").arg(k);
                }
                let replies: Vec<(Option<u64>, Option<String>)> =
                    pipe.query_async(&mut self.conn).await.map_err(|e| format!("MEMORY USAGE: {e}"))?;
                for (k, (bytes, encoding)) in keys.iter().zip(replies) {
                    let u = kinds.entry(key_kind(k)).or_default();
                    u.keys += 1;
                    u.bytes += bytes.unwrap_or(0);
                    *u.encodings.entry(encoding.unwrap_or_else(|| "gone".into())).or_default() += 1;
                }
            }
            cursor = next;
            if cursor == 0 {
                return Ok(kinds);
            }
        }
    }

    /// One instance's keys, field by field.
    async fn show_instance(&mut self, hub: &RedisHub, id: &str) -> Result<(), String> {
        let tag = format!("{{{}:p{}}}", self.prefix, hub.backend.partition_of(id));
        let (ik, hk) = (format!("{tag}:i:{id}"), format!("{tag}:h:{id}"));
        let mut pipe = redis::pipe();
        for k in [&ik, &hk] {
            pipe.cmd("MEMORY").arg("USAGE").arg(k).arg("SAMPLES").arg(0);
            pipe.cmd("OBJECT").arg("ENCODING").arg(k);
            pipe.cmd("GET").arg(k);
        }
        let v: Vec<redis::Value> = pipe.query_async(&mut self.conn).await.map_err(|e| format!("{ik}: {e}"))?;
        let iu: Option<u64> = value(&v, 0)?;
        let ie: Option<String> = value(&v, 1)?;
        let record: Vec<u8> = value(&v, 2)?;
        let hu: Option<u64> = value(&v, 3)?;
        let he: Option<String> = value(&v, 4)?;
        let history: Vec<u8> = value(&v, 5)?;
        let enc = |e: Option<String>| e.unwrap_or_else(|| "missing".into());
        // The record: `<generation> <m0> <status> <history length> <s> <h>\n`, s bytes of
        // status JSON, h bytes of history (`o`: it is in its own key), then the snapshot.
        let nl = record.iter().position(|&b| b == b'\n').unwrap_or(0);
        let header = String::from_utf8_lossy(&record[..nl]).into_owned();
        let f: Vec<&str> = header.split(' ').collect();
        let s: usize = f.get(4).and_then(|n| n.parse().ok()).unwrap_or(0);
        let h: usize = f.get(5).and_then(|n| n.parse().ok()).unwrap_or(0);
        let st_end = (nl + 1 + s).min(record.len());
        let h_end = (st_end + h).min(record.len());
        let status = String::from_utf8_lossy(&record[(nl + 1).min(st_end)..st_end]).into_owned();
        println!("  instance {id}:");
        println!(
            "    {ik}: MEMORY USAGE {} bytes, {}; {} bytes: header {} ({header:?}), status {s}, history {h}, snapshot {}",
            iu.unwrap_or(0),
            enc(ie),
            record.len(),
            nl + 1,
            record.len() - h_end
        );
        println!("      status {status}");
        println!("      history (as text) {:?}", String::from_utf8_lossy(&record[st_end..h_end]));
        println!("      snapshot (as text) {:?}", String::from_utf8_lossy(&record[h_end..]));
        println!(
            "    {hk} (a history over 2 KB): MEMORY USAGE {} bytes, {}; {} bytes",
            hu.unwrap_or(0),
            enc(he),
            history.len()
        );
        Ok(())
    }
}

/// Reply `i` of a pipeline, as a `T`.
fn value<T: redis::FromRedisValue>(replies: &[redis::Value], i: usize) -> Result<T, String> {
    let v = replies.get(i).cloned().unwrap_or(redis::Value::Nil);
    redis::from_redis_value(v).map_err(|e| format!("reply {i}: {e}"))
}

/// The kind of a key of the hub: `i` and `h` (per instance), else the rest after the tag.
fn key_kind(key: &str) -> String {
    let rest = key.split_once("}:").map_or(key, |(_, r)| r);
    match rest.split_once(':') {
        Some((kind, _)) => format!("{kind}:<id>"),
        None => rest.to_string(),
    }
}

/// The keys of one kind, their bytes and their encodings.
#[derive(Default)]
struct KindUsage {
    keys: u64,
    bytes: u64,
    encodings: BTreeMap<String, u64>,
}

/// How the parked scenario starts its instances and what it does at the end.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ParkedOptions {
    /// Start this many, wait until they are parked, and go on (`None`: all at once).
    pub(crate) wave: Option<u64>,
    /// How long to leave them parked before the resident memory is read again.
    pub(crate) idle: Duration,
    /// Exit once reported, nothing freed (for heap profilers): done by the caller, which
    /// first stops the benchmark's own redis-server if it started one.
    pub(crate) exit_parked: bool,
}

/// Start instances `from..to` of `parked_on_event` from 32 concurrent callers; the first
/// [`SAMPLES`] ids go to `samples`.
async fn start_range(client: &Client, from: u64, to: u64, samples: &mut Vec<(u64, InstanceId)>) -> Result<(), String> {
    let mut keep = |i: u64, r: Result<InstanceId, durable::Error>| -> Result<(), String> {
        let id = r.map_err(|e| format!("start: {e}"))?;
        if (i as usize) < SAMPLES {
            samples.push((i, id));
        }
        Ok(())
    };
    let mut starting = tokio::task::JoinSet::new();
    for i in from..to {
        if starting.len() >= 32
            && let Some(r) = starting.join_next().await
        {
            let (j, id) = r.map_err(|e| format!("a starting task failed: {e}"))?;
            keep(j, id)?;
        }
        let client = client.clone();
        starting.spawn(async move { (i, client.start(parked_on_event, i).await) });
    }
    while let Some(r) = starting.join_next().await {
        let (j, id) = r.map_err(|e| format!("a starting task failed: {e}"))?;
        keep(j, id)?;
    }
    Ok(())
}

/// Wait until `n` instances are parked: every activity ran, and no activity item or inbox
/// message is left (the step that consumed the activity's result, and so parked the instance,
/// has been committed).
async fn wait_parked(client: &Client, n: u64) -> Result<(), String> {
    let t0 = Instant::now();
    loop {
        let d = client.queue_depths().await.map_err(|e| format!("queue depths: {e}"))?;
        let d = d.ok_or("the backend does not report queue depths")?;
        if COUNTED.load(Ordering::Relaxed) >= n && d.activities == 0 && d.messages == 0 {
            return Ok(());
        }
        if t0.elapsed() > WAIT {
            return Err(format!(
                "not all {n} parked after {WAIT:?}: {} activities ran, {} activity items and {} messages queued",
                COUNTED.load(Ordering::Relaxed),
                d.activities,
                d.messages
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Start `n` instances of `parked_on_event` (32 callers at once, in waves if asked), wait until
/// every one has run its activity and is parked, leave them alone for a while, and report the
/// memory they take. The figures' lines end with `setting`.
pub(crate) async fn parked(
    client: &Client,
    n: u64,
    hub: Option<&RedisHub>,
    opts: &ParkedOptions,
    setting: &Setting,
) -> Result<(), String> {
    let mut probe = match hub {
        Some(h) => Some(Probe::connect(h).await?),
        None => None,
    };
    COUNTED.store(0, Ordering::Relaxed);
    let rss0 = Rss::read();
    let mem0 = match &mut probe {
        Some(p) => Some(p.memory().await?),
        None => None,
    };
    let t0 = Instant::now();
    let wave = opts.wave.unwrap_or(n).clamp(1, n.max(1));
    let mut samples: Vec<(u64, InstanceId)> = Vec::new();
    let mut waves: Vec<(u64, Option<Rss>)> = Vec::new();
    let mut rss_started = None;
    let mut started = Duration::ZERO;
    let mut from = 0;
    while from < n {
        let to = (from + wave).min(n);
        start_range(client, from, to, &mut samples).await?;
        started = t0.elapsed();
        rss_started = Rss::read();
        wait_parked(client, to).await?;
        waves.push((to, Rss::read()));
        from = to;
    }
    samples.sort_by_key(|(i, _)| *i);
    let parked = t0.elapsed();
    let rss_parked = Rss::read();
    let mem1 = match &mut probe {
        Some(p) => Some(p.memory().await?),
        None => None,
    };
    tokio::time::sleep(opts.idle).await;
    let rss_idle = Rss::read();
    let idle = opts.idle;

    let how = if wave < n { format!("in waves of {wave}, each parked before the next") } else { "all at once".into() };
    println!(
        "parked: {n} instances, each one activity and then wait_for_event (started by 32 concurrent callers, {how}) {setting}"
    );
    println!("  all started in {:.3} s; all parked in {:.3} s {setting}", started.as_secs_f64(), parked.as_secs_f64());
    for (_, id) in &samples {
        let st = client.state(id).await.map_err(|e| format!("state of {id}: {e}"))?;
        let at = st.as_ref().and_then(|s| s["at"].as_str().map(String::from)).unwrap_or_else(|| "-".into());
        let status = client.status(id).await.map_err(|e| format!("status of {id}: {e}"))?;
        let rs = status.map(|s| s.runtime_status.to_string()).unwrap_or_else(|| "missing".into());
        println!("  sample {id}: {rs}, suspended at {at:?}");
    }
    if let (Some(a), Some(b)) = (mem0, mem1) {
        let used = b.used as i64 - a.used as i64;
        let dataset = b.dataset as i64 - a.dataset as i64;
        println!("  Redis INFO memory, before -> parked:");
        println!(
            "    used_memory {:.1} MB -> {:.1} MB: +{:.1} MB, {:.0} bytes per instance {setting}",
            mb(a.used),
            mb(b.used),
            used as f64 / 1e6,
            per(used, n)
        );
        println!(
            "    used_memory_dataset {:.1} MB -> {:.1} MB: {:.0} bytes per instance; keys {} -> {} ({:.2} per instance) {setting}",
            mb(a.dataset),
            mb(b.dataset),
            per(dataset, n),
            a.keys,
            b.keys,
            (b.keys as f64 - a.keys as f64) / n as f64
        );
    }
    match (rss0, rss_started, rss_parked, rss_idle) {
        (Some(a), Some(s), Some(p), Some(i)) => {
            println!(
                "  this process (worker and client; the benchmark keeps {SAMPLES} ids, nothing else per instance):"
            );
            println!(
                "    VmRSS before {:.1} MB, all started {:.1} MB, all parked {:.1} MB, {} s later {:.1} MB; peak (VmHWM) {:.1} MB {setting}",
                mb(a.now),
                mb(s.now),
                mb(p.now),
                idle.as_secs(),
                mb(i.now),
                mb(i.peak)
            );
            println!(
                "    growth while parked: {:.0} bytes per instance (before -> {} s after all parked) {setting}",
                per(i.now as i64 - a.now as i64, n),
                idle.as_secs()
            );
        }
        _ => println!("  resident memory: not available (no /proc/self/status)"),
    }
    if waves.len() > 1 {
        let curve: Vec<String> =
            waves.iter().filter_map(|(k, r)| Some(format!("{k}: {:.1}", mb(r.as_ref()?.now)))).collect();
        println!("    VmRSS (MB) once each wave is parked, by instances parked: {}", curve.join(", "));
    }
    if let (Some(p), Some(h)) = (&mut probe, hub) {
        for (_, id) in &samples {
            p.show_instance(h, id.as_str()).await?;
        }
        println!("  every key of the run (MEMORY USAGE ... SAMPLES 0, summed by kind):");
        let kinds = p.breakdown().await?;
        let total: u64 = kinds.values().map(|k| k.bytes).sum();
        for (kind, u) in &kinds {
            let enc: Vec<String> = u.encodings.iter().map(|(e, c)| format!("{e} {c}")).collect();
            println!(
                "    {kind:<12} {:>7} keys {:>12} bytes = {:>7.1} per instance  [{}]",
                u.keys,
                u.bytes,
                u.bytes as f64 / n as f64,
                enc.join(", ")
            );
        }
        println!(
            "    {:<12} {:>7}      {:>12} bytes = {:>7.1} per instance {setting}",
            "all",
            "",
            total,
            total as f64 / n as f64
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_status_and_info_fields() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(status_kb(status, "VmRSS:"), Some(1024));
        assert_eq!(status_kb(status, "VmHWM:"), Some(2048));
        assert_eq!(status_kb(status, "VmSwap:"), None);
        let info = "# Memory\r\nused_memory:1000\r\nused_memory_human:1000B\r\nused_memory_dataset:600\r\n";
        assert_eq!(info_field(info, "used_memory"), Some(1000));
        assert_eq!(info_field(info, "used_memory_dataset"), Some(600));
        assert_eq!(info_field(info, "used_memory_peak"), None);
    }

    #[test]
    fn keys_are_grouped_by_kind() {
        assert_eq!(key_kind("{durable-bench-1-0:p3}:i:abc-def"), "i:<id>");
        assert_eq!(key_kind("{durable-bench-1-0:p3}:h:abc:def"), "h:<id>");
        assert_eq!(key_kind("{durable-bench-1-0:p3}:idx"), "idx");
        assert_eq!(key_kind("{durable-bench-1-0}:workers"), "workers");
    }
}
