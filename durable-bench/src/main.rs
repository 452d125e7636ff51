//! Benchmarks of `durable`: throughput and latency of orchestrations end to end (client, worker,
//! engine, backend), on the embedded `Memory` backend or on Redis.
//!
//! ```text
//! cargo run --release -p durable-bench -- SCENARIO [--backend memory|redis] [--redis URL] [--n N]
//!                                                  [--concurrency C] [--runs R] [--concurrent-waits]
//!                                                  [--wave W] [--exit-parked] [--signals S]
//!                                                  [--cluster [--workers 1,2,4] [--replica-acks 1]]
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
//! - `entity-hot`: N signals (default 20,000) to one entity from 16 concurrent senders; signals/s.
//! - `entities`: N signals (default 100,000) spread over 100 entities; signals/s.
//! - `parked`: N instances (default 100,000), each running one activity and then waiting for an
//!   event, left parked: the memory they take in Redis (`INFO memory`, `MEMORY USAGE` of every
//!   key of the run, one instance's keys field by field) and the resident memory of this process
//!   (the worker and the client) before, when all are parked, and 10 s later. `--wave W` starts
//!   them W at a time, each wave parked before the next (resident memory by number parked,
//!   without one large burst); `--exit-parked` exits right after the report, nothing freed, for
//!   heap profilers (`heaptrack`, `massif`).
//! - `backlog` (Redis only): N starts (default 1,000,000) of an orchestration that finishes in
//!   its first step and `--signals S` (default 200,000) signals to one entity, queued while no
//!   worker runs; then one worker drains them. The resident memory of this process while it
//!   drains, what the backend held in memory, and the longest command in Redis's `SLOWLOG`.
//! - `all`: every scenario above but `backlog`, with its default size.
//!
//! With `--cluster`, `five-activity` runs on a Redis Cluster with 1, 2 and 4 worker processes
//! (`--workers 1,2,4`, each this binary run again as `cluster-worker`), this process starting
//! the instances and waiting for them; the throughput of each and its ratio to one worker's.
//! The cluster is `--redis redis+cluster://…` if given, else a local one of 3 masters and 3
//! replicas started for the run (`redis-server` and `redis-cli` on the `PATH`); a `redis://`
//! URL runs the same worker processes on one Redis, for comparison. Writes wait for
//! `--replica-acks` replicas (default 1, as the backend's default; 0 to compare).
//!
//! Activities do no work: the figures are the cost of the runtime itself.

mod backlog;
mod cluster;
mod parked;
mod scenarios;
mod workload;

use durable::WorkerHandle;
use durable::backend::{Backend, Memory};
use durable::prelude::*;
use parked::{ParkedOptions, RedisHub, parked};
use scenarios::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use workload::*;

/// How long any single wait may take before the benchmark reports a hang.
const WAIT: Duration = Duration::from_secs(600);

const USAGE: &str = "usage: durable-bench SCENARIO [--backend memory|redis] [--redis URL] [--n N] [--concurrency C] [--runs R] [--concurrent-waits] [--wave W] [--exit-parked] [--signals S] [--cluster [--workers 1,2,4] [--replica-acks 1]]
scenarios: five-activity, sequential, fan-out, latency, history-length, entity-hot, entities, parked, backlog, all";

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
    Parked,
    Backlog,
}

impl Scenario {
    const ALL: [Scenario; 8] = [
        Scenario::FiveActivity,
        Scenario::Sequential,
        Scenario::FanOut,
        Scenario::Latency,
        Scenario::HistoryLength,
        Scenario::EntityHot,
        Scenario::Entities,
        Scenario::Parked,
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
            "parked" => Self::Parked,
            "backlog" => Self::Backlog,
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
            Self::Parked => "parked",
            Self::Backlog => "backlog",
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
            Self::Parked => 100_000,
            Self::Backlog => 1_000_000,
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
    /// parked: waves, idle time, exit once reported.
    parked: ParkedOptions,
    /// backlog: signals queued to one entity.
    signals: u64,
    /// five-activity on a Redis Cluster with these worker process counts (`--cluster`).
    cluster: Option<Vec<u32>>,
    /// `--redis` as given.
    redis_given: Option<String>,
    /// `--cluster`: how many replicas a write waits for (`RedisBuilder::replica_acks`).
    replica_acks: u32,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut scenarios = None;
    let mut backend = "memory".to_string();
    let mut redis_url = "redis://127.0.0.1:6379".to_string();
    let mut n = None;
    let mut concurrency = None;
    let mut concurrent_waits = false;
    let mut signals = 200_000;
    let mut parked = ParkedOptions { wave: None, idle: parked::IDLE, exit_parked: false };
    let mut cluster = false;
    let mut workers = vec![1, 2, 4];
    let mut redis_given = None;
    let mut replica_acks = 1;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().cloned().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match a.as_str() {
            "--backend" => backend = value("--backend")?,
            "--redis" => {
                redis_url = value("--redis")?;
                redis_given = Some(redis_url.clone());
            }
            "--cluster" => cluster = true,
            "--replica-acks" => {
                let v = value(a)?;
                replica_acks = v.parse().map_err(|_| format!("--replica-acks: not a number: {v:?}"))?;
            }
            "--workers" => {
                let v = value(a)?;
                workers = v
                    .split(',')
                    .map(|w| w.trim().parse().ok().filter(|&w: &u32| w > 0))
                    .collect::<Option<_>>()
                    .ok_or_else(|| format!("--workers: not a list of worker counts like 1,2,4: {v:?}"))?;
            }
            "--n" | "--runs" => {
                let v = value(a)?;
                n = Some(v.parse().map_err(|_| format!("{a}: not a number: {v:?}"))?);
            }
            "--concurrency" => {
                let v = value(a)?;
                concurrency = Some(v.parse().map_err(|_| format!("--concurrency: not a number: {v:?}"))?);
            }
            "--concurrent-waits" => concurrent_waits = true,
            "--signals" => {
                let v = value(a)?;
                signals = v.parse().map_err(|_| format!("--signals: not a number: {v:?}"))?;
            }
            "--exit-parked" => parked.exit_parked = true,
            "--wave" => {
                let v = value(a)?;
                parked.wave = Some(v.parse().map_err(|_| format!("--wave: not a number: {v:?}"))?);
            }
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
    if cluster && scenarios != [Scenario::FiveActivity] {
        return Err(format!("--cluster runs the five-activity scenario only\n{USAGE}"));
    }
    let cluster = cluster.then_some(workers);
    Ok(Options {
        scenarios,
        backend,
        n,
        concurrency,
        concurrent_waits,
        parked,
        signals,
        cluster,
        redis_given,
        replica_acks,
    })
}

// ------------------------------------------------------------------ setup

/// A fresh backend; on Redis also its task hub, for the scenarios that look at its keys.
async fn connect(kind: &BackendKind) -> Result<(Arc<dyn Backend>, Option<RedisHub>), String> {
    match kind {
        BackendKind::Memory => Ok((Arc::new(Memory::new()), None)),
        BackendKind::Redis(url) => {
            let redis = connect_redis(url).await?;
            Ok((Arc::new(redis.clone()), Some(RedisHub { url: url.clone(), backend: redis })))
        }
    }
}

/// A Redis backend on a task hub (key prefix) of its own, so that runs never see each other's
/// instances: `durable-bench-<pid>-<n>`. Its keys are left in Redis afterwards; delete them with
/// `redis-cli --scan --pattern '{durable-bench-*' | xargs -r redis-cli del`.
async fn connect_redis(url: &str) -> Result<durable::backend::Redis, String> {
    static HUBS: AtomicU32 = AtomicU32::new(0);
    let prefix = format!("durable-bench-{}-{}", std::process::id(), HUBS.fetch_add(1, Ordering::Relaxed));
    let redis = durable::backend::Redis::builder(url)
        .prefix(prefix)
        .connect()
        .await
        .map_err(|e| format!("connecting to Redis at {url}: {e}"))?;
    Ok(redis)
}

/// A worker running every benchmark orchestrator and activity, and a client, on `backend`.
async fn start(backend: &Arc<dyn Backend>, concurrency: Option<usize>) -> Result<(WorkerHandle, Client), String> {
    let mut builder = Worker::builder_arc(backend.clone())
        .orchestrator(five_activities)
        .orchestrator(three_activities)
        .orchestrator(sequence)
        .orchestrator(timed_sequence)
        .orchestrator(fan_out)
        .orchestrator(parked_on_event)
        .activity(noop)
        .activity(timed)
        .activity(counted)
        .entity::<Tally>();
    if let Some(c) = concurrency {
        builder = builder.max_concurrent_orchestrations(c).max_concurrent_activities(c);
    }
    let worker = builder.start().await.map_err(|e| format!("starting the worker: {e}"))?;
    Ok((worker, Client::from_arc(backend.clone())))
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
    if let [cmd, url, hub, expected, acks, rest @ ..] = args.as_slice()
        && cmd == "cluster-worker"
    {
        let concurrency = rest.first().and_then(|c| c.parse().ok());
        let (expected, acks) = (expected.parse().unwrap_or(1), acks.parse().unwrap_or(1));
        if let Err(e) = cluster::worker_process(url, hub, expected, acks, concurrency).await {
            eprintln!("cluster-worker: {e}");
            std::process::exit(1);
        }
        return;
    }
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
    if cfg!(debug_assertions) {
        println!("warning: a debug build; pass --release for meaningful figures");
    }
    if let Some(workers) = &opts.cluster {
        println!("max concurrent orchestrations/activities per worker {concurrency}");
        let n = opts.n.unwrap_or(Scenario::FiveActivity.default_n());
        if let Err(e) =
            cluster::scale(opts.redis_given.as_deref(), workers, n, opts.replica_acks, opts.concurrency).await
        {
            eprintln!("five-activity --cluster: failed: {e}");
            std::process::exit(1);
        }
        return;
    }
    println!("backend: {backend_name}; worker: one, max concurrent orchestrations/activities {concurrency}");
    for &s in &opts.scenarios {
        if let Err(e) = run(s, &opts).await {
            eprintln!("{}: failed: {e}", s.name());
            std::process::exit(1);
        }
    }
}

/// Run one scenario on a fresh backend and worker.
async fn run(s: Scenario, opts: &Options) -> Result<(), String> {
    if s == Scenario::Backlog {
        // Queued before its worker starts.
        let BackendKind::Redis(url) = &opts.backend else {
            return Err("the backlog scenario runs on Redis: pass --backend redis".into());
        };
        return backlog::backlog(url, opts.n.unwrap_or(s.default_n()), opts.signals, opts.concurrency).await;
    }
    let (backend, hub) = connect(&opts.backend).await?;
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
        Scenario::Parked => parked(&client, n, hub.as_ref(), &opts.parked).await?,
        Scenario::Backlog => unreachable!("run above"),
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
        let o = parse_args(&args("parked --backend redis --exit-parked --wave 5000")).unwrap();
        assert_eq!(o.scenarios, [Scenario::Parked]);
        assert!(o.parked.exit_parked);
        assert_eq!(o.parked.wave, Some(5000));
    }

    #[test]
    fn rejects_bad_arguments() {
        let o = parse_args(&args("five-activity --cluster --workers 1,3")).unwrap();
        assert_eq!(o.cluster, Some(vec![1, 3]));
        for bad in [
            "",
            "nope",
            "latency --n x",
            "latency --backend sqlite",
            "latency --n",
            "latency sequential",
            "latency --cluster",
            "five-activity --cluster --workers 0",
        ] {
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
        let (backend, _) = connect(&BackendKind::Memory).await.unwrap();
        let (worker, client) = start(&backend, None).await.unwrap();
        five_activity(&client, 20, false).await.unwrap();
        five_activity(&client, 20, true).await.unwrap();
        sequential(&client, 20).await.unwrap();
        fan_out_in(&client, 50).await.unwrap();
        latency(&client, 5).await.unwrap();
        history_length(&client, 40).await.unwrap();
        let quick = ParkedOptions { wave: None, idle: Duration::ZERO, exit_parked: false };
        parked(&client, 20, None, &quick).await.unwrap();
        let waves = ParkedOptions { wave: Some(7), ..quick };
        parked(&client, 20, None, &waves).await.unwrap();
        worker.shutdown().await.unwrap();
    }
}
