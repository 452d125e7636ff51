//! Counters and latency histograms of the workers in this process, and the backend's queue
//! depths, in Prometheus text format (what `GET /metrics` of the HTTP API serves).

use std::fmt::Write;
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
};

/// The counters of the workers in this process.
pub fn worker_metrics() -> &'static WorkerMetrics {
    &GLOBAL
}

/// Work waiting in a backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepths {
    /// Activity work items queued or running.
    pub activities: u64,
    /// Timers waiting to fire.
    pub timers: u64,
    /// Inbox messages not yet consumed by a step.
    pub messages: u64,
}

/// Render this process's worker metrics, and `depths` if given, as Prometheus text.
pub fn render(out: &mut String, depths: Option<QueueDepths>) {
    let m = &GLOBAL;
    let counters: [(&str, &str, &AtomicU64); 8] = [
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
    ];
    for (name, help, v) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Relaxed));
    }
    m.step_seconds.render(out, "durable_step_seconds", "Time to compute one step.");
    m.commit_seconds.render(out, "durable_commit_seconds", "Time to commit a batch of steps.");
    m.activity_seconds.render(out, "durable_activity_seconds", "Time an activity attempt ran.");
    if let Some(d) = depths {
        let gauges = [
            ("durable_queue_activities", "Activity work items queued or running in the backend.", d.activities),
            ("durable_queue_timers", "Timers waiting in the backend.", d.timers),
            ("durable_queue_messages", "Inbox messages not yet consumed by a step.", d.messages),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
    }
}
