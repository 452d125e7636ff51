//! Benchmarks of `durable`: throughput and latency of orchestrations end to end (client, worker,
//! engine, backend), on the embedded `Memory` backend or on Redis.
//!
//! ```text
//! cargo run --release -p durable-bench -- SCENARIO [--backend memory|redis] [--redis URL] [--n N]
//!                                                  [--concurrency C] [--runs R] [--concurrent-waits]
//! ```
//!
//! Scenarios (see `docs/performance.md` for the figures and the design targets):
//!
//! - `five-activity`: N instances (default 2,000) started at once, each calling 5 activities in
//!   sequence; orchestrations/s from the first start to the last completion. The instances are
//!   awaited one after the other, or with `--concurrent-waits` all at once (one task each).
//! - `sequential`: one instance calling N activities (default 2,000) in sequence; steps/s.
//! - `fan-out`: one instance fanning out N activities (default 10,000) and awaiting them with
//!   `ctx.when_all`; activities/s.
//! - `latency`: R runs (default 200) of a three-activity orchestration on an idle system, one at
//!   a time; p50/p99 of start → `wait_for_completion`.
//! - `history-length`: one instance awaiting N activities (default 4,000) in a loop, 10 times;
//!   the time per step at the beginning of the history versus after 1,000 events and later.
//! - `all`: every scenario above, with its default size.
//!
//! Activities do no work: the figures are the cost of the runtime itself.

use durable::backend::{Backend, Memory};
use durable::prelude::*;
use durable::{InstanceId, RuntimeStatus, WorkerHandle};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How long any single wait may take before the benchmark reports a hang.
const WAIT: Duration = Duration::from_secs(600);

const USAGE: &str = "usage: durable-bench SCENARIO [--backend memory|redis] [--redis URL] [--n N] [--concurrency C] [--runs R] [--concurrent-waits]
scenarios: five-activity, sequential, fan-out, latency, history-length, all";

// ------------------------------------------------------------------ workload

#[activity]
async fn noop(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

/// Arrival times of `timed` activity calls, for the history-length scenario.
static ARRIVALS: Mutex<Vec<Instant>> = Mutex::new(Vec::new());

#[activity]
async fn timed(n: u64) -> Result<u64, ActivityError> {
    ARRIVALS.lock().unwrap_or_else(|p| p.into_inner()).push(Instant::now());
    Ok(n + 1)
}

#[orchestrator]
async fn five_activities(ctx: OrchestrationContext, n: u64) -> Result<u64, OrchestrationError> {
    let a = ctx.call_activity(noop, n).await?;
    let b = ctx.call_activity(noop, a).await?;
    let c = ctx.call_activity(noop, b).await?;
    let d = ctx.call_activity(noop, c).await?;
    let e = ctx.call_activity(noop, d).await?;
    Ok(e)
}

#[orchestrator]
async fn three_activities(ctx: OrchestrationContext, n: u64) -> Result<u64, OrchestrationError> {
    let a = ctx.call_activity(noop, n).await?;
    let b = ctx.call_activity(noop, a).await?;
    let c = ctx.call_activity(noop, b).await?;
    Ok(c)
}

#[orchestrator]
async fn sequence(ctx: OrchestrationContext, n: u64) -> Result<u64, OrchestrationError> {
    let mut x = 0;
    for _ in 0..n {
        x = ctx.call_activity(noop, x).await?;
    }
    Ok(x)
}

#[orchestrator]
async fn timed_sequence(ctx: OrchestrationContext, n: u64) -> Result<u64, OrchestrationError> {
    let mut x = 0;
    for _ in 0..n {
        x = ctx.call_activity(timed, x).await?;
    }
    Ok(x)
}

#[orchestrator]
async fn fan_out(ctx: OrchestrationContext, n: u64) -> Result<u64, OrchestrationError> {
    let mut tasks = Vec::new();
    for i in 0..n {
        tasks.push(ctx.call_activity(noop, i));
    }
    let results = ctx.when_all(tasks).await?;
    Ok(results.iter().sum())
}

// ------------------------------------------------------------------ options

#[derive(Clone, Copy, Debug, PartialEq)]
enum Scenario {
    FiveActivity,
    Sequential,
    FanOut,
    Latency,
    HistoryLength,
    EntityHot,
    Entities,
}

impl Scenario {
    const ALL: [Scenario; 7] = [
        Scenario::FiveActivity,
        Scenario::Sequential,
        Scenario::FanOut,
        Scenario::Latency,
        Scenario::HistoryLength,
        Scenario::EntityHot,
        Scenario::Entities,
    ];

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "five-activity" => Self::FiveActivity,
            "sequential" => Self::Sequential,
            "fan-out" => Self::FanOut,
            "latency" => Self::Latency,
            "history-length" => Self::HistoryLength,
            "entity-hot" => Self::EntityHot,
            "entities" => Self::Entities,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::FiveActivity => "five-activity",
            Self::Sequential => "sequential",
            Self::FanOut => "fan-out",
            Self::Latency => "latency",
            Self::HistoryLength => "history-length",
            Self::EntityHot => "entity-hot",
            Self::Entities => "entities",
        }
    }

    fn default_n(self) -> u64 {
        match self {
            Self::FiveActivity => 2_000,
            Self::Sequential => 2_000,
            Self::FanOut => 10_000,
            Self::Latency => 200,
            Self::HistoryLength => 4_000,
            Self::EntityHot => 20_000,
            Self::Entities => 100_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum BackendKind {
    Memory,
    Redis(String),
}

#[derive(Debug)]
struct Options {
    scenarios: Vec<Scenario>,
    backend: BackendKind,
    n: Option<u64>,
    concurrency: Option<usize>,
    /// five-activity: wait for every instance at once rather than one after the other.
    concurrent_waits: bool,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut scenarios = None;
    let mut backend = "memory".to_string();
    let mut redis_url = "redis://127.0.0.1:6379".to_string();
    let mut n = None;
    let mut concurrency = None;
    let mut concurrent_waits = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().cloned().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match a.as_str() {
            "--backend" => backend = value("--backend")?,
            "--redis" => redis_url = value("--redis")?,
            "--n" | "--runs" => {
                let v = value(a)?;
                n = Some(v.parse().map_err(|_| format!("{a}: not a number: {v:?}"))?);
            }
            "--concurrency" => {
                let v = value(a)?;
                concurrency = Some(v.parse().map_err(|_| format!("--concurrency: not a number: {v:?}"))?);
            }
            "--concurrent-waits" => concurrent_waits = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            "all" if scenarios.is_none() => scenarios = Some(Scenario::ALL.to_vec()),
            s if scenarios.is_none() && !s.starts_with('-') => {
                scenarios = Some(vec![Scenario::parse(s).ok_or_else(|| format!("unknown scenario {s:?}\n{USAGE}"))?]);
            }
            other => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
        }
    }
    let backend = match backend.as_str() {
        "memory" => BackendKind::Memory,
        "redis" => BackendKind::Redis(redis_url),
        other => return Err(format!("unknown backend {other:?}: memory or redis\n{USAGE}")),
    };
    let scenarios = scenarios.ok_or_else(|| format!("no scenario given\n{USAGE}"))?;
    Ok(Options { scenarios, backend, n, concurrency, concurrent_waits })
}

// ------------------------------------------------------------------ setup

async fn connect(kind: &BackendKind) -> Result<Arc<dyn Backend>, String> {
    match kind {
        BackendKind::Memory => Ok(Arc::new(Memory::new())),
        BackendKind::Redis(url) => connect_redis(url).await,
    }
}

/// A Redis backend on a task hub (key prefix) of its own, so that runs never see each other's
/// instances: `durable-bench-<pid>-<n>`. Its keys are left in Redis afterwards; delete them with
/// `redis-cli --scan --pattern '{durable-bench-*' | xargs -r redis-cli del`.
async fn connect_redis(url: &str) -> Result<Arc<dyn Backend>, String> {
    static HUBS: AtomicU32 = AtomicU32::new(0);
    let prefix = format!("durable-bench-{}-{}", std::process::id(), HUBS.fetch_add(1, Ordering::Relaxed));
    let redis = durable::backend::Redis::builder(url)
        .prefix(prefix)
        .connect()
        .await
        .map_err(|e| format!("connecting to Redis at {url}: {e}"))?;
    Ok(Arc::new(redis))
}

/// A worker running every benchmark orchestrator and activity, and a client, on `backend`.
async fn start(backend: &Arc<dyn Backend>, concurrency: Option<usize>) -> Result<(WorkerHandle, Client), String> {
    let mut builder = Worker::builder_arc(backend.clone())
        .orchestrator(five_activities)
        .orchestrator(three_activities)
        .orchestrator(sequence)
        .orchestrator(timed_sequence)
        .orchestrator(fan_out)
        .activity(noop)
        .activity(timed)
        .entity::<Tally>();
    if let Some(c) = concurrency {
        builder = builder.max_concurrent_orchestrations(c).max_concurrent_activities(c);
    }
    let worker = builder.start().await.map_err(|e| format!("starting the worker: {e}"))?;
    Ok((worker, Client::from_arc(backend.clone())))
}

/// Wait for `id` and check that it completed with `expected`.
async fn finish(client: &Client, id: &InstanceId, expected: u64) -> Result<(), String> {
    let s = client.wait_for_completion(id, WAIT).await.map_err(|e| format!("waiting for {id}: {e}"))?;
    if s.runtime_status != RuntimeStatus::Completed {
        return Err(format!("{id} ended {} ({:?})", s.runtime_status, s.reason));
    }
    let out = s.output::<u64>().map_err(|e| format!("output of {id}: {e}"))?;
    if out != expected {
        return Err(format!("{id} returned {out}, expected {expected}"));
    }
    Ok(())
}

fn per_second(count: u64, d: Duration) -> f64 {
    count as f64 / d.as_secs_f64()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The value at quantile `q` of sorted `v`.
fn quantile(v: &[Duration], q: f64) -> Duration {
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

// ------------------------------------------------------------------ scenarios

/// The entity of the entity scenarios.
#[derive(Default, Serialize, Deserialize)]
struct Tally {
    sum: u64,
    count: u64,
}

#[entity]
impl Tally {
    fn add(&mut self, n: u64) {
        self.sum += n;
        self.count += 1;
    }
}

/// `per_entity` signals to each of `entities` entities, sent by 16 concurrent senders; timed
/// until every entity has applied all of them (checked by its count and sum).
async fn entity_signals(client: &Client, entities: u64, per_entity: u64) -> Result<(), String> {
    let run = std::process::id();
    let key = |e: u64| format!("bench-{run}-{e}");
    let t0 = Instant::now();
    let senders = 16u64;
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..senders {
        let client = client.clone();
        tasks.spawn(async move {
            let mut i = s;
            while i < entities * per_entity {
                client.signal_entity::<Tally>(format!("bench-{run}-{}", i % entities)).add(1).await?;
                i += senders;
            }
            Ok::<(), durable::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| format!("a sender failed: {e}"))?.map_err(|e| format!("signal: {e}"))?;
    }
    let sent = t0.elapsed();
    let deadline = Instant::now() + WAIT;
    for e in 0..entities {
        loop {
            let t = client.entity_state::<Tally>(key(e)).await.map_err(|e| format!("state: {e}"))?;
            if t.as_ref().is_some_and(|t| t.count == per_entity && t.sum == per_entity) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("entity {e} did not apply all {per_entity} signals in time"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let d = t0.elapsed();
    let total = entities * per_entity;
    println!("entity signals: {entities} entities x {per_entity} signals from 16 concurrent senders");
    println!("  sent in {:.3} s; all applied in {:.3} s", sent.as_secs_f64(), d.as_secs_f64());
    println!("  {:.0} signals/s applied", per_second(total, d));
    Ok(())
}

async fn five_activity(client: &Client, n: u64, concurrent_waits: bool) -> Result<(), String> {
    let t0 = Instant::now();
    // Starts come from many callers at once (as on a server); 32 in flight.
    let mut starting = tokio::task::JoinSet::new();
    let mut ids = vec![None; n as usize];
    for i in 0..n {
        if starting.len() >= 32
            && let Some(r) = starting.join_next().await
        {
            let (j, id): (u64, Result<durable::InstanceId, durable::Error>) =
                r.map_err(|e| format!("a starting task failed: {e}"))?;
            ids[j as usize] = Some(id.map_err(|e| format!("start: {e}"))?);
        }
        let client = client.clone();
        starting.spawn(async move { (i, client.start(five_activities, i).await) });
    }
    while let Some(r) = starting.join_next().await {
        let (j, id) = r.map_err(|e| format!("a starting task failed: {e}"))?;
        ids[j as usize] = Some(id.map_err(|e| format!("start: {e}"))?);
    }
    let ids: Vec<durable::InstanceId> = ids.into_iter().map(|i| i.expect("every instance started")).collect();
    let started = t0.elapsed();
    if concurrent_waits {
        // One waiting task per instance, as a server answering each request would have.
        let mut waits = tokio::task::JoinSet::new();
        for (i, id) in ids.into_iter().enumerate() {
            let client = client.clone();
            waits.spawn(async move { finish(&client, &id, i as u64 + 5).await });
        }
        while let Some(r) = waits.join_next().await {
            r.map_err(|e| format!("a waiting task failed: {e}"))??;
        }
    } else {
        // One waiter at a time: the total is the time until the last one completes.
        for (i, id) in ids.iter().enumerate() {
            finish(client, id, i as u64 + 5).await?;
        }
    }
    let d = t0.elapsed();
    let waits = if concurrent_waits { "one concurrent waiter per instance" } else { "waited one at a time" };
    println!("five-activity: {n} instances x 5 activities (6 steps each), {waits}");
    println!("  started all in {:.1} ms; all completed in {:.3} s", started.as_secs_f64() * 1e3, d.as_secs_f64());
    println!("  {:.0} orchestrations/s", per_second(n, d));
    println!("  {:.0} activities/s, {:.0} orchestration steps/s", per_second(5 * n, d), per_second(6 * n, d));
    Ok(())
}

async fn sequential(client: &Client, n: u64) -> Result<(), String> {
    let t0 = Instant::now();
    let id = client.start(sequence, n).await.map_err(|e| format!("start: {e}"))?;
    finish(client, &id, n).await?;
    let d = t0.elapsed();
    println!("sequential: one instance, {n} activities in sequence ({} steps)", n + 1);
    println!(
        "  {:.3} s; {:.0} steps/s ({:.1} us per step)",
        d.as_secs_f64(),
        per_second(n + 1, d),
        micros(d / (n as u32 + 1))
    );
    Ok(())
}

async fn fan_out_in(client: &Client, n: u64) -> Result<(), String> {
    let t0 = Instant::now();
    let id = client.start(fan_out, n).await.map_err(|e| format!("start: {e}"))?;
    finish(client, &id, n * (n + 1) / 2).await?;
    let d = t0.elapsed();
    let history = client.history(&id).await.map_err(|e| format!("history: {e}"))?;
    let steps = history.iter().filter(|e| matches!(e.kind, durable::EventKind::OrchestratorStarted)).count();
    println!("fan-out: one instance, {n} activities in parallel, when_all");
    println!("  {:.3} s; {:.0} activities/s", d.as_secs_f64(), per_second(n, d));
    println!("  {steps} orchestration steps ({} history events)", history.len());
    Ok(())
}

async fn latency(client: &Client, runs: u64) -> Result<(), String> {
    // Warm up (allocator, first-use paths), not measured.
    for i in 0..10 {
        let id = client.start(three_activities, i).await.map_err(|e| format!("start: {e}"))?;
        finish(client, &id, i + 3).await?;
    }
    let mut v = Vec::with_capacity(runs as usize);
    for i in 0..runs {
        let t0 = Instant::now();
        let id = client.start(three_activities, i).await.map_err(|e| format!("start: {e}"))?;
        finish(client, &id, i + 3).await?;
        v.push(t0.elapsed());
    }
    v.sort();
    let mean = v.iter().sum::<Duration>() / runs as u32;
    println!("latency: {runs} runs of a three-activity orchestration, one at a time (start -> wait_for_completion)");
    println!(
        "  p50 {:.0} us, p99 {:.0} us, min {:.0} us, max {:.0} us, mean {:.0} us",
        micros(quantile(&v, 0.5)),
        micros(quantile(&v, 0.99)),
        micros(v[0]),
        micros(v[v.len() - 1]),
        micros(mean)
    );
    Ok(())
}

/// Runs of the history-length scenario; each step's time is the median over the runs.
const HISTORY_RUNS: usize = 10;
/// Steps per window of the history-length report.
const HISTORY_WINDOW: usize = 10;

async fn history_length(client: &Client, n: u64) -> Result<(), String> {
    // gaps[r][k - 1]: in run r, the time of step k (k >= 1), from activity k-1 to activity k.
    // Step k records the completion of activity k-1, resumes the state machine and schedules
    // activity k; the history then holds about `per_step * k` events.
    let mut gaps: Vec<Vec<Duration>> = Vec::with_capacity(HISTORY_RUNS);
    let mut events = 0;
    let t0 = Instant::now();
    for _ in 0..HISTORY_RUNS {
        ARRIVALS.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let id = client.start(timed_sequence, n).await.map_err(|e| format!("start: {e}"))?;
        finish(client, &id, n).await?;
        events = client.history(&id).await.map_err(|e| format!("history: {e}"))?.len();
        let arrivals = std::mem::take(&mut *ARRIVALS.lock().unwrap_or_else(|p| p.into_inner()));
        if arrivals.len() as u64 != n {
            return Err(format!("expected {n} activity calls, saw {}", arrivals.len()));
        }
        gaps.push(arrivals.windows(2).map(|w| w[1] - w[0]).collect());
    }
    let d = t0.elapsed();
    let per_step = events as f64 / (n as f64 + 1.0);
    let steps = gaps[0].len();
    println!(
        "history-length: one instance awaiting {n} activities in a loop, {HISTORY_RUNS} runs; \
         {events} history events per run ({per_step:.1} per step)"
    );
    println!("  {:.3} s in all", d.as_secs_f64());
    println!("  time per step (activity k-1 -> activity k), median over {HISTORY_RUNS} runs x {HISTORY_WINDOW} steps:");
    let mut starts: Vec<usize> = [10.0, 1_000.0, 3_000.0, 10_000.0]
        .iter()
        .map(|&ev: &f64| ((ev / per_step).round() as usize).max(1) - 1)
        .filter(|&s| s + HISTORY_WINDOW <= steps)
        .collect();
    if steps >= HISTORY_WINDOW {
        starts.push(steps - HISTORY_WINDOW);
    }
    starts.dedup();
    for start in starts {
        let mut w: Vec<Duration> = gaps.iter().flat_map(|g| g[start..start + HISTORY_WINDOW].iter().copied()).collect();
        w.sort();
        println!(
            "    history {:>5.0}..{:>5.0} events (steps {:>4}..{:>4}): median {:>6.1} us, p90 {:>6.1} us",
            (start as f64 + 1.0) * per_step,
            (start + HISTORY_WINDOW) as f64 * per_step,
            start + 1,
            start + HISTORY_WINDOW,
            micros(quantile(&w, 0.5)),
            micros(quantile(&w, 0.9)),
        );
    }
    Ok(())
}

// ------------------------------------------------------------------ main

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().into())
        })
        .unwrap_or_else(|| "unknown".to_string());
    format!("{cpus} CPUs (nproc), {model}")
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    println!("command: cargo run --release -p durable-bench -- {}", args.join(" "));
    println!("machine: {}", machine());
    let backend_name = match &opts.backend {
        BackendKind::Memory => "memory".to_string(),
        BackendKind::Redis(url) => format!("redis ({url})"),
    };
    let concurrency = match opts.concurrency {
        Some(c) => c.to_string(),
        None => "default (100)".to_string(),
    };
    println!("backend: {backend_name}; worker: one, max concurrent orchestrations/activities {concurrency}");
    if cfg!(debug_assertions) {
        println!("warning: a debug build; pass --release for meaningful figures");
    }
    for &s in &opts.scenarios {
        if let Err(e) = run(s, &opts).await {
            eprintln!("{}: failed: {e}", s.name());
            std::process::exit(1);
        }
    }
}

/// Run one scenario on a fresh backend and worker.
async fn run(s: Scenario, opts: &Options) -> Result<(), String> {
    let backend = connect(&opts.backend).await?;
    let (worker, client) = start(&backend, opts.concurrency).await?;
    let n = opts.n.unwrap_or(s.default_n());
    match s {
        Scenario::FiveActivity => five_activity(&client, n, opts.concurrent_waits).await?,
        Scenario::Sequential => sequential(&client, n).await?,
        Scenario::FanOut => fan_out_in(&client, n).await?,
        Scenario::Latency => latency(&client, n).await?,
        Scenario::HistoryLength => history_length(&client, n).await?,
        Scenario::EntityHot => entity_signals(&client, 1, n).await?,
        Scenario::Entities => entity_signals(&client, 100, (n / 100).max(1)).await?,
    }
    worker.shutdown().await.map_err(|e| format!("worker shutdown: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_a_scenario_and_its_options() {
        let o = parse_args(&args("fan-out --n 500 --backend redis --redis redis://h:1 --concurrency 8")).unwrap();
        assert_eq!(o.scenarios, [Scenario::FanOut]);
        assert_eq!(o.n, Some(500));
        assert_eq!(o.concurrency, Some(8));
        assert_eq!(o.backend, BackendKind::Redis("redis://h:1".into()));
        let o = parse_args(&args("all")).unwrap();
        assert_eq!(o.scenarios, Scenario::ALL);
        assert_eq!(o.backend, BackendKind::Memory);
        assert!(parse_args(&args("five-activity --concurrent-waits")).unwrap().concurrent_waits);
    }

    #[test]
    fn rejects_bad_arguments() {
        for bad in ["", "nope", "latency --n x", "latency --backend sqlite", "latency --n", "latency sequential"] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn every_scenario_name_parses_back() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::parse(s.name()), Some(s));
        }
    }

    #[test]
    fn quantiles_pick_from_sorted_samples() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_micros(51));
        assert_eq!(quantile(&v, 0.99), Duration::from_micros(99));
        assert_eq!(quantile(&v, 1.0), Duration::from_micros(100));
        assert_eq!(quantile(&v[..1], 0.99), Duration::from_micros(1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_scenario_runs_on_the_memory_backend() {
        // Small sizes: this checks that the workloads complete, it times nothing.
        let backend = connect(&BackendKind::Memory).await.unwrap();
        let (worker, client) = start(&backend, None).await.unwrap();
        five_activity(&client, 20, false).await.unwrap();
        five_activity(&client, 20, true).await.unwrap();
        sequential(&client, 20).await.unwrap();
        fan_out_in(&client, 50).await.unwrap();
        latency(&client, 5).await.unwrap();
        history_length(&client, 40).await.unwrap();
        worker.shutdown().await.unwrap();
    }
}
