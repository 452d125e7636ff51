//! The scenarios: each drives a fresh worker through a client. The throughput scenarios return
//! what they measured ([`Measured`]), for the caller to print each run and, over several runs,
//! the median and range; the others print their report.

use crate::WAIT;
use crate::server::Setting;
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

/// What one run of a throughput scenario measured.
#[derive(Clone, Debug)]
pub(crate) struct Measured {
    /// The time the rates are over: from the first start to the last completion.
    pub(crate) elapsed: Duration,
    /// What was done in that time, each reported per second (`(n, "orchestrations/s")`); the
    /// first is the scenario's headline figure.
    pub(crate) counts: Vec<(u64, &'static str)>,
    /// More about the run (how long the starts took, how many steps), or empty.
    pub(crate) note: String,
}

impl Measured {
    /// `counts` per second of `elapsed`.
    pub(crate) fn rates(&self) -> Vec<(f64, &'static str)> {
        self.counts.iter().map(|&(c, unit)| (per_second(c, self.elapsed), unit)).collect()
    }

    /// `1.234 s; 1621 orchestrations/s, 8105 activities/s; started all in 12.0 ms`.
    pub(crate) fn line(&self) -> String {
        let rates: Vec<String> = self.rates().iter().map(|(r, unit)| format!("{r:.0} {unit}")).collect();
        let note = if self.note.is_empty() { String::new() } else { format!("; {}", self.note) };
        format!("{:.3} s; {}{note}", self.elapsed.as_secs_f64(), rates.join(", "))
    }
}

/// The median of `v` (the mean of the two middle values of an even count) and its range.
pub(crate) fn median_range(v: &[f64]) -> (f64, f64, f64) {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    let median = if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 };
    (median, v[0], v[v.len() - 1])
}

/// Over several runs of one scenario: `median 1621 orchestrations/s [1500–1700], ...; time 1.234 s [1.1–1.3]`
/// (each the median and the range).
pub(crate) fn summary(runs: &[Measured]) -> String {
    let Some(first) = runs.first() else { return String::new() };
    let mut parts = Vec::new();
    for (k, &(_, unit)) in first.counts.iter().enumerate() {
        let rates: Vec<f64> = runs.iter().map(|m| m.rates()[k].0).collect();
        let (median, min, max) = median_range(&rates);
        parts.push(format!("{median:.0} {unit} [{min:.0}–{max:.0}]"));
    }
    let times: Vec<f64> = runs.iter().map(|m| m.elapsed.as_secs_f64()).collect();
    let (median, min, max) = median_range(&times);
    format!("median {}; time {median:.3} s [{min:.3}–{max:.3}]", parts.join(", "))
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

/// `per_entity` signals to each of `entities` entities, sent by `senders` concurrent tasks; timed
/// until every entity has applied all of them (checked by its count and sum).
pub(crate) async fn entity_signals(
    client: &Client,
    entities: u64,
    per_entity: u64,
    senders: u64,
) -> Result<Measured, String> {
    let run = std::process::id();
    let key = |e: u64| format!("bench-{run}-{e}");
    let t0 = Instant::now();
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
    Ok(Measured {
        elapsed: t0.elapsed(),
        counts: vec![(entities * per_entity, "signals/s applied")],
        note: format!("all sent in {:.3} s", sent.as_secs_f64()),
    })
}

pub(crate) async fn five_activity(client: &Client, n: u64, concurrent_waits: bool) -> Result<Measured, String> {
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
    Ok(Measured {
        elapsed: t0.elapsed(),
        counts: vec![(n, "orchestrations/s"), (5 * n, "activities/s"), (6 * n, "orchestration steps/s")],
        note: format!("started all in {:.1} ms", started.as_secs_f64() * 1e3),
    })
}

pub(crate) async fn sequential(client: &Client, n: u64) -> Result<Measured, String> {
    let t0 = Instant::now();
    let id = client.start(sequence, n).await.map_err(|e| format!("start: {e}"))?;
    finish(client, &id, n).await?;
    let d = t0.elapsed();
    Ok(Measured {
        elapsed: d,
        counts: vec![(n + 1, "steps/s")],
        note: format!("{:.1} us per step", micros(d) / (n as f64 + 1.0)),
    })
}

pub(crate) async fn fan_out_in(client: &Client, n: u64) -> Result<Measured, String> {
    let t0 = Instant::now();
    let id = client.start(fan_out, n).await.map_err(|e| format!("start: {e}"))?;
    finish(client, &id, n * (n + 1) / 2).await?;
    let elapsed = t0.elapsed();
    Ok(Measured { elapsed, counts: vec![(n, "activities/s")], note: steps_of(client, &id, "").await? })
}

/// `N orchestration steps (M history events)` of instance `id`, after `what`.
async fn steps_of(client: &Client, id: &InstanceId, what: &str) -> Result<String, String> {
    let history = client.history(id).await.map_err(|e| format!("history of {id}: {e}"))?;
    let steps = history.iter().filter(|e| matches!(e.kind, durable::EventKind::OrchestratorStarted)).count();
    Ok(format!("{what}{steps} orchestration steps ({} history events)", history.len()))
}

/// One parent starting `n` children of `five_activities` at once and awaiting them all with
/// `when_all`; timed from the parent's start to its completion.
pub(crate) async fn sub_orchestrations(client: &Client, n: u64) -> Result<Measured, String> {
    let t0 = Instant::now();
    let id = client.start(parent_of_five, n).await.map_err(|e| format!("start: {e}"))?;
    // Child i returns i + 5.
    finish(client, &id, n * n.saturating_sub(1) / 2 + 5 * n).await?;
    let elapsed = t0.elapsed();
    Ok(Measured {
        elapsed,
        counts: vec![(n, "children/s"), (5 * n, "activities/s")],
        note: steps_of(client, &id, "the parent: ").await?,
    })
}

pub(crate) async fn latency(client: &Client, runs: u64, setting: &Setting) -> Result<(), String> {
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
    println!(
        "latency: {runs} runs of a three-activity orchestration, one at a time (start -> wait_for_completion) {setting}"
    );
    println!(
        "  p50 {:.0} us, p99 {:.0} us, min {:.0} us, max {:.0} us, mean {:.0} us {setting}",
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

pub(crate) async fn history_length(client: &Client, n: u64, setting: &Setting) -> Result<(), String> {
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
         {events} history events per run ({per_step:.1} per step) {setting}"
    );
    println!("  {:.3} s in all {setting}", d.as_secs_f64());
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
            "    history {:>5.0}..{:>5.0} events (steps {:>4}..{:>4}): median {:>6.1} us, p90 {:>6.1} us {setting}",
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
