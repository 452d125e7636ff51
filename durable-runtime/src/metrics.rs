//! Counters and latency histograms of the workers in this process, and the backend's queue
//! depths, in Prometheus text format (what `GET /metrics` of the HTTP API serves).

use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0, 10.0];

/// A latency histogram (cumulative buckets, Prometheus style).
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; 12],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Self { buckets: [const { AtomicU64::new(0) }; 12], count: AtomicU64::new(0), sum_nanos: AtomicU64::new(0) }
    }

    /// Record one observation.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
    }

    /// How many observations.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (b, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_nanos.load(Relaxed) as f64 / 1e9);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// The counters of this process's workers.
#[derive(Debug)]
pub struct WorkerMetrics {
    /// Orchestration and entity steps computed.
    pub steps: AtomicU64,
    /// Steps whose commit was refused because the worker no longer held the instance.
    pub commits_lock_lost: AtomicU64,
    /// Steps whose commit failed otherwise (handed back).
    pub commit_errors: AtomicU64,
    /// Instances that completed.
    pub instances_completed: AtomicU64,
    /// Instances that failed.
    pub instances_failed: AtomicU64,
    /// Activity attempts started.
    pub activities_started: AtomicU64,
    /// Activity attempts that returned `Ok`.
    pub activities_completed: AtomicU64,
    /// Activity attempts that returned `Err` or panicked.
    pub activities_failed: AtomicU64,
    /// Time to compute a step (the engine and the state machine, not the commit).
    pub step_seconds: Histogram,
    /// Time to commit a batch of steps.
    pub commit_seconds: Histogram,
    /// Time an activity attempt ran.
    pub activity_seconds: Histogram,
    /// Payloads refused for being over the limit (client inputs, activity outputs, what steps
    /// and entity operations produce).
    pub payloads_refused: AtomicU64,
    /// Partition leases this process acquired.
    pub leases_acquired: AtomicU64,
    /// Partition leases this process lost (not renewed in time, or taken over).
    pub leases_lost: AtomicU64,
    /// Partition leases this process handed back (rebalancing, shutdown).
    pub leases_released: AtomicU64,
    /// Committed steps whose history was replayed through the registered code (drift check).
    pub drift_checks: AtomicU64,
    /// Drift checks whose replay diverged from the history (code that no longer does what the
    /// history says it did).
    pub drift_detected: AtomicU64,
    /// Instances this process last saw blocked (no registered code can run them).
    blocked: Mutex<BTreeSet<String>>,
}

impl WorkerMetrics {
    /// Record whether instance `id` is blocked after a step this process committed.
    pub fn set_blocked(&self, id: &str, blocked: bool) {
        let mut set = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if blocked {
            if !set.contains(id) {
                set.insert(id.to_string());
            }
        } else if !set.is_empty() {
            set.remove(id);
        }
    }

    /// How many instances this process last saw blocked.
    pub fn blocked(&self) -> usize {
        self.blocked.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The flow-control gauges and counters of this process: per orchestrator limit, the holders
/// and waiters of each key as last stepped here; per activity, the items running under a
/// concurrency limit, those waiting for one or for their rate, and the delays.
#[derive(Debug, Default)]
struct Flow {
    /// (orchestrator, key) → (holders, waiters), as the semaphore was last stepped here.
    limits: std::collections::BTreeMap<(String, String), (usize, usize)>,
    /// activity → its counts in this process.
    activities: std::collections::BTreeMap<String, ActivityFlow>,
}

#[derive(Debug, Default, Clone, Copy)]
struct ActivityFlow {
    /// Running with a slot of the activity's concurrency limit.
    running: u64,
    /// Waiting for a slot.
    waiting_slot: u64,
    /// Waiting for the rate limit.
    waiting_rate: u64,
    /// Attempts that had to wait for the rate limit.
    rate_limited: u64,
    /// Time waited for the rate limit, in ms.
    rate_wait_ms: u64,
}

static FLOW: Mutex<Flow> =
    Mutex::new(Flow { limits: std::collections::BTreeMap::new(), activities: std::collections::BTreeMap::new() });

fn flow() -> std::sync::MutexGuard<'static, Flow> {
    FLOW.lock().unwrap_or_else(|p| p.into_inner())
}

/// Record the holders and waiters of orchestrator `orchestrator`'s concurrency limit for `key`
/// after a step of its semaphore in this process (an idle one is forgotten).
pub fn set_limit_gauges(orchestrator: &str, key: &str, holders: usize, waiters: usize) {
    let mut f = flow();
    let k = (orchestrator.to_string(), key.to_string());
    if holders == 0 && waiters == 0 {
        f.limits.remove(&k);
    } else {
        f.limits.insert(k, (holders, waiters));
    }
}

/// What an activity attempt under a limit is doing, for the gauges of [`activity_flow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivityWait {
    /// Waiting for a slot of its concurrency limit.
    Slot,
    /// Waiting for its rate limit.
    Rate,
    /// Running with a slot of its concurrency limit.
    Running,
}

/// Count one attempt of `activity` into (`+1`) or out of (`-1`) a state.
pub fn activity_flow(activity: &str, state: ActivityWait, delta: i64) {
    let mut f = flow();
    let a = f.activities.entry(activity.to_string()).or_default();
    let v = match state {
        ActivityWait::Slot => &mut a.waiting_slot,
        ActivityWait::Rate => &mut a.waiting_rate,
        ActivityWait::Running => &mut a.running,
    };
    *v = v.saturating_add_signed(delta);
}

/// An attempt of `activity` waited `waited` for its rate limit before it started.
pub fn rate_limited(activity: &str, waited: Duration) {
    let mut f = flow();
    let a = f.activities.entry(activity.to_string()).or_default();
    a.rate_limited += 1;
    a.rate_wait_ms += waited.as_millis() as u64;
}

fn render_flow(out: &mut String) {
    let f = flow();
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    let mut per: std::collections::BTreeMap<&str, (usize, usize, usize)> = std::collections::BTreeMap::new();
    for ((o, _), (h, w)) in &f.limits {
        let e = per.entry(o.as_str()).or_default();
        e.0 += h;
        e.1 += w;
        e.2 += 1;
    }
    type Get = fn(&(usize, usize, usize)) -> usize;
    let limits: [(&str, &str, Get); 3] = [
        (
            "durable_concurrency_limit_holders",
            "Instances holding a slot of their orchestrator's concurrency limit, over its keys, as the semaphores were last stepped by this process.",
            |v| v.0,
        ),
        (
            "durable_concurrency_limit_waiters",
            "Instances waiting for a slot of their orchestrator's concurrency limit, over its keys, as the semaphores were last stepped by this process.",
            |v| v.1,
        ),
        (
            "durable_concurrency_limit_keys",
            "Keys of an orchestrator's concurrency limit with holders or waiters, as last stepped by this process.",
            |v| v.2,
        ),
    ];
    for (name, help, get) in limits {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (o, v) in &per {
            let _ = writeln!(out, "{name}{{orchestrator=\"{}\"}} {}", esc(o), get(v));
        }
    }
    type GetA = fn(&ActivityFlow) -> f64;
    let acts: [(&str, &str, &str, GetA); 5] = [
        (
            "durable_activity_limit_running",
            "gauge",
            "Attempts running with a slot of their activity's concurrency limit, in this process.",
            |a| a.running as f64,
        ),
        (
            "durable_activity_limit_waiting",
            "gauge",
            "Attempts fetched by this process waiting for a slot of their activity's concurrency limit.",
            |a| a.waiting_slot as f64,
        ),
        (
            "durable_activity_rate_waiting",
            "gauge",
            "Attempts fetched by this process waiting for their activity's rate limit.",
            |a| a.waiting_rate as f64,
        ),
        (
            "durable_activity_rate_limited_total",
            "counter",
            "Attempts that waited for their activity's rate limit before starting, in this process.",
            |a| a.rate_limited as f64,
        ),
        (
            "durable_activity_rate_limit_wait_seconds_total",
            "counter",
            "Time attempts waited for their activity's rate limit, in this process.",
            |a| a.rate_wait_ms as f64 / 1e3,
        ),
    ];
    for (name, kind, help, get) in acts {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (n, a) in &f.activities {
            let _ = writeln!(out, "{name}{{activity=\"{}\"}} {}", esc(n), get(a));
        }
    }
}

/// A partition lease changed hands: counted for `/metrics` and logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseChange {
    /// This process acquired it.
    Acquired,
    /// This process lost it.
    Lost,
    /// This process handed it back.
    Released,
}

/// Count and log a lease change of partition `partition` under fencing epoch `epoch`.
pub fn lease_changed(change: LeaseChange, partition: u32, epoch: u64) {
    let m = &GLOBAL;
    match change {
        LeaseChange::Acquired => {
            m.leases_acquired.fetch_add(1, Relaxed);
            tracing::info!(partition, epoch, "durable.lease: acquired");
        }
        LeaseChange::Lost => {
            m.leases_lost.fetch_add(1, Relaxed);
            tracing::warn!(partition, epoch, "durable.lease: lost (not renewed in time, or taken over)");
        }
        LeaseChange::Released => {
            m.leases_released.fetch_add(1, Relaxed);
            tracing::info!(partition, epoch, "durable.lease: handed back");
        }
    }
}

/// Count a payload refused for being over the limit.
pub fn payload_refused() {
    GLOBAL.payloads_refused.fetch_add(1, Relaxed);
}

static GLOBAL: WorkerMetrics = WorkerMetrics {
    steps: AtomicU64::new(0),
    commits_lock_lost: AtomicU64::new(0),
    commit_errors: AtomicU64::new(0),
    instances_completed: AtomicU64::new(0),
    instances_failed: AtomicU64::new(0),
    activities_started: AtomicU64::new(0),
    activities_completed: AtomicU64::new(0),
    activities_failed: AtomicU64::new(0),
    step_seconds: Histogram::new(),
    commit_seconds: Histogram::new(),
    activity_seconds: Histogram::new(),
    payloads_refused: AtomicU64::new(0),
    drift_checks: AtomicU64::new(0),
    drift_detected: AtomicU64::new(0),
    leases_acquired: AtomicU64::new(0),
    leases_lost: AtomicU64::new(0),
    leases_released: AtomicU64::new(0),
    blocked: Mutex::new(BTreeSet::new()),
};

/// The counters of the workers in this process.
pub fn worker_metrics() -> &'static WorkerMetrics {
    &GLOBAL
}

/// Work waiting in a backend.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueDepths {
    /// Activity work items queued or running.
    pub activities: u64,
    /// Timers waiting to fire.
    pub timers: u64,
    /// Inbox messages not yet consumed by a step.
    pub messages: u64,
    /// The same per partition, for a partitioned backend (Redis); empty otherwise.
    pub partitions: Vec<PartitionDepths>,
}

/// Work waiting in one partition of a backend.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionDepths {
    /// The partition.
    pub partition: u32,
    /// Activity work items queued or running.
    pub activities: u64,
    /// Timers waiting to fire.
    pub timers: u64,
    /// Inbox messages not yet consumed by a step.
    pub messages: u64,
    /// How long the oldest of them has waited, in ms; `None` if there is none, or it was
    /// written by a release that did not record the time. Messages of suspended or blocked
    /// instances wait on purpose and count too.
    pub oldest_message_age_ms: Option<u64>,
}

/// Render this process's worker metrics, and `depths` if given, as Prometheus text.
///
/// Names follow Prometheus conventions: counters end in `_total`, durations are histograms
/// in seconds (`_seconds`), ages are gauges in seconds; per-partition series carry a
/// `partition` label.
pub fn render(out: &mut String, depths: Option<QueueDepths>) {
    let m = &GLOBAL;
    let counters: [(&str, &str, &AtomicU64); 11] = [
        ("durable_steps_total", "Orchestration and entity steps computed by this process's workers.", &m.steps),
        (
            "durable_commits_lock_lost_total",
            "Step commits refused because the worker no longer held the instance.",
            &m.commits_lock_lost,
        ),
        ("durable_commit_errors_total", "Step commits that failed and were handed back.", &m.commit_errors),
        (
            "durable_instances_completed_total",
            "Instances that completed, stepped by this process.",
            &m.instances_completed,
        ),
        ("durable_instances_failed_total", "Instances that failed, stepped by this process.", &m.instances_failed),
        ("durable_activities_started_total", "Activity attempts started by this process.", &m.activities_started),
        ("durable_activities_completed_total", "Activity attempts that returned Ok.", &m.activities_completed),
        ("durable_activities_failed_total", "Activity attempts that returned Err or panicked.", &m.activities_failed),
        (
            "durable_payloads_refused_total",
            "Payloads refused for being over the size limit (client inputs, activity outputs, step and entity payloads).",
            &m.payloads_refused,
        ),
        (
            "durable_drift_checks_total",
            "Committed steps whose history was replayed through the registered code (WorkerBuilder::drift_check).",
            &m.drift_checks,
        ),
        (
            "durable_drift_detected_total",
            "Drift checks whose replay diverged from the history: the code no longer does what the history says it did.",
            &m.drift_detected,
        ),
    ];
    for (name, help, v) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Relaxed));
    }
    let name = "durable_lease_changes_total";
    let _ = writeln!(out, "# HELP {name} Partition leases acquired, lost or handed back by this process.");
    let _ = writeln!(out, "# TYPE {name} counter");
    for (change, v) in [("acquired", &m.leases_acquired), ("lost", &m.leases_lost), ("released", &m.leases_released)] {
        let _ = writeln!(out, "{name}{{change=\"{change}\"}} {}", v.load(Relaxed));
    }
    let name = "durable_instances_blocked";
    let _ = writeln!(
        out,
        "# HELP {name} Instances no registered code can run (version mismatch, unregistered orchestrator), as last stepped by this process.\n# TYPE {name} gauge\n{name} {}",
        m.blocked()
    );
    render_flow(out);
    m.step_seconds.render(out, "durable_step_seconds", "Time to compute one step.");
    m.commit_seconds.render(out, "durable_commit_seconds", "Time to commit a batch of steps.");
    m.activity_seconds.render(out, "durable_activity_seconds", "Time an activity attempt ran.");
    if let Some(d) = depths {
        let oldest = d.partitions.iter().filter_map(|p| p.oldest_message_age_ms).max();
        let gauges = [
            ("durable_queue_activities", "Activity work items queued or running in the backend.", d.activities as f64),
            ("durable_queue_timers", "Timers waiting in the backend.", d.timers as f64),
            ("durable_queue_messages", "Inbox messages not yet consumed by a step.", d.messages as f64),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        if d.partitions.is_empty() {
            return;
        }
        let name = "durable_queue_oldest_message_age_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Age of the oldest inbox message not yet consumed, over all partitions.\n# TYPE {name} gauge\n{name} {}",
            oldest.unwrap_or(0) as f64 / 1e3
        );
        type Get = fn(&PartitionDepths) -> f64;
        let per_partition: [(&str, &str, Get); 4] = [
            ("durable_partition_queue_messages", "Inbox messages not yet consumed, per partition.", |p| {
                p.messages as f64
            }),
            ("durable_partition_queue_activities", "Activity work items queued or running, per partition.", |p| {
                p.activities as f64
            }),
            ("durable_partition_queue_timers", "Timers waiting, per partition.", |p| p.timers as f64),
            (
                "durable_partition_oldest_message_age_seconds",
                "Age of the oldest inbox message not yet consumed, per partition (0 when there is none).",
                |p| p.oldest_message_age_ms.unwrap_or(0) as f64 / 1e3,
            ),
        ];
        for (name, help, get) in per_partition {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for p in &d.partitions {
                let _ = writeln!(out, "{name}{{partition=\"{}\"}} {}", p.partition, get(p));
            }
        }
    }
}
