//! Benchmarks of `durable`: throughput and latency of orchestrations end to end (client, worker,
//! engine, backend), on the embedded `Memory` backend or on Redis.
//!
//! ```text
//! cargo run --release -p durable-bench -- SCENARIO [--backend memory|redis] [--fsync everysec|always|off]
//!                                                  [--redis URL] [--n N] [--runs R] [--concurrency C]
//!                                                  [--concurrent-waits] [--senders K] [--threads T] [--wave W] [--exit-parked] [--signals S]
//!                                                  [--cluster [--workers 1,2,4] [--replica-acks 1]]
//! ```
//!
//! Where it runs:
//!
//! - `--backend memory` (the default): the embedded `Memory` backend, no I/O.
//! - `--backend redis`: a `redis-server` of the benchmark's own, fresh for each run (each
//!   scenario, and each of `--runs`), on a free port in a temporary directory, with `--save ""`
//!   and, by `--fsync`: `everysec` (the default) `--appendonly yes --appendfsync everysec`,
//!   `always` `--appendonly yes --appendfsync always`, `off` `--appendonly no`. It is killed and
//!   its directory removed after the run, also when the run fails or on ctrl-c/SIGTERM
//!   (`--exit-parked` stops it before exiting). `redis-server` must be on the `PATH`.
//! - `--backend redis --redis URL`: that server instead, a fresh task hub (key prefix) for each
//!   run; it is asked how it persists (`CONFIG GET appendonly`, `appendfsync`, `save`), which
//!   is printed. `--fsync` is refused with `--redis`: the server's own setting is what runs.
//!
//! Every result line ends with the durability setting: `[memory]`, `[redis, AOF everysec]`,
//! `[redis, AOF always]`, `[redis, no persistence]` (or what `CONFIG GET` says of a given
//! server, e.g. `[redis, no AOF, RDB save "3600 1"]`).
//!
//! Scenarios (see `docs/performance.md` for the figures and the design targets); N is `--n`:
//!
//! - `five-activity`: N instances (default 2,000) started at once, each calling 5 activities in
//!   sequence; orchestrations/s from the first start to the last completion. The instances are
//!   awaited one after the other, or with `--concurrent-waits` all at once (one task each).
//! - `sequential`: one instance calling N activities (default 2,000) in sequence; steps/s.
//! - `fan-out`: one instance fanning out N activities (default 10,000) and awaiting them with
//!   `ctx.when_all`; activities/s.
//! - `sub-orchestrations`: one parent starting N child orchestrations (default 1,000) at once,
//!   each awaiting 5 activities in sequence, and awaiting them all with `ctx.when_all`;
//!   children/s and activities/s from the parent's start to its completion.
//! - `latency`: N runs (default 200) of a three-activity orchestration on an idle system, one at
//!   a time; p50/p99 of start → `wait_for_completion`.
//! - `history-length`: one instance awaiting N activities (default 4,000) in a loop, 10 times;
//!   the time per step at the beginning of the history versus after 1,000 events and later.
//! - `entity-hot`: N signals (default 20,000) to one entity from 16 concurrent senders (`--senders
//!   K`), each awaiting its signal before sending the next; signals/s.
//! - `entities`: N signals (default 100,000) spread over 100 entities, from 16 concurrent senders
//!   (`--senders K`); signals/s.
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
//! - `all`: every scenario above but `backlog`, with its default size (or `--n`).
//!
//! `--runs R` (default 1) runs a throughput scenario — `five-activity`, `sequential`, `fan-out`,
//! `sub-orchestrations`, `entity-hot`, `entities` — R times, each on a fresh backend and worker
//! (a fresh `redis-server` when the benchmark starts its own, else a fresh task hub), and prints
//! each run, then the median of each rate with its [min–max] range over the runs. The other
//! scenarios measure distributions or memory and run once: `--runs` with one of them alone is
//! refused (`latency`'s sample count is `--n`; `history-length` already takes the median of 10
//! runs), and `all --runs R` repeats only the throughput scenarios.
//!
//! With `--cluster`, `five-activity` runs on a Redis Cluster with 1, 2 and 4 worker processes
//! (`--workers 1,2,4`, each this binary run again as `cluster-worker`), this process starting
//! the instances and waiting for them; the throughput of each and its ratio to one worker's.
//! The cluster is `--redis redis+cluster://…` if given, else a local one of 3 masters and 3
//! replicas started for the run without persistence (`redis-server` and `redis-cli` on the
//! `PATH`); a `redis://` URL runs the same worker processes on one Redis, for comparison. Writes
//! wait for `--replica-acks` replicas (default 1, as the backend's default; 0 to compare).
//! `--fsync`, `--runs` and `--threads` are not supported with `--cluster`.
//!
//! `--threads T` runs this process (the worker and the clients) on a Tokio runtime of T worker
//! threads; by default Tokio's own (one per CPU, or `TOKIO_WORKER_THREADS`). The header says
//! which. On a machine whose cores Redis shares, fewer threads than cores can be faster: see
//! `docs/performance.md`.
//!
//! Activities do no work: the figures are the cost of the runtime itself.

mod backlog;
mod cluster;
mod parked;
mod scenarios;
mod server;
mod workload;

use durable::WorkerHandle;
use durable::backend::{Backend, Memory};
use durable::prelude::*;
use durable_test_support::redis_server::Persistence;
use parked::{ParkedOptions, RedisHub, parked};
use scenarios::*;
use server::{RedisTarget, RunRedis, ServerConfig, Setting};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use workload::*;

/// How long any single wait may take before the benchmark reports a hang.
const WAIT: Duration = Duration::from_secs(600);

const USAGE: &str = "usage: durable-bench SCENARIO [--backend memory|redis] [--fsync everysec|always|off] [--redis URL] [--n N] [--runs R] [--concurrency C] [--concurrent-waits] [--senders K] [--threads T] [--wave W] [--exit-parked] [--signals S] [--cluster [--workers 1,2,4] [--replica-acks 1]]
scenarios: five-activity, sequential, fan-out, sub-orchestrations, latency, history-length, entity-hot, entities, parked, backlog, all
--backend redis: a fresh redis-server of its own for each run, persisting as --fsync says (default everysec); with --redis URL, that server (--fsync refused)
--runs R: run a throughput scenario (five-activity, sequential, fan-out, sub-orchestrations, entity-hot, entities) R times; each run, then the median and [min-max]
--n N: the scenario's size (latency: its number of samples)";

// ------------------------------------------------------------------ options

#[derive(Clone, Copy, Debug, PartialEq)]
enum Scenario {
    FiveActivity,
    Sequential,
    FanOut,
    SubOrchestrations,
    Latency,
    HistoryLength,
    EntityHot,
    Entities,
    Parked,
    Backlog,
}

impl Scenario {
    const ALL: [Scenario; 9] = [
        Scenario::FiveActivity,
        Scenario::Sequential,
        Scenario::FanOut,
        Scenario::SubOrchestrations,
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
            "sub-orchestrations" => Self::SubOrchestrations,
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
            Self::SubOrchestrations => "sub-orchestrations",
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
            Self::SubOrchestrations => 1_000,
            Self::Latency => 200,
            Self::HistoryLength => 4_000,
            Self::EntityHot => 20_000,
            Self::Entities => 100_000,
            Self::Parked => 100_000,
            Self::Backlog => 1_000_000,
        }
    }

    /// A scenario that measures a rate, which `--runs` repeats.
    fn is_throughput(self) -> bool {
        matches!(
            self,
            Self::FiveActivity
                | Self::Sequential
                | Self::FanOut
                | Self::SubOrchestrations
                | Self::EntityHot
                | Self::Entities
        )
    }

    /// The title line of a throughput scenario of size `n`.
    fn title(self, n: u64, opts: &Options) -> String {
        let (concurrent_waits, senders) = (opts.concurrent_waits, opts.senders);
        match self {
            Self::FiveActivity => {
                let waits =
                    if concurrent_waits { "one concurrent waiter per instance" } else { "waited one at a time" };
                format!("five-activity: {n} instances x 5 activities (6 steps each), {waits}")
            }
            Self::Sequential => format!("sequential: one instance, {n} activities in sequence ({} steps)", n + 1),
            Self::FanOut => format!("fan-out: one instance, {n} activities in parallel, when_all"),
            Self::SubOrchestrations => format!(
                "sub-orchestrations: one parent, {n} child orchestrations started at once and awaited with when_all, \
                 each 5 activities in sequence"
            ),
            Self::EntityHot => format!("entity-hot: one entity, {n} signals from {senders} concurrent senders"),
            Self::Entities => {
                format!("entities: 100 entities x {} signals from {senders} concurrent senders", (n / 100).max(1))
            }
            other => other.name().to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum BackendKind {
    Memory,
    Redis(RedisTarget),
}

#[derive(Debug)]
struct Options {
    scenarios: Vec<Scenario>,
    backend: BackendKind,
    n: Option<u64>,
    /// Runs of each throughput scenario (`--runs`); `None`: one.
    runs: Option<u32>,
    concurrency: Option<usize>,
    /// five-activity: wait for every instance at once rather than one after the other.
    concurrent_waits: bool,
    /// entity-hot, entities: concurrent senders.
    senders: u64,
    /// Tokio worker threads of this process (`--threads`); `None`: Tokio's default.
    threads: Option<usize>,
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
    let mut fsync = None;
    let mut n = None;
    let mut runs = None;
    let mut concurrency = None;
    let mut concurrent_waits = false;
    let mut senders = 16;
    let mut threads = None;
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
            "--redis" => redis_given = Some(value("--redis")?),
            "--fsync" => {
                let v = value(a)?;
                fsync = Some(
                    server::parse_fsync(&v).ok_or_else(|| format!("--fsync: everysec, always or off, not {v:?}"))?,
                );
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
            "--n" => {
                let v = value(a)?;
                n = Some(v.parse().map_err(|_| format!("--n: not a number: {v:?}"))?);
            }
            "--runs" => {
                let v = value(a)?;
                runs = Some(
                    v.parse()
                        .ok()
                        .filter(|&r: &u32| r > 0)
                        .ok_or_else(|| format!("--runs: not a count of runs: {v:?}"))?,
                );
            }
            "--concurrency" => {
                let v = value(a)?;
                concurrency = Some(v.parse().map_err(|_| format!("--concurrency: not a number: {v:?}"))?);
            }
            "--concurrent-waits" => concurrent_waits = true,
            "--senders" => {
                let v = value(a)?;
                senders = v
                    .parse()
                    .ok()
                    .filter(|&k: &u64| k > 0)
                    .ok_or_else(|| format!("--senders: not a count of senders: {v:?}"))?;
            }
            "--threads" => {
                let v = value(a)?;
                threads = Some(
                    v.parse()
                        .ok()
                        .filter(|&t: &usize| t > 0)
                        .ok_or_else(|| format!("--threads: not a count of threads: {v:?}"))?,
                );
            }
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
    let scenarios = scenarios.ok_or_else(|| format!("no scenario given\n{USAGE}"))?;
    if cluster {
        if scenarios != [Scenario::FiveActivity] {
            return Err(format!("--cluster runs the five-activity scenario only\n{USAGE}"));
        }
        if fsync.is_some() {
            return Err("--fsync: the local cluster of --cluster runs without persistence; --fsync sets up \
                        the single redis-server of --backend redis"
                .into());
        }
        if runs.is_some() {
            return Err("--runs is not supported with --cluster: run the command again".into());
        }
        if threads.is_some() {
            return Err("--threads is not supported with --cluster: its worker processes run Tokio's default \
                        runtime (set TOKIO_WORKER_THREADS for them all)"
                .into());
        }
    }
    let backend = match (backend.as_str(), redis_given.clone(), fsync) {
        ("memory", _, Some(_)) if !cluster => {
            return Err(format!("--fsync sets up the redis-server of --backend redis; pass --backend redis\n{USAGE}"));
        }
        ("memory", _, _) => BackendKind::Memory,
        ("redis", Some(_), Some(_)) => {
            return Err("--fsync is for the redis-server the benchmark starts; with --redis URL the \
                        server's own setting runs (and is printed)"
                .into());
        }
        ("redis", Some(url), None) => BackendKind::Redis(RedisTarget::Url(url)),
        ("redis", None, fsync) => BackendKind::Redis(RedisTarget::Own(fsync.unwrap_or(Persistence::AofEverysec))),
        (other, _, _) => return Err(format!("unknown backend {other:?}: memory or redis\n{USAGE}")),
    };
    if runs.is_some()
        && let [s] = scenarios[..]
        && !s.is_throughput()
    {
        let hint = if s == Scenario::Latency { "; its number of samples is --n" } else { "" };
        return Err(format!(
            "--runs repeats the throughput scenarios (five-activity, sequential, fan-out, sub-orchestrations, \
             entity-hot, entities), not {}{hint}",
            s.name()
        ));
    }
    let cluster = cluster.then_some(workers);
    Ok(Options {
        scenarios,
        backend,
        n,
        runs,
        concurrency,
        concurrent_waits,
        senders,
        threads,
        parked,
        signals,
        cluster,
        redis_given,
        replica_acks,
    })
}

// ------------------------------------------------------------------ setup

/// A Redis backend on a task hub (key prefix) of its own, so that runs never see each other's
/// instances: `durable-bench-<pid>-<n>`. Its keys are left in Redis afterwards (on a server of
/// the benchmark's own, they go with it); delete them with
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
        .orchestrator(parent_of_five)
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

/// One run's backend, worker and client, all fresh.
struct Env {
    worker: WorkerHandle,
    client: Client,
    /// On Redis: the run's task hub, for the scenarios that look at its keys.
    hub: Option<RedisHub>,
    setting: Setting,
    /// On Redis: its server; one the benchmark started is stopped when this is dropped (after
    /// the run, or when it fails or is interrupted).
    redis: Option<RunRedis>,
}

impl Env {
    async fn open(kind: &BackendKind, concurrency: Option<usize>) -> Result<Env, String> {
        let (backend, hub, redis, setting): (Arc<dyn Backend>, _, _, _) = match kind {
            BackendKind::Memory => (Arc::new(Memory::new()), None, None, Setting::memory()),
            BackendKind::Redis(target) => {
                let r = RunRedis::open(target).await?;
                let backend = connect_redis(&r.url).await?;
                let setting = r.setting();
                let hub = RedisHub { url: r.url.clone(), backend: backend.clone() };
                (Arc::new(backend), Some(hub), Some(r), setting)
            }
        };
        let (worker, client) = start(&backend, concurrency).await?;
        Ok(Env { worker, client, hub, setting, redis })
    }

    /// Shut the worker down, then stop the run's own redis-server, if any.
    async fn close(self) -> Result<(), String> {
        self.worker.shutdown().await.map_err(|e| format!("worker shutdown: {e}"))
    }
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

/// The multi-threaded Tokio runtime the benchmark runs on: `threads` worker threads, or
/// Tokio's default (one per CPU, or `TOKIO_WORKER_THREADS`).
fn runtime(threads: Option<usize>) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = threads {
        b.worker_threads(t);
    }
    b.enable_all().build().unwrap_or_else(|e| {
        eprintln!("cannot start the Tokio runtime: {e}");
        std::process::exit(1);
    })
}

/// How many worker threads a runtime built by [`runtime`] has.
fn runtime_threads(threads: Option<usize>) -> String {
    match threads {
        Some(t) => format!("{t} (--threads)"),
        None => match std::env::var("TOKIO_WORKER_THREADS") {
            Ok(t) => format!("{t} (TOKIO_WORKER_THREADS)"),
            Err(_) => {
                let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
                format!("{cpus} (Tokio's default: one per CPU)")
            }
        },
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [cmd, url, hub, expected, acks, rest @ ..] = args.as_slice()
        && cmd == "cluster-worker"
    {
        let concurrency = rest.first().and_then(|c| c.parse().ok());
        let (expected, acks) = (expected.parse().unwrap_or(1), acks.parse().unwrap_or(1));
        let worker = cluster::worker_process(url, hub, expected, acks, concurrency);
        if let Err(e) = runtime(None).block_on(worker) {
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
    println!("runtime: Tokio, multi-threaded, worker threads {}", runtime_threads(opts.threads));
    runtime(opts.threads).block_on(bench_main(&opts));
}

/// Run the benchmark; on failure or interruption, exit with its code.
async fn bench_main(opts: &Options) {
    if cfg!(debug_assertions) {
        println!("warning: a debug build; pass --release for meaningful figures");
    }
    // Whatever the benchmark started (redis-servers, a cluster, worker processes) is owned by
    // `bench`'s future: dropping it, when the benchmark ends, fails or is interrupted, stops them
    // all before the process exits.
    let outcome = tokio::select! {
        r = bench(opts) => r.map_err(|e| (e, 1)),
        (signal, code) = interrupted() => Err((format!("interrupted by {signal}"), code)),
    };
    if let Err((e, code)) = outcome {
        eprintln!("{e}");
        std::process::exit(code);
    }
}

/// Ctrl-c (SIGINT) or SIGTERM, whichever comes first: which one, and the exit code that
/// reports it (128 + its number, as a shell does).
async fn interrupted() -> (&'static str, i32) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => ("SIGINT", 130),
        _ = term => ("SIGTERM", 143),
    }
}

/// Print where it runs, then run the scenarios.
async fn bench(opts: &Options) -> Result<(), String> {
    let concurrency = match opts.concurrency {
        Some(c) => c.to_string(),
        None => "default (500 orchestrations, 100 activities)".to_string(),
    };
    if let Some(workers) = &opts.cluster {
        println!("max concurrent orchestrations/activities per worker {concurrency}");
        let n = opts.n.unwrap_or(Scenario::FiveActivity.default_n());
        return cluster::scale(opts.redis_given.as_deref(), workers, n, opts.replica_acks, opts.concurrency)
            .await
            .map_err(|e| format!("five-activity --cluster: failed: {e}"));
    }
    match &opts.backend {
        BackendKind::Memory => println!("backend: memory"),
        BackendKind::Redis(RedisTarget::Own(p)) => println!(
            "backend: redis, a fresh redis-server (v={}) of its own for each run: {}, on a free port in a \
             temporary directory",
            server::server_version(),
            server::server_args(*p)
        ),
        BackendKind::Redis(RedisTarget::Url(url)) => {
            let config = ServerConfig::query(url).await?;
            println!("backend: redis ({url}), a fresh task hub for each run; {}", config.describe());
        }
    }
    println!("worker: one, max concurrent orchestrations/activities {concurrency}");
    if let Some(r) = opts.runs {
        println!("runs: {r} of each throughput scenario, each on a fresh backend and worker");
    }
    for &s in &opts.scenarios {
        run(s, opts).await.map_err(|e| format!("{}: failed: {e}", s.name()))?;
    }
    Ok(())
}

/// Run one scenario: a throughput scenario `--runs` times (each run on a fresh backend and
/// worker), any other once.
async fn run(s: Scenario, opts: &Options) -> Result<(), String> {
    let n = opts.n.unwrap_or(s.default_n());
    if s == Scenario::Backlog {
        // Queued before its worker starts.
        let BackendKind::Redis(target) = &opts.backend else {
            return Err("the backlog scenario runs on Redis: pass --backend redis".into());
        };
        let redis = RunRedis::open(target).await?;
        return backlog::backlog(&redis.url, n, opts.signals, opts.concurrency, &redis.setting()).await;
    }
    if s.is_throughput() {
        let runs = opts.runs.unwrap_or(1);
        let mut measured = Vec::new();
        for r in 1..=runs {
            let env = Env::open(&opts.backend, opts.concurrency).await?;
            if r == 1 {
                println!("{} {}", s.title(n, opts), env.setting);
            }
            let m = measure(s, &env.client, n, opts).await?;
            let run = if runs > 1 { format!("run {r}: ") } else { String::new() };
            println!("  {run}{} {}", m.line(), env.setting);
            measured.push(m);
            let setting = env.setting.clone();
            env.close().await?;
            if r == runs && runs > 1 {
                println!("  {runs} runs: {} {setting}", summary(&measured));
            }
        }
        return Ok(());
    }
    if opts.runs.is_some() {
        println!("({} runs once: --runs repeats the throughput scenarios)", s.name());
    }
    let mut env = Env::open(&opts.backend, opts.concurrency).await?;
    match s {
        Scenario::Latency => latency(&env.client, n, &env.setting).await?,
        Scenario::HistoryLength => history_length(&env.client, n, &env.setting).await?,
        Scenario::Parked => {
            parked(&env.client, n, env.hub.as_ref(), &opts.parked, &env.setting).await?;
            if opts.parked.exit_parked {
                // For heap profilers: exit with every instance parked and nothing of this
                // process freed, so what the profiler finds not freed is what it held for them.
                // The redis-server of the benchmark's own, if any, is stopped first.
                println!("  exiting with the instances parked (--exit-parked)");
                drop(env.redis.take());
                std::process::exit(0);
            }
        }
        other => return Err(format!("{} is not run here", other.name())),
    }
    env.close().await
}

/// One run of throughput scenario `s` of size `n`.
async fn measure(s: Scenario, client: &Client, n: u64, opts: &Options) -> Result<Measured, String> {
    match s {
        Scenario::FiveActivity => five_activity(client, n, opts.concurrent_waits).await,
        Scenario::Sequential => sequential(client, n).await,
        Scenario::FanOut => fan_out_in(client, n).await,
        Scenario::SubOrchestrations => sub_orchestrations(client, n).await,
        Scenario::EntityHot => entity_signals(client, 1, n, opts.senders).await,
        Scenario::Entities => entity_signals(client, 100, (n / 100).max(1), opts.senders).await,
        other => Err(format!("{} is not a throughput scenario", other.name())),
    }
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
        assert_eq!(o.runs, None);
        assert_eq!(o.concurrency, Some(8));
        assert_eq!(o.backend, BackendKind::Redis(RedisTarget::Url("redis://h:1".into())));
        let o = parse_args(&args("all")).unwrap();
        assert_eq!(o.scenarios, Scenario::ALL);
        assert_eq!(o.backend, BackendKind::Memory);
        assert!(parse_args(&args("five-activity --concurrent-waits")).unwrap().concurrent_waits);
        let o = parse_args(&args("parked --backend redis --exit-parked --wave 5000")).unwrap();
        assert_eq!(o.scenarios, [Scenario::Parked]);
        assert!(o.parked.exit_parked);
        assert_eq!(o.parked.wave, Some(5000));
        assert_eq!(parse_args(&args("entity-hot")).unwrap().senders, 16);
        assert_eq!(parse_args(&args("entity-hot --senders 64")).unwrap().senders, 64);
        assert_eq!(parse_args(&args("entity-hot")).unwrap().threads, None);
        assert_eq!(parse_args(&args("entity-hot --threads 1")).unwrap().threads, Some(1));
    }

    #[test]
    fn redis_without_a_url_is_a_server_of_its_own() {
        let own = |s: &str| parse_args(&args(s)).unwrap().backend;
        assert_eq!(own("fan-out --backend redis"), BackendKind::Redis(RedisTarget::Own(Persistence::AofEverysec)));
        assert_eq!(
            own("fan-out --backend redis --fsync always"),
            BackendKind::Redis(RedisTarget::Own(Persistence::AofAlways))
        );
        assert_eq!(own("fan-out --fsync off --backend redis"), BackendKind::Redis(RedisTarget::Own(Persistence::Off)));
    }

    #[test]
    fn runs_repeat_the_throughput_scenarios() {
        let o = parse_args(&args("sub-orchestrations --runs 3 --n 100")).unwrap();
        assert_eq!(
            (o.scenarios.as_slice(), o.runs, o.n),
            ([Scenario::SubOrchestrations].as_slice(), Some(3), Some(100))
        );
        assert_eq!(parse_args(&args("all --runs 3")).unwrap().runs, Some(3));
        for s in Scenario::ALL.iter().filter(|s| !s.is_throughput()) {
            assert!(parse_args(&args(&format!("{} --runs 2", s.name()))).is_err(), "{s:?} took --runs");
        }
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
            "five-activity --cluster --runs 2",
            "five-activity --cluster --fsync always",
            "five-activity --cluster --threads 1",
            "fan-out --runs 0",
            "fan-out --runs x",
            "entity-hot --senders 0",
            "entity-hot --senders many",
            "entity-hot --threads 0",
            "entity-hot --threads",
            "latency --runs 200",
            "fan-out --fsync always",
            "fan-out --backend redis --fsync sometimes",
            "fan-out --backend redis --redis redis://h:1 --fsync off",
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn every_scenario_name_parses_back() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::parse(s.name()), Some(s));
        }
        assert_eq!(Scenario::parse("backlog"), Some(Scenario::Backlog));
    }

    #[test]
    fn quantiles_pick_from_sorted_samples() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_micros(51));
        assert_eq!(quantile(&v, 0.99), Duration::from_micros(99));
        assert_eq!(quantile(&v, 1.0), Duration::from_micros(100));
        assert_eq!(quantile(&v[..1], 0.99), Duration::from_micros(1));
    }

    #[test]
    fn runs_summarise_as_median_and_range() {
        assert_eq!(median_range(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(median_range(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
        let run = |ms: u64| Measured {
            elapsed: Duration::from_millis(ms),
            counts: vec![(100, "children/s"), (500, "activities/s")],
            note: String::new(),
        };
        assert_eq!(run(500).line(), "0.500 s; 200 children/s, 1000 activities/s");
        assert_eq!(
            summary(&[run(1000), run(500), run(250)]),
            "median 200 children/s [100–400], 1000 activities/s [500–2000]; time 0.500 s [0.250–1.000]"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_scenario_runs_on_the_memory_backend() {
        // Small sizes: this checks that the workloads complete, it times nothing.
        let env = Env::open(&BackendKind::Memory, None).await.unwrap();
        let (client, memory) = (&env.client, Setting::memory());
        five_activity(client, 20, false).await.unwrap();
        five_activity(client, 20, true).await.unwrap();
        sequential(client, 20).await.unwrap();
        fan_out_in(client, 50).await.unwrap();
        let m = sub_orchestrations(client, 20).await.unwrap();
        assert_eq!(m.counts, [(20, "children/s"), (100, "activities/s")]);
        latency(client, 5, &memory).await.unwrap();
        history_length(client, 40, &memory).await.unwrap();
        entity_signals(client, 3, 10, 4).await.unwrap();
        let quick = ParkedOptions { wave: None, idle: Duration::ZERO, exit_parked: false };
        parked(client, 20, None, &quick, &memory).await.unwrap();
        let waves = ParkedOptions { wave: Some(7), ..quick };
        parked(client, 20, None, &waves, &memory).await.unwrap();
        env.close().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_on_redis_has_a_server_of_its_own_stopped_after_it() {
        let kind = BackendKind::Redis(RedisTarget::Own(Persistence::AofAlways));
        let env = Env::open(&kind, None).await.unwrap();
        assert_eq!(env.setting.to_string(), "[redis, AOF always]");
        let dir = env.redis.as_ref().and_then(|r| r.server.as_ref()).map(|s| s.dir().to_path_buf()).unwrap();
        let url = env.redis.as_ref().unwrap().url.clone();
        assert!(dir.join("appendonlydir").exists() || dir.join("appendonly.aof").exists(), "no AOF in {dir:?}");
        sub_orchestrations(&env.client, 3).await.unwrap();
        env.close().await.unwrap();
        assert!(!dir.exists(), "{dir:?} left behind");
        assert!(ServerConfig::query(&url).await.is_err(), "the server at {url} still answers");
    }
}
