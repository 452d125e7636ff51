//! The worker: fetches orchestration steps and activity work from a backend and runs them.
//!
//! ```no_run
//! # use durable_runtime::{backend::Memory, worker::Worker};
//! # async fn f() -> Result<(), durable_runtime::Error> {
//! let backend = Memory::new();
//! let worker = Worker::builder(backend.clone())
//!     // .orchestrator(hello_cities).activity(say_hello)
//!     .max_concurrent_activities(64)
//!     .start()
//!     .await?;
//! // … start instances with a `Client` …
//! worker.shutdown().await?;
//! # Ok(()) }
//! ```

use crate::backend::{ActivityWorkItem, Backend, OrchestrationWorkItem, StepCommit};
use crate::context::ActivityContext;
use crate::engine::{self, EngineConfig, Registry};
use crate::error::Error;
use crate::flow::{ActivityRate, ConcurrencyLimit, RateLimit};
use crate::metrics::ActivityWait;
use crate::orchestrator::{Activity, BoxFuture, Orchestrator};
use crate::payload;
use crate::trace::TraceContext;
use crate::transient::{Backoff, Repeat, retry};
use std::collections::HashMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// An activity, type-erased: JSON input to JSON output or an error message.
type ActivityFn = Arc<dyn Fn(ActivityContext, String) -> BoxFuture<'static, Result<String, String>> + Send + Sync>;

fn activity_fn<A: Activity>() -> ActivityFn {
    Arc::new(|ctx, input| {
        Box::pin(async move {
            let name = A::NAME;
            let input: A::Input = payload::from_json(&input, format!("the input of activity `{name}`"))?;
            let output = A::__run(ctx, input).await.map_err(|e| e.message().to_string())?;
            payload::to_json(&output, format!("the output of activity `{name}`"))
        })
    })
}

/// Runs orchestrations and activities. Build one with [`Worker::builder`].
#[derive(Debug)]
pub struct Worker {
    _private: (),
}

impl Worker {
    /// A worker builder on this backend.
    pub fn builder<B: Backend>(backend: B) -> WorkerBuilder {
        Self::builder_arc(Arc::new(backend))
    }

    /// A worker builder on a shared backend.
    pub fn builder_arc(backend: Arc<dyn Backend>) -> WorkerBuilder {
        WorkerBuilder {
            backend,
            registry: Registry::new(),
            activities: HashMap::new(),
            max_concurrent_activities: 100,
            max_concurrent_orchestrations: 500,
            engine: EngineConfig {
                task_table_apart_from: crate::engine::DEFAULT_TASK_TABLE_APART_FROM,
                ..EngineConfig::default()
            },
            shutdown_grace: Duration::from_secs(30),
            flow: ActivityFlow { worker: uuid::Uuid::new_v4().simple().to_string(), ..ActivityFlow::default() },
        }
    }
}

/// Configures and starts a [`Worker`].
pub struct WorkerBuilder {
    backend: Arc<dyn Backend>,
    registry: Registry,
    activities: HashMap<&'static str, ActivityFn>,
    max_concurrent_activities: usize,
    max_concurrent_orchestrations: usize,
    engine: EngineConfig,
    shutdown_grace: Duration,
    flow: ActivityFlow,
}

impl std::fmt::Debug for WorkerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut activities: Vec<_> = self.activities.keys().collect();
        activities.sort();
        f.debug_struct("WorkerBuilder")
            .field("orchestrators", &self.registry.names())
            .field("activities", &activities)
            .field("max_concurrent_activities", &self.max_concurrent_activities)
            .field("max_concurrent_orchestrations", &self.max_concurrent_orchestrations)
            .finish()
    }
}

impl WorkerBuilder {
    /// Run orchestrator `o` (the name of an `#[orchestrator]` function).
    pub fn orchestrator<O: Orchestrator>(mut self, o: O) -> Self {
        let _ = o;
        self.registry.register::<O>();
        self
    }

    /// Run the operations of entity type `E` (a type with an `#[entity]` impl).
    pub fn entity<E: crate::entity::Entity>(mut self) -> Self {
        self.registry.register_entity::<E>();
        self
    }

    /// Run activity `a` (the name of an `#[activity]` function).
    pub fn activity<A: Activity>(mut self, a: A) -> Self {
        let _ = a;
        self.activities.insert(A::NAME, activity_fn::<A>());
        self
    }

    /// At most `limit.max()` running instances of orchestrator `o` at once, per key of its
    /// input or in all ([`ConcurrencyLimit`]), across every worker of the backend. An instance
    /// over the limit stays `Pending` (its `reason` names the limit and the key) and starts,
    /// in the order the instances came, once one of the running ones completes, fails, is
    /// terminated or continues as new (which frees its slot and asks again for the new
    /// execution). Every worker that registers `o` must be given the same limit.
    ///
    /// The slots are kept by a built-in entity per key (`durable.limit`, key
    /// `<orchestrator>/<key>`), stepped by the workers like any entity; a rewound instance
    /// runs without asking for a slot again.
    pub fn concurrency_limit<O: Orchestrator>(mut self, o: O, limit: ConcurrencyLimit<O::Input>) -> Self {
        let _ = o;
        self.registry.set_limit(O::NAME, limit.erase(O::NAME));
        self
    }

    /// At most `max` executions of activity `a` at once across every worker of the backend
    /// (on Redis, counted in Redis: a sorted set of holders per activity, each entry expiring
    /// with the activity visibility timeout unless its worker renews it, so a killed worker
    /// frees its slots). Attempts over the limit wait, fetched but not started, and start in
    /// the order they first asked as far as the backend can; they count against this worker's
    /// [`max_concurrent_activities`](Self::max_concurrent_activities) while they wait. A
    /// `max` of 0 is refused by [`start`](Self::start). Every worker must be given the same
    /// limit.
    pub fn activity_concurrency<A: Activity>(mut self, a: A, max: u32) -> Self {
        let _ = a;
        self.flow.slots.insert(A::NAME, max);
        self
    }

    /// At most `limit`'s number of starts of activity `a` per period, in all or per key of
    /// its input ([`RateLimit`]), across every worker of the backend (on Redis, a sliding
    /// window in Redis, by Redis's clock). An attempt over the rate waits (fetched, not
    /// started) until the window lets it in; it does not fail. Every worker must be given the
    /// same limit.
    pub fn rate_limit<A: Activity>(mut self, a: A, limit: RateLimit<A::Input>) -> Self {
        let _ = a;
        self.flow.rates.insert(A::NAME, limit.erase(A::NAME));
        self
    }

    /// At most `n` activities at once (default 100).
    pub fn max_concurrent_activities(mut self, n: usize) -> Self {
        self.max_concurrent_activities = n;
        self
    }

    /// At most `n` orchestration steps at once (default 500). Steps only compute (the
    /// orchestrator code is deterministic and does no I/O) and are fetched and committed in
    /// batches, so more at once means larger batches and fewer round trips: on Redis,
    /// five-activity orchestrations run ~20% faster with 500 than with 100 (`docs/performance.md`);
    /// each step in flight holds its instance's snapshot in memory.
    pub fn max_concurrent_orchestrations(mut self, n: usize) -> Self {
        self.max_concurrent_orchestrations = n;
        self
    }

    /// How long an instance that cannot run on this worker (its snapshot was written by other
    /// code, or its orchestrator is not registered) waits before it is tried again (default 5 s).
    pub fn blocked_retry(mut self, d: Duration) -> Self {
        self.engine.blocked_retry = d;
        self
    }

    /// Check for drift: replay the history of one committed orchestration step in `one_in`
    /// (default 0: never) through the registered code, in the background, and report the first
    /// divergence — the history event and what the code now does instead — as an error log
    /// (`tracing`) and on `durable_drift_detected_total`. It catches what the macro cannot
    /// see: a clock read through a name imported outside the function, a global counter, an
    /// iteration over a `HashMap` made elsewhere, code changed under a running instance. Each
    /// check reads the instance's whole history: keep `one_in` large on busy workers.
    pub fn drift_check(mut self, one_in: u32) -> Self {
        self.engine.drift_check = one_in;
        self
    }

    /// How many of its last operations each entity keeps in its journal (default 20; 0 keeps
    /// none): operation, input, sender, time, result or error — `Client::entity_journal`,
    /// `durable entity history NAME KEY`, `GET /entities/{name}/{key}/history`. The journal is
    /// stored with the entity and rewritten at each of its steps: inputs and results are cut
    /// to 256 bytes.
    pub fn entity_journal(mut self, n: usize) -> Self {
        self.engine.entity_journal = n;
        self
    }

    /// The largest payload this worker's activities, orchestrations and entities may produce,
    /// in bytes of JSON (default 1 MiB, as the client's
    /// [`DEFAULT_MAX_PAYLOAD_BYTES`](crate::client::DEFAULT_MAX_PAYLOAD_BYTES)). Over it:
    ///
    /// - an activity's output fails its task (the orchestration sees a `TaskError`; retries
    ///   follow its policy), and an error message is cut to the limit (at least 1 KiB);
    /// - an orchestration's output, custom status or `continue_as_new` input, or the input or
    ///   data of what it schedules or sends (activities, sub-orchestrations, entity operations,
    ///   `send_event`), fails the instance, and nothing of that step is sent;
    /// - an entity's new state, an operation's result, or what an operation sends fails that
    ///   operation, and the state stays as it was.
    ///
    /// Each failure message names the payload, its size and the limit.
    pub fn max_payload_bytes(mut self, n: usize) -> Self {
        self.engine.max_payload_bytes = n;
        self
    }

    /// From how many entries (tasks open and results not yet awaited) an instance's task table
    /// is stored entry by entry apart from the rest of its state (default 256; 0: never), on a
    /// backend that can (both built-in ones can). A step then writes the entries it changed,
    /// not the whole table: a fan-out of 100,000 activities costs about the same per
    /// completion as one of 1,000. Below it the table stays in the snapshot, one small record
    /// per instance. A table once apart comes back into the snapshot when it is under a
    /// quarter of this.
    pub fn task_table_apart_from(mut self, entries: usize) -> Self {
        self.engine.task_table_apart_from = entries;
        self
    }

    /// How long [`WorkerHandle::shutdown`] waits for running activities before handing them
    /// back to the backend for another worker (default 30 s).
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = d;
        self
    }

    /// Start the worker in background tokio tasks. It runs until [`WorkerHandle::shutdown`] (or
    /// until the handle is dropped).
    ///
    /// A worker that registers activities but no orchestrator or entity runs activities only
    /// (it steps no instance, and on Redis takes no partition); one that registers
    /// orchestrators or entities but no activity runs no activity: workers can be split by
    /// role.
    pub async fn start(self) -> Result<WorkerHandle, Error> {
        if self.max_concurrent_activities == 0 || self.max_concurrent_orchestrations == 0 {
            return Err(Error::Config(
                "max_concurrent_activities and max_concurrent_orchestrations must be at least 1".into(),
            ));
        }
        if self.engine.max_payload_bytes == 0 {
            return Err(Error::Config("max_payload_bytes must be at least 1".into()));
        }
        let max_payload = self.engine.max_payload_bytes;
        self.registry.check()?;
        let mut zero: Vec<_> =
            self.flow.slots.iter().filter(|(_, n)| **n == 0).map(|(a, _)| format!("`{a}`")).collect();
        if !zero.is_empty() {
            zero.sort();
            return Err(Error::Config(format!(
                "the concurrency limit of activity {} is 0: it must be at least 1 (0 would never run it)",
                zero.join(", ")
            )));
        }
        let mut engine = self.engine;
        if !self.backend.keeps_task_tables_apart() {
            engine.task_table_apart_from = 0;
        }
        let (tx, rx) = watch::channel(false);
        // Split by role when only one kind is registered; a worker with nothing registered
        // runs both (and fails what it fetches, saying what it registers).
        let steps = !self.registry.is_empty() || self.activities.is_empty();
        let runs_activities = !self.activities.is_empty() || self.registry.is_empty();
        let mut registry = self.registry;
        if steps {
            // Every worker that steps orchestrations runs schedules (`Client::schedule`).
            registry.register::<crate::schedule::orchestrator::durable_schedule>();
        }
        let registry = Arc::new(registry);
        let activities = Arc::new(self.activities);
        let mut tasks = Vec::with_capacity(2);
        if steps {
            tasks.push(tokio::spawn(orchestration_loop(
                self.backend.clone(),
                registry,
                engine,
                self.max_concurrent_orchestrations,
                rx.clone(),
            )));
        }
        let backend = self.backend.clone();
        if runs_activities {
            tasks.push(tokio::spawn(activity_loop(
                self.backend,
                activities,
                Arc::new(self.flow),
                self.max_concurrent_activities,
                self.shutdown_grace,
                max_payload,
                rx,
            )));
        }
        Ok(WorkerHandle { shutdown: tx, tasks, backend })
    }

    /// Run the worker until ctrl-c, then shut it down gracefully.
    pub async fn run(self) -> Result<(), Error> {
        self.run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    }

    /// Run the worker until `signal` completes, then shut it down gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<(), Error> {
        let handle = self.start().await?;
        signal.await;
        handle.shutdown().await
    }
}

/// A running worker. Dropping it stops the worker without waiting; prefer
/// [`shutdown`](WorkerHandle::shutdown).
pub struct WorkerHandle {
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHandle").field("tasks", &self.tasks.len()).finish()
    }
}

impl WorkerHandle {
    /// Stop fetching work, finish the work in flight (activities that do not finish within the
    /// shutdown grace period are handed back to the backend), and return.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        let _ = self.shutdown.send(true);
        for t in std::mem::take(&mut self.tasks) {
            t.await.map_err(|e| Error::Backend(format!("a worker task failed: {e}")))?;
        }
        // Hand what this worker holds (e.g. Redis partitions) to the other workers now.
        self.backend.release().await?;
        Ok(())
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

const FETCH_WAIT: Duration = Duration::from_secs(5);
/// The pause after an internal error stepping an instance.
const ERROR_BACKOFF: Duration = Duration::from_millis(200);
/// The pauses after a failed fetch (the backend cannot be reached): doubling from the first
/// to the last, back to the first after a fetch that works.
const FETCH_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));
/// How long completing an activity goes on retrying transient errors before giving up (the
/// item then runs again once the backend's visibility timeout gives it to a worker).
const COMPLETE_RETRY: Duration = Duration::from_secs(60);
/// How long a shutting-down worker tries to hand back the activities it could not finish.
const ABANDON_RETRY: Duration = Duration::from_secs(10);

/// The pause before fetching again after `failures` failed fetches in a row (from 1).
fn fetch_backoff(failures: u32) -> Duration {
    let (first, last) = FETCH_BACKOFF;
    first.saturating_mul(1 << failures.saturating_sub(1).min(16)).min(last)
}

/// Most instances stepped (and committed) together.
const MAX_BATCH: usize = 256;

/// How many bytes of large snapshots a worker keeps decoded between two steps of their
/// instances ([`engine::SnapshotCache`]): a wide fan-out's snapshot is then not decoded again at
/// each step.
const SNAPSHOT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Take one permit (waiting), then as many more as are free, up to `max`.
async fn permits(
    sem: &Arc<Semaphore>,
    max: usize,
    rx: &mut watch::Receiver<bool>,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    let first = tokio::select! {
        p = sem.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        _ = stopped(rx) => return None,
    };
    let more = sem.available_permits().min(max - 1) as u32;
    let mut first = first;
    if more > 0
        && let Ok(p) = sem.clone().try_acquire_many_owned(more)
    {
        first.merge(p);
    }
    Some(first)
}

async fn orchestration_loop(
    backend: Arc<dyn Backend>,
    registry: Arc<Registry>,
    config: EngineConfig,
    max: usize,
    mut rx: watch::Receiver<bool>,
) {
    let config = Arc::new(config);
    let cache = Arc::new(engine::SnapshotCache::new(SNAPSHOT_CACHE_BYTES));
    let sem = Arc::new(Semaphore::new(max));
    let mut tasks = JoinSet::new();
    let mut failures = 0;
    loop {
        while tasks.try_join_next().is_some() {}
        let Some(mut held) = permits(&sem, MAX_BATCH, &mut rx).await else { break };
        let fetched = tokio::select! {
            r = backend.fetch_orchestration_work_batch(held.num_permits(), FETCH_WAIT) => r,
            _ = stopped(&mut rx) => break,
        };
        if fetched.is_ok() {
            failures = 0;
        }
        match fetched {
            Ok(items) if !items.is_empty() => {
                // Keep one permit per item; the rest go back at once.
                let held = held.split(items.len()).expect("at least one permit per item");
                let (backend, registry, config) = (backend.clone(), registry.clone(), config.clone());
                let cache = cache.clone();
                tasks.spawn(async move {
                    step_batch(&backend, &registry, &config, &cache, items).await;
                    drop(held);
                });
            }
            Ok(_) => {}
            Err(e) => {
                failures += 1;
                let pause = fetch_backoff(failures);
                tracing::warn!(error = %e, retry_in = ?pause, "fetching orchestration work failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stopped(&mut rx) => break,
                }
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Step a batch of instances and commit all their steps together (one round trip on Redis).
async fn step_batch(
    backend_arc: &Arc<dyn Backend>,
    registry_arc: &Arc<Registry>,
    config: &EngineConfig,
    cache: &engine::SnapshotCache,
    items: Vec<OrchestrationWorkItem>,
) {
    let (backend, registry): (&dyn Backend, &Registry) = (&**backend_arc, registry_arc);
    let mut commits = Vec::with_capacity(items.len());
    let mut stepped = Vec::with_capacity(items.len());
    let mut first_trace = None;
    for item in items {
        if let Some((commit, trace)) = step_instance(backend, registry, config, cache, &item).await {
            commits.push(commit);
            stepped.push(item);
            first_trace.get_or_insert(trace);
        }
    }
    if commits.is_empty() {
        return;
    }
    let m = crate::metrics::worker_metrics();
    // What each commit does to the instance's status: finished (terminal status), blocked or
    // not (for the blocked-instances gauge).
    let changes: Vec<Option<(crate::instance::RuntimeStatus, bool)>> =
        commits.iter().map(|c| c.status.as_ref().map(|s| (s.runtime_status, s.blocked))).collect();
    // One commit span per batch, in the trace of its first step.
    let span = tracing::debug_span!(
        "durable.commit",
        steps = commits.len(),
        commands = tracing::field::Empty,
        events = tracing::field::Empty,
        bytes = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
        error = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        parent_span_id = tracing::field::Empty,
    );
    if !span.is_disabled() {
        crate::trace::enter(&span, first_trace.as_ref());
        span.record("commands", commits.iter().map(|c| c.actions.len()).sum::<usize>());
        span.record("events", commits.iter().map(|c| c.new_events.len()).sum::<usize>());
        span.record("bytes", commits.iter().map(engine::commit_bytes).sum::<usize>());
    }
    let started = std::time::Instant::now();
    let committed = tracing::Instrument::instrument(backend.commit_batch(commits), span.clone()).await;
    let elapsed = started.elapsed();
    m.commit_seconds.observe(elapsed);
    span.record("latency_ms", elapsed.as_secs_f64() * 1e3);
    match committed {
        Ok(results) => {
            for ((item, r), change) in stepped.iter().zip(results).zip(changes) {
                use std::sync::atomic::Ordering::Relaxed;
                match r {
                    Ok(()) if drift_sampled(config, &item.instance_id) => {
                        tokio::spawn(drift_check(backend_arc.clone(), registry_arc.clone(), item.instance_id.clone()));
                        count_commit(m, &item.instance_id, change);
                    }
                    Ok(()) => count_commit(m, &item.instance_id, change),
                    Err(Error::LockLost(_)) => {
                        m.commits_lock_lost.fetch_add(1, Relaxed);
                    }
                    Err(e) => {
                        m.commit_errors.fetch_add(1, Relaxed);
                        span.record("error", tracing::field::display(&e));
                        tracing::warn!(instance = %item.instance_id, error = %e, "committing a step failed; the step is handed back");
                        let _ = backend.abandon_orchestration_work(&item.instance_id, item.lock).await;
                    }
                }
            }
        }
        Err(e) => {
            span.record("error", tracing::field::display(&e));
            tracing::warn!(steps = stepped.len(), error = %e, "committing a batch of steps failed; the steps are handed back");
            for item in &stepped {
                let _ = backend.abandon_orchestration_work(&item.instance_id, item.lock).await;
            }
        }
    }
}

/// Count a committed step's outcome: instances completed or failed, blocked or not.
fn count_commit(
    m: &crate::metrics::WorkerMetrics,
    instance_id: &str,
    change: Option<(crate::instance::RuntimeStatus, bool)>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    match change {
        Some((crate::instance::RuntimeStatus::Completed, _)) => {
            m.instances_completed.fetch_add(1, Relaxed);
            m.set_blocked(instance_id, false);
        }
        Some((crate::instance::RuntimeStatus::Failed, _)) => {
            m.instances_failed.fetch_add(1, Relaxed);
            m.set_blocked(instance_id, false);
        }
        Some((s, blocked)) => m.set_blocked(instance_id, blocked && !s.is_terminal()),
        None => {}
    }
}

/// Whether to check this committed step for drift: one in `config.drift_check` orchestration
/// steps (entities have no history to replay).
fn drift_sampled(config: &EngineConfig, instance_id: &str) -> bool {
    static STEPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = u64::from(config.drift_check);
    n > 0
        && !crate::ids::is_entity_instance(instance_id)
        && STEPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed).is_multiple_of(n)
}

/// Replay instance `id`'s history through the registered code of its orchestrator and
/// version; report a divergence (see `WorkerBuilder::drift_check`).
async fn drift_check(backend: Arc<dyn Backend>, registry: Arc<Registry>, id: String) {
    let (status, history) = match (backend.status(&id).await, backend.history(&id).await) {
        (Ok(Some(s)), Ok(Some(h))) => (s, h),
        // Purged or replaced meanwhile, or the backend is away: nothing to check now.
        _ => return,
    };
    let Some(entry) = registry.get_version(&status.name, status.version).or_else(|| registry.get(&status.name)) else {
        return;
    };
    let m = crate::metrics::worker_metrics();
    m.drift_checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Err(e) = engine::replay(entry, &id, &history) {
        m.drift_detected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(
            instance = %id,
            orchestrator = %status.name,
            version = status.version,
            error = %e,
            "drift: replaying the history through the registered code does not reproduce it"
        );
    }
}

/// One step: what to commit and the step's trace context, or `None` if the item was handed
/// back.
async fn step_instance(
    backend: &dyn Backend,
    registry: &Registry,
    config: &EngineConfig,
    cache: &engine::SnapshotCache,
    item: &OrchestrationWorkItem,
) -> Option<(StepCommit, TraceContext)> {
    use tracing::field::Empty;
    let entity = crate::ids::is_entity_instance(&item.instance_id);
    let span = if entity {
        tracing::info_span!(
            "durable.entity.batch",
            instance = %item.instance_id,
            messages = item.messages.len(),
            trace_id = Empty,
            span_id = Empty,
            parent_span_id = Empty,
        )
    } else {
        tracing::info_span!(
            "durable.step",
            instance = %item.instance_id,
            orchestrator = Empty,
            version = Empty,
            pc = Empty,
            resumed_at = Empty,
            messages = item.messages.len(),
            consumed = Empty,
            events = Empty,
            commands = Empty,
            status = Empty,
            blocked = Empty,
            trace_id = Empty,
            span_id = Empty,
            parent_span_id = Empty,
        )
    };
    let trace = crate::trace::enter(&span, engine::step_parent(item).as_ref());
    let mut prepared = engine::prepare_with(item, Some(cache));
    if !entity && !span.is_disabled() {
        if let Some(s) = &item.status {
            span.record("orchestrator", s.name.as_str());
            span.record("version", s.version);
        }
        if let Some((pc, at)) = prepared.resumed_at() {
            span.record("pc", pc);
            span.record("resumed_at", at.as_str());
        }
    }
    let mut history = None;
    let mut loaded = false;
    let now = backend.now();
    let started = std::time::Instant::now();
    let commit = loop {
        if prepared.needs_table {
            match backend.snapshot_table(&item.instance_id).await {
                Ok(t) => prepared.fill_table(&t),
                Err(e) => {
                    tracing::warn!(instance = %item.instance_id, error = %e, "loading the task table failed; the step is handed back");
                    let _ = backend.abandon_orchestration_work(&item.instance_id, item.lock).await;
                    return None;
                }
            }
        }
        if prepared.needs_history && !loaded {
            match backend.history(&item.instance_id).await {
                Ok(h) => history = h,
                Err(e) => {
                    tracing::warn!(instance = %item.instance_id, error = %e, "loading the history failed; the step is handed back");
                    let _ = backend.abandon_orchestration_work(&item.instance_id, item.lock).await;
                    return None;
                }
            }
            loaded = true;
        }
        let stepped = span.in_scope(|| {
            catch_unwind(AssertUnwindSafe(|| {
                engine::step_with(registry, item, prepared, history.as_deref(), now, config, Some(cache))
            }))
        });
        match stepped {
            Ok(engine::Stepped::NeedsHistory(p)) => prepared = p,
            Ok(engine::Stepped::Commit(c)) => break Ok(c),
            Err(p) => break Err(p),
        }
    };
    let m = crate::metrics::worker_metrics();
    m.step_seconds.observe(started.elapsed());
    m.steps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match commit {
        Ok(mut c) => {
            engine::stamp_trace(&mut c, &trace);
            if !span.is_disabled() {
                span.record("consumed", c.consumed.len());
                span.record("events", c.new_events.len());
                span.record("commands", c.actions.len());
                if let Some(s) = &c.status {
                    span.record("status", tracing::field::display(s.runtime_status));
                    span.record("blocked", s.blocked);
                    if s.blocked {
                        let _in = span.enter();
                        tracing::warn!(
                            instance = %item.instance_id,
                            reason = s.reason.as_deref().unwrap_or_default(),
                            "the instance cannot run on this worker; it waits for matching code"
                        );
                    }
                }
            }
            Some((c, trace))
        }
        Err(p) => {
            let _in = span.enter();
            tracing::error!(
                instance = %item.instance_id,
                panic = %engine::panic_message(p.as_ref()),
                "internal error stepping an instance; the step is handed back"
            );
            tokio::time::sleep(ERROR_BACKOFF).await;
            let _ = backend.abandon_orchestration_work(&item.instance_id, item.lock).await;
            None
        }
    }
}

async fn activity_loop(
    backend: Arc<dyn Backend>,
    activities: Arc<HashMap<&'static str, ActivityFn>>,
    flow: Arc<ActivityFlow>,
    max: usize,
    grace: Duration,
    max_payload: usize,
    mut rx: watch::Receiver<bool>,
) {
    let sem = Arc::new(Semaphore::new(max));
    let in_flight: Arc<Mutex<HashMap<u64, ActivityWorkItem>>> = Arc::default();
    let mut tasks = JoinSet::new();
    let mut failures = 0;
    loop {
        while tasks.try_join_next().is_some() {}
        let Some(mut held) = permits(&sem, MAX_BATCH, &mut rx).await else { break };
        let fetched = tokio::select! {
            r = backend.fetch_activity_work_batch(held.num_permits(), FETCH_WAIT) => r,
            _ = stopped(&mut rx) => break,
        };
        if fetched.is_ok() {
            failures = 0;
        }
        match fetched {
            Ok(items) if !items.is_empty() => {
                for item in items {
                    let permit = held.split(1).expect("one permit per item");
                    in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(item.work_id, item.clone());
                    let (backend, activities, in_flight) = (backend.clone(), activities.clone(), in_flight.clone());
                    let (flow, mut stop) = (flow.clone(), rx.clone());
                    let span = tracing::info_span!(
                        "durable.activity",
                        activity = %item.request.name,
                        instance = %item.request.instance_id,
                        task_id = item.request.task_id,
                        attempt = item.request.attempt,
                        error = tracing::field::Empty,
                        trace_id = tracing::field::Empty,
                        span_id = tracing::field::Empty,
                        parent_span_id = tracing::field::Empty,
                    );
                    crate::trace::enter(&span, item.request.trace.as_ref());
                    let in_span = span.clone();
                    let task = async move {
                        let outcome = match flow.admit(&backend, &item, &mut stop).await {
                            Some(Ok(slot)) => {
                                let outcome = run_activity(&activities, &item, max_payload).await;
                                drop(slot);
                                outcome
                            }
                            Some(Err(message)) => Err(message),
                            None => {
                                // Shut down while it waited for a slot or its rate: it never
                                // started, so it is handed back now, not after the grace.
                                let mine =
                                    in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&item.work_id).is_some();
                                if mine {
                                    let abandon = || backend.abandon_activity_work(item.clone());
                                    let mut backoff = Backoff::within(ABANDON_RETRY);
                                    if let Err(e) =
                                        retry(&mut backoff, "handing an activity back", Repeat::Safe, abandon).await
                                    {
                                        tracing::warn!(
                                            activity = %item.request.name,
                                            error = %e,
                                            "handing back an activity that waited for its limit failed; it runs again once the backend hands it out again"
                                        );
                                    }
                                }
                                drop(permit);
                                return;
                            }
                        };
                        if let Err(e) = &outcome {
                            in_span.record("error", e.as_str());
                        }
                        let mine = in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&item.work_id).is_some();
                        if mine {
                            // Only the first completion of an item counts, so completing it
                            // again after a lost reply changes nothing.
                            let complete = || backend.complete_activity_work(item.clone(), outcome.clone());
                            let mut backoff = Backoff::within(COMPLETE_RETRY);
                            if let Err(e) = retry(&mut backoff, "completing an activity", Repeat::Safe, complete).await
                            {
                                tracing::warn!(
                                    activity = %item.request.name,
                                    instance = %item.request.instance_id,
                                    error = %e,
                                    "completing an activity failed; it runs again once the backend hands it out again"
                                );
                            }
                        }
                        drop(permit);
                    };
                    tasks.spawn(tracing::Instrument::instrument(task, span));
                }
            }
            Ok(_) => {}
            Err(e) => {
                failures += 1;
                let pause = fetch_backoff(failures);
                tracing::warn!(error = %e, retry_in = ?pause, "fetching activity work failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stopped(&mut rx) => break,
                }
            }
        }
    }
    let drained = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let left: Vec<_> = in_flight.lock().unwrap_or_else(|p| p.into_inner()).drain().map(|(_, i)| i).collect();
        // Handing an item back twice changes nothing (only a pending item is handed back).
        let mut backoff = Backoff::within(ABANDON_RETRY);
        for item in left {
            let abandon = || backend.abandon_activity_work(item.clone());
            if let Err(e) = retry(&mut backoff, "handing an activity back", Repeat::Safe, abandon).await {
                tracing::warn!(
                    activity = %item.request.name,
                    error = %e,
                    "handing an unfinished activity back failed; it runs again once the backend hands it out again"
                );
            }
        }
    }
}

/// Run an activity: its JSON output, or its error message. An output over `max_payload` bytes
/// is an error naming it and the limit; an error message over it is cut.
async fn run_activity(
    activities: &HashMap<&'static str, ActivityFn>,
    item: &ActivityWorkItem,
    max_payload: usize,
) -> Result<String, String> {
    let r = &item.request;
    let Some(f) = activities.get(r.name.as_str()) else {
        let mut known: Vec<_> = activities.keys().map(|n| format!("`{n}`")).collect();
        known.sort();
        let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
        return Err(format!(
            "unknown activity `{}`: no activity with that name is registered on this worker (it registers {known})",
            r.name
        ));
    };
    let ctx = ActivityContext::new(r.instance_id.clone(), r.name.clone(), r.task_id, r.attempt);
    // Building the future runs user code too (input decoding): guard it as well.
    let fut = match catch_unwind(AssertUnwindSafe(|| f(ctx, r.input.clone()))) {
        Ok(fut) => fut,
        Err(p) => return Err(format!("activity `{}` panicked: {}", r.name, engine::panic_message(p.as_ref()))),
    };
    let m = crate::metrics::worker_metrics();
    m.activities_started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let started = std::time::Instant::now();
    let outcome = match (CatchUnwind { fut }).await {
        Ok(outcome) => outcome,
        Err(p) => Err(format!("activity `{}` panicked: {}", r.name, engine::panic_message(p.as_ref()))),
    };
    let outcome = match outcome {
        Ok(out) if out.len() > max_payload => {
            let what = format!("the output of activity `{}`", r.name);
            crate::metrics::payload_refused();
            Err(Error::PayloadTooLarge { what, size: out.len(), limit: max_payload }.to_string())
        }
        Err(message) => Err(cut(message, max_payload.max(1024))),
        ok => ok,
    };
    m.activity_seconds.observe(started.elapsed());
    let counter = if outcome.is_ok() { &m.activities_completed } else { &m.activities_failed };
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    outcome
}

/// `message`, cut to at most about `max` bytes (on a character boundary) with a note saying so.
fn cut(message: String, max: usize) -> String {
    if message.len() <= max {
        return message;
    }
    let mut end = max.saturating_sub(100);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (cut: the message is {} bytes, over the limit of {max})", &message[..end], message.len())
}

/// Polls a future, turning a panic into an error (an activity's panic never takes the worker
/// down, and needs no extra task).
struct CatchUnwind<F> {
    fut: F,
}

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let fut = &mut self.fut;
        match catch_unwind(AssertUnwindSafe(|| std::pin::Pin::new(fut).poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(p) => std::task::Poll::Ready(Err(p)),
        }
    }
}

/// The activity limits of a worker: concurrency (global, per activity) and rates.
#[derive(Debug, Default)]
struct ActivityFlow {
    /// Activity → at most this many running at once.
    slots: HashMap<&'static str, u32>,
    /// Activity → its rate limit.
    rates: HashMap<&'static str, ActivityRate>,
    /// This worker, in holder names (`<worker>:<work id>`).
    worker: String,
}

/// The longest pause between two attempts to take a slot or a start.
const FLOW_POLL_MAX: Duration = Duration::from_millis(50);

/// Counts an attempt in a flow-control gauge while it lives.
struct Gauge(&'static str, ActivityWait);

impl Gauge {
    fn new(activity: &'static str, state: ActivityWait) -> Self {
        crate::metrics::activity_flow(activity, state, 1);
        Self(activity, state)
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        crate::metrics::activity_flow(self.0, self.1, -1);
    }
}

/// A slot of an activity's concurrency limit: renewed while held, given back when dropped
/// (also when the attempt's task is aborted).
struct Slot {
    backend: Arc<dyn Backend>,
    name: &'static str,
    holder: String,
    renew: tokio::task::JoinHandle<()>,
    _running: Gauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.renew.abort();
        let (backend, name, holder) = (self.backend.clone(), self.name, std::mem::take(&mut self.holder));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let release = || backend.release_slot(name, &holder);
                let mut backoff = Backoff::within(COMPLETE_RETRY);
                if let Err(e) = retry(&mut backoff, "giving an activity slot back", Repeat::Safe, release).await {
                    tracing::warn!(activity = name, error = %e, "giving a slot of an activity's concurrency limit back failed; it expires with its lease");
                }
            });
        }
    }
}

impl ActivityFlow {
    /// Wait until `item` may start under its activity's limits: its slot, if its activity has
    /// a concurrency limit (given back when dropped), or why it cannot run (a rate-limit key
    /// function that panicked: the attempt fails with that message). `None` if the worker shuts
    /// down while it waits (a slot it took meanwhile is given back).
    async fn admit(
        &self,
        backend: &Arc<dyn Backend>,
        item: &ActivityWorkItem,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Result<Option<Slot>, String>> {
        let name = item.request.name.as_str();
        let rate = match self.rates.get_key_value(name) {
            Some((n, r)) => match r.key(&item.request.input) {
                Ok(key) => Some((*n, r, key)),
                Err(message) => return Some(Err(message)),
            },
            None => None,
        };
        let slots = self.slots.get_key_value(name);
        if rate.is_none() && slots.is_none() {
            return Some(Ok(None));
        }
        // Wait `d`: whether the worker shuts down meanwhile.
        let wait = async |d: Duration, stop: &mut watch::Receiver<bool>| {
            tokio::select! {
                _ = tokio::time::sleep(d) => false,
                _ = stopped(stop) => true,
            }
        };
        let holder = format!("{}:{}", self.worker, item.work_id);
        let mut slot = None;
        if let Some((&name, &max)) = slots {
            let waiting = Gauge::new(name, ActivityWait::Slot);
            let mut pause = Duration::from_millis(2);
            loop {
                match backend.acquire_slot(name, max, &holder).await {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(activity = name, error = %e, "taking a slot of an activity's concurrency limit failed; trying again")
                    }
                }
                if wait(pause, stop).await {
                    return None;
                }
                pause = (pause * 2).min(FLOW_POLL_MAX);
            }
            drop(waiting);
            let lease = backend.slot_lease();
            let renew = {
                let (backend, holder) = (backend.clone(), holder.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(lease / 3).await;
                        match backend.renew_slot(name, &holder).await {
                            Ok(true) => {}
                            Ok(false) => tracing::warn!(
                                activity = name,
                                "a slot of an activity's concurrency limit had expired before it was renewed; it is taken again"
                            ),
                            Err(e) => {
                                tracing::warn!(activity = name, error = %e, "renewing a slot of an activity's concurrency limit failed")
                            }
                        }
                    }
                })
            };
            slot = Some(Slot {
                backend: backend.clone(),
                name,
                holder: holder.clone(),
                renew,
                _running: Gauge::new(name, ActivityWait::Running),
            });
        }
        if let Some((name, r, key)) = rate {
            let window = if key.is_empty() { name.to_string() } else { format!("{name}/{key}") };
            let started = std::time::Instant::now();
            let mut waiting = None;
            loop {
                match backend.take_rate(&window, r.max, r.period, &holder).await {
                    Ok(None) => break,
                    Ok(Some(d)) => {
                        waiting.get_or_insert_with(|| Gauge::new(name, ActivityWait::Rate));
                        if wait(d.min(FLOW_POLL_MAX), stop).await {
                            return None;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(activity = name, error = %e, "taking a start of an activity's rate limit failed; trying again");
                        if wait(FLOW_POLL_MAX, stop).await {
                            return None;
                        }
                    }
                }
            }
            if waiting.is_some() {
                crate::metrics::rate_limited(name, started.elapsed());
            }
        }
        Some(Ok(slot))
    }
}
