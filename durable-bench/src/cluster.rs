//! `--cluster`: five-activity throughput on a Redis Cluster with 1, 2 and 4 worker processes
//! (`--workers 1,2,4`). Each worker process is this binary run again (`cluster-worker`); this
//! process only starts the instances and waits for them (a client). Without `--redis`, a local
//! cluster of 3 masters and 3 replicas is started for the run (and killed after it).

use crate::scenarios::finish;
use crate::server::ServerConfig;
use crate::workload::*;
use durable::prelude::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// The partition count of the runs: enough that 4 workers own 4 each.
const PARTITIONS: u32 = 16;

/// A worker process (`durable-bench cluster-worker URL HUB WORKERS ACKS [CONCURRENCY]`): runs the five-activity
/// orchestrator and its activity on task hub `HUB`, prints `READY` once it owns its share of
/// the partitions (of `expected` workers), and runs until killed.
pub(crate) async fn worker_process(
    url: &str,
    hub: &str,
    expected: u32,
    acks: u32,
    concurrency: Option<usize>,
) -> Result<(), String> {
    let backend = durable::backend::Redis::builder(url)
        .prefix(hub)
        .partitions(PARTITIONS)
        .replica_acks(acks)
        .connect()
        .await
        .map_err(|e| format!("connecting to {url}: {e}"))?;
    let mut builder = Worker::builder(backend.clone()).orchestrator(five_activities).activity(noop);
    if let Some(c) = concurrency {
        builder = builder.max_concurrent_orchestrations(c).max_concurrent_activities(c);
    }
    let _worker = builder.start().await.map_err(|e| format!("starting the worker: {e}"))?;
    let share = PARTITIONS / expected.max(1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while (backend.owned_partitions().len() as u32) < share {
        if Instant::now() > deadline {
            return Err(format!("owns {} partitions after 60 s, not {share}", backend.owned_partitions().len()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("READY");
    std::future::pending::<()>().await;
    Ok(())
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat` (0 if unknown).
fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // After the command name in parentheses: state is field 3, utime 14 and stime 15.
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// Worker processes, killed on drop.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Start `count` worker processes on `hub` and wait until each owns its share of the partitions.
fn spawn_workers(url: &str, hub: &str, count: u32, acks: u32, concurrency: Option<usize>) -> Result<Workers, String> {
    let exe = std::env::current_exe().map_err(|e| format!("this binary's path: {e}"))?;
    let mut workers = Workers(Vec::new());
    let mut outs = Vec::new();
    for _ in 0..count {
        let mut cmd = Command::new(&exe);
        cmd.args(["cluster-worker", url, hub, &count.to_string(), &acks.to_string()]);
        if let Some(c) = concurrency {
            cmd.arg(c.to_string());
        }
        let mut child =
            cmd.stdout(Stdio::piped()).stdin(Stdio::null()).spawn().map_err(|e| format!("starting a worker: {e}"))?;
        outs.push(BufReader::new(child.stdout.take().expect("piped")));
        workers.0.push(child);
    }
    for out in &mut outs {
        let mut line = String::new();
        while !line.contains("READY") {
            line.clear();
            if out.read_line(&mut line).map_err(|e| format!("reading a worker's output: {e}"))? == 0 {
                return Err("a worker process exited before it was ready (see its error above)".into());
            }
        }
    }
    Ok(workers)
}

/// Five-activity throughput with each worker count of `counts`, each on a task hub of its own.
pub(crate) async fn scale(
    url: Option<&str>,
    counts: &[u32],
    n: u64,
    acks: u32,
    concurrency: Option<usize>,
) -> Result<(), String> {
    let local = match url {
        Some(_) => None,
        None => {
            let c = tokio::task::spawn_blocking(durable_test_support::redis_cluster::RedisCluster::start)
                .await
                .map_err(|e| format!("starting a local cluster: {e}"))?;
            println!("cluster: local, 3 masters + 3 replicas ({})", c.url());
            Some(c)
        }
    };
    let url = url.map(str::to_string).unwrap_or_else(|| local.as_ref().expect("started above").url());
    let is_cluster = url.contains("+cluster://");
    let on = if is_cluster {
        format!("a Redis Cluster, writes wait for {acks} replica(s)")
    } else {
        "one Redis".to_string()
    };
    // How it persists (on a cluster, as its first node says).
    let config = ServerConfig::query(&url).await?;
    let setting = config.setting(if is_cluster { "redis cluster" } else { "redis" });
    println!(
        "{}: {}{}",
        if is_cluster { "cluster" } else { "redis" },
        config.describe(),
        if is_cluster { " (its first node)" } else { "" }
    );
    println!(
        "five-activity on {on}: {n} instances x 5 activities, {PARTITIONS} partitions, worker processes: {setting}"
    );
    println!(
        "{:>8} {:>12} {:>10} {:>12} {:>28}",
        "workers", "elapsed (s)", "orch/s", "vs 1 worker", "CPU s: workers/redis/client"
    );
    // The local cluster's nodes, masters first: (pid, is a master).
    let mut nodes: Vec<(String, bool)> = match &local {
        Some(c) => {
            let masters = c.masters();
            c.pids().iter().map(|(port, pid)| (pid.to_string(), masters.contains(port))).collect()
        }
        None => Vec::new(),
    };
    nodes.sort_by_key(|(_, master)| !master);
    let node_cpu = || nodes.iter().map(|(p, _)| cpu_secs(p)).collect::<Vec<f64>>();
    let redis_pids = nodes.clone();
    let redis_cpu = || node_cpu().iter().sum::<f64>();
    let mut first = None;
    for &count in counts {
        let hub = format!("durable-bench-{}-w{count}", std::process::id());
        let workers = tokio::task::spawn_blocking({
            let (url, hub) = (url.clone(), hub.clone());
            move || spawn_workers(&url, &hub, count, acks, concurrency)
        })
        .await
        .map_err(|e| format!("starting workers: {e}"))??;
        let backend = durable::backend::Redis::builder(url.as_str())
            .prefix(hub.as_str())
            .partitions(PARTITIONS)
            .replica_acks(acks)
            .connect()
            .await
            .map_err(|e| format!("connecting to {url}: {e}"))?;
        let client = Client::new(backend);
        let cpu0 = (redis_cpu(), cpu_secs("self"));
        let per_node0 = node_cpu();
        let t0 = Instant::now();
        let mut starting = tokio::task::JoinSet::new();
        let mut ids = Vec::with_capacity(n as usize);
        for i in 0..n {
            if starting.len() >= 32
                && let Some(r) = starting.join_next().await
            {
                ids.push(r.map_err(|e| format!("a starting task failed: {e}"))?);
            }
            let client = client.clone();
            starting.spawn(async move { (i, client.start(five_activities, i).await) });
        }
        while let Some(r) = starting.join_next().await {
            ids.push(r.map_err(|e| format!("a starting task failed: {e}"))?);
        }
        // Waited for one after the other (as the five-activity scenario does by default): one
        // waiter polling at a time, so the client adds little load to the cluster.
        ids.sort_by_key(|(i, _)| *i);
        for (i, id) in ids {
            let id = id.map_err(|e| format!("start: {e}"))?;
            finish(&client, &id, i + 5).await?;
        }
        let d = t0.elapsed();
        let workers_cpu: f64 = workers.0.iter().map(|c| cpu_secs(&c.id().to_string())).sum();
        let (redis_used, client_used) = (redis_cpu() - cpu0.0, cpu_secs("self") - cpu0.1);
        let rate = n as f64 / d.as_secs_f64();
        let base = *first.get_or_insert(rate);
        let cpu = if redis_pids.is_empty() {
            format!("{workers_cpu:.1}/-/{client_used:.1}")
        } else {
            format!("{workers_cpu:.1}/{redis_used:.1}/{client_used:.1}")
        };
        println!("{count:>8} {:>12.2} {rate:>10.0} {:>11.2}x {cpu:>28} {setting}", d.as_secs_f64(), rate / base);
        if !nodes.is_empty() {
            let per_node: Vec<String> =
                node_cpu().iter().zip(&per_node0).map(|(a, b)| format!("{:.1}", a - b)).collect();
            let per_worker: Vec<String> =
                workers.0.iter().map(|c| format!("{:.1}", cpu_secs(&c.id().to_string()))).collect();
            println!(
                "{:>8} CPU s by master [{}], by replica [{}], by worker [{}]",
                "",
                per_node[..3.min(per_node.len())].join(" "),
                per_node[3.min(per_node.len())..].join(" "),
                per_worker.join(" ")
            );
        }
        drop(workers);
    }
    drop(local);
    Ok(())
}
