//! The scenarios: each drives a fresh worker through a client and prints what it measured.

use crate::WAIT;
use crate::workload::*;
use durable::prelude::*;
use durable::{InstanceId, RuntimeStatus};
use std::time::Instant;

/// Wait for `id` and check that it completed with `expected`.
pub(crate) async fn finish(client: &Client, id: &InstanceId, expected: u64) -> Result<(), String> {
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
pub(crate) fn quantile(v: &[Duration], q: f64) -> Duration {
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

/// The entity of the entity scenarios.
#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Tally {
    pub(crate) sum: u64,
    pub(crate) count: u64,
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
pub(crate) async fn entity_signals(client: &Client, entities: u64, per_entity: u64) -> Result<(), String> {
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

pub(crate) async fn five_activity(client: &Client, n: u64, concurrent_waits: bool) -> Result<(), String> {
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

pub(crate) async fn sequential(client: &Client, n: u64) -> Result<(), String> {
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

pub(crate) async fn fan_out_in(client: &Client, n: u64) -> Result<(), String> {
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

pub(crate) async fn latency(client: &Client, runs: u64) -> Result<(), String> {
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

pub(crate) async fn history_length(client: &Client, n: u64) -> Result<(), String> {
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
