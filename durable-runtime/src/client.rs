//! The client: starts, queries, signals and manages instances, from any process.

use crate::backend::{Backend, InstanceMessage, NewInstance};
use crate::engine::store::LATEST_VERSION;
use crate::entity::{Entity, EntitySink};
use crate::error::Error;
use crate::history::HistoryEvent;
use crate::ids::EntityId;
use crate::instance::{InstanceId, InstancePage, InstanceQuery, InstanceStatus, RuntimeStatus};
use crate::orchestrator::BoxFuture;
use crate::orchestrator::Orchestrator;
use crate::payload;
use crate::schedule::{SCHEDULE_ID_PREFIX, SCHEDULE_ORCHESTRATOR, Schedule, ScheduleInfo, ScheduleState};
use crate::state::EntityJournalEntry;
use crate::state::Snapshot;
use crate::trace::TraceContext;
use crate::transient::{Backoff, Repeat, retry};
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The default limit on payloads (inputs, event data) sent through a client: 1 MiB. Workers
/// apply the same default to what they produce (`WorkerBuilder::max_payload_bytes`).
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = crate::engine::DEFAULT_MAX_PAYLOAD_BYTES;

/// How long a client call goes on retrying transient backend errors by default: 10 s.
pub const DEFAULT_TRANSIENT_RETRY: Duration = Duration::from_secs(10);

/// Starts, queries, signals, terminates and purges instances. Cheap to clone.
///
/// # When the backend cannot be reached for a moment
///
/// Every call rides out transient backend errors ([`Error::is_transient`]: Redis restarting,
/// a connection refused, reset or dropped) by trying again with exponential backoff, for up to
/// [`with_transient_retry`](Self::with_transient_retry) (default
/// [`DEFAULT_TRANSIENT_RETRY`]); [`wait_for_completion`](Self::wait_for_completion) does so
/// within its own timeout. What is tried again:
///
/// - reads (`status`, `history`, `list`, `entity_state`, …) and the waits: always;
/// - `terminate`, `suspend`, `resume`, `rewind`, `purge` and `purge_where`: always, since a second one changes
///   nothing (the instance is already terminated, suspended, running or gone; a `purge` whose
///   first attempt deleted the instance but lost the reply answers `Ok(false)`);
/// - starting an instance: always, and a start whose reply was lost is recognised by its
///   execution id, so it never creates the instance twice (see
///   [`start_with_id`](Self::start_with_id));
/// - `raise_event` and entity signals: only when the error says the call never reached the
///   backend (connection refused, Redis still loading); if the connection dropped after it
///   was sent it may have been applied, and sending it again would deliver it twice, so the
///   error is returned and says so.
#[derive(Clone)]
pub struct Client {
    backend: Arc<dyn Backend>,
    max_payload_bytes: usize,
    transient_retry: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("transient_retry", &self.transient_retry)
            .finish()
    }
}

impl Client {
    /// A client on this backend.
    pub fn new<B: Backend>(backend: B) -> Self {
        Self::from_arc(Arc::new(backend))
    }

    /// A client on a shared backend.
    pub fn from_arc(backend: Arc<dyn Backend>) -> Self {
        Self { backend, max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES, transient_retry: DEFAULT_TRANSIENT_RETRY }
    }

    /// Refuse payloads (inputs, event data) over `n` bytes with `Error::PayloadTooLarge`
    /// (default [`DEFAULT_MAX_PAYLOAD_BYTES`]).
    pub fn with_max_payload_bytes(mut self, n: usize) -> Self {
        self.max_payload_bytes = n;
        self
    }

    /// Go on retrying a call that fails with a transient backend error for up to `d` (default
    /// [`DEFAULT_TRANSIENT_RETRY`]; `Duration::ZERO` returns the first error). See
    /// [the type's docs](Client#when-the-backend-cannot-be-reached-for-a-moment) for what is
    /// retried. [`wait_for_completion`](Self::wait_for_completion) retries within its own
    /// timeout instead.
    pub fn with_transient_retry(mut self, d: Duration) -> Self {
        self.transient_retry = d;
        self
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Run a call, retrying transient errors as `repeat` allows.
    async fn call<T, F, Fut>(&self, what: impl std::fmt::Display, repeat: Repeat, call: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        retry(&mut Backoff::within(self.transient_retry), what, repeat, call).await
    }

    /// Read an instance's status, retrying transient errors.
    async fn read_status(&self, id: &str) -> Result<Option<InstanceStatus>, Error> {
        self.call("reading an instance's status", Repeat::Safe, || self.backend.status(id)).await
    }

    /// Send a message to an instance, retrying transient errors as `repeat` allows.
    async fn send(
        &self,
        id: &str,
        message: InstanceMessage,
        what: impl std::fmt::Display,
        repeat: Repeat,
    ) -> Result<(), Error> {
        self.call(what, repeat, || self.backend.send_message(id, message.clone())).await
    }

    fn check_size(&self, what: impl FnOnce() -> String, json: &str) -> Result<(), Error> {
        if json.len() > self.max_payload_bytes {
            crate::metrics::payload_refused();
            return Err(Error::PayloadTooLarge { what: what(), size: json.len(), limit: self.max_payload_bytes });
        }
        Ok(())
    }

    /// Start orchestrator `f` with `input` under a new random instance id.
    pub async fn start<O: Orchestrator>(&self, f: O, input: O::Input) -> Result<InstanceId, Error> {
        let _ = f;
        let json =
            payload::to_json(&input, format!("the input of orchestrator `{}`", O::NAME)).map_err(Error::Payload)?;
        self.start_json(O::NAME, O::VERSION, InstanceId::random().into_string(), json, true).await
    }

    /// Start orchestrator `f` with `input` under instance id `id`. `Error::InstanceAlreadyExists`
    /// if a live instance has that id (a finished one is replaced).
    ///
    /// If the connection drops after the start was sent, the client looks for the instance by
    /// the execution id it sent before sending it again, so a start applied but unanswered is
    /// not applied twice (and a finished instance it created is not replaced). If the id is
    /// then taken by an execution it cannot recognise as its own (the instance it created has
    /// already continued as new, or another client took the id meanwhile), it returns
    /// `Error::InstanceAlreadyExists`; ids from [`start`](Self::start) are random, so there
    /// the instance is its own.
    pub async fn start_with_id<O: Orchestrator>(
        &self,
        f: O,
        id: impl Into<String>,
        input: O::Input,
    ) -> Result<InstanceId, Error> {
        let _ = f;
        let json =
            payload::to_json(&input, format!("the input of orchestrator `{}`", O::NAME)).map_err(Error::Payload)?;
        self.start_json(O::NAME, O::VERSION, id.into(), json, false).await
    }

    /// Create schedule `id`: start orchestrator `f` with `input` at each fire time of
    /// `schedule`, each run under instance id `<id>@<fire time, RFC 3339 UTC>` (see
    /// [`crate::schedule`]). The first fire time is the first after the schedule's first step.
    /// `Error::ScheduleAlreadyExists` if a live schedule has that id.
    ///
    /// ```no_run
    /// # use durable_runtime::{Client, Schedule, OverlapPolicy};
    /// # async fn demo<O: durable_runtime::Orchestrator<Input = String>>(client: Client, report: O) -> Result<(), durable_runtime::Error> {
    /// let nightly = Schedule::cron("0 2 * * *")?.timezone("Europe/Paris")?.overlap(OverlapPolicy::BufferOne);
    /// client.schedule("nightly-report", nightly, report, "ops@example.com".to_string()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn schedule<O: Orchestrator>(
        &self,
        id: impl Into<String>,
        schedule: Schedule,
        f: O,
        input: O::Input,
    ) -> Result<String, Error> {
        let _ = f;
        let input = serde_json::to_value(&input)
            .map_err(|e| Error::Payload(format!("the input of orchestrator `{}`: {e}", O::NAME)))?;
        self.schedule_by_name(id, schedule, O::NAME, input).await
    }

    /// [`schedule`](Self::schedule) with the orchestrator's registered name and a JSON input
    /// (each run starts on the highest version registered).
    pub async fn schedule_by_name(
        &self,
        id: impl Into<String>,
        schedule: Schedule,
        orchestrator: &str,
        input: serde_json::Value,
    ) -> Result<String, Error> {
        let id = id.into();
        crate::schedule::check_id(&id)?;
        let state = ScheduleState {
            id: id.clone(),
            schedule,
            orchestrator: orchestrator.to_string(),
            input,
            cursor: None,
            buffered: None,
            runs_started: 0,
            skipped: 0,
            last_run: None,
            running: None,
        };
        let json = payload::to_json(&state, "the schedule").map_err(Error::Payload)?;
        let instance = format!("{SCHEDULE_ID_PREFIX}{id}");
        match self.start_json(SCHEDULE_ORCHESTRATOR, crate::ids::FIRST_VERSION, instance, json, false).await {
            Ok(_) => Ok(id),
            Err(Error::InstanceAlreadyExists(_)) => Err(Error::ScheduleAlreadyExists(id)),
            Err(e) => Err(e),
        }
    }

    /// Schedule `id`, or `None` if there is none (a deleted one, or one that never existed).
    pub async fn schedule_info(&self, id: &str) -> Result<Option<ScheduleInfo>, Error> {
        let status = self.read_status(&format!("{SCHEDULE_ID_PREFIX}{id}")).await?;
        Ok(status.filter(|s| s.name == SCHEDULE_ORCHESTRATOR).as_ref().and_then(crate::schedule::info_of))
    }

    /// Every schedule (live, paused, or stopped on an error), by id.
    pub async fn list_schedules(&self) -> Result<Vec<ScheduleInfo>, Error> {
        let mut out = Vec::new();
        let mut query = InstanceQuery::new().with_name(SCHEDULE_ORCHESTRATOR);
        query.instance_id_prefix = Some(SCHEDULE_ID_PREFIX.to_string());
        loop {
            let page = self.list(query.clone()).await?;
            out.extend(page.instances.iter().filter_map(crate::schedule::info_of));
            match page.continuation {
                Some(c) => query.continuation = Some(c),
                None => break,
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Pause schedule `id`: no run starts until [`resume_schedule`](Self::resume_schedule); then
    /// the catch-up policy decides what runs for the fire times missed meanwhile.
    pub async fn pause_schedule(&self, id: &str) -> Result<(), Error> {
        self.schedule_instance(id).await?;
        self.suspend(&format!("{SCHEDULE_ID_PREFIX}{id}"), "schedule paused").await
    }

    /// Resume a paused schedule.
    pub async fn resume_schedule(&self, id: &str) -> Result<(), Error> {
        self.schedule_instance(id).await?;
        self.resume(&format!("{SCHEDULE_ID_PREFIX}{id}"), "schedule resumed").await
    }

    /// Delete schedule `id`: no run starts any more (runs in flight go on) and its id is free.
    pub async fn delete_schedule(&self, id: &str) -> Result<(), Error> {
        let status = self.schedule_instance(id).await?;
        let instance = format!("{SCHEDULE_ID_PREFIX}{id}");
        if !status.is_finished() {
            match self.terminate(&instance, "schedule deleted").await {
                Ok(()) | Err(Error::InvalidState { .. }) => {}
                Err(e) => return Err(e),
            }
            // Purge refuses a live instance: wait for the termination to be applied.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while !self.read_status(&instance).await?.is_none_or(|s| s.is_finished()) {
                if std::time::Instant::now() > deadline {
                    return Err(Error::Timeout {
                        id: instance,
                        timeout: std::time::Duration::from_secs(30),
                        status: "terminating".into(),
                    });
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        self.purge(&instance).await?;
        Ok(())
    }

    async fn schedule_instance(&self, id: &str) -> Result<InstanceStatus, Error> {
        match self.read_status(&format!("{SCHEDULE_ID_PREFIX}{id}")).await? {
            Some(s) if s.name == SCHEDULE_ORCHESTRATOR => Ok(s),
            _ => Err(Error::ScheduleNotFound(id.to_string())),
        }
    }

    /// Start the orchestrator registered as `name` with a JSON input, under a new random id. It
    /// runs on the highest version of `name` registered on the worker that takes its first step.
    /// An unknown name or an input of the wrong shape fails the instance with a clear message.
    pub async fn start_by_name(&self, name: &str, input: serde_json::Value) -> Result<InstanceId, Error> {
        let json = input.to_string();
        self.start_json(name, LATEST_VERSION, InstanceId::random().into_string(), json, true).await
    }

    /// Start the orchestrator registered as `name` with a JSON input under instance id `id`.
    pub async fn start_by_name_with_id(
        &self,
        name: &str,
        id: impl Into<String>,
        input: serde_json::Value,
    ) -> Result<InstanceId, Error> {
        self.start_json(name, LATEST_VERSION, id.into(), input.to_string(), false).await
    }

    /// Create the instance. `random`: the id was drawn at random here, so an instance with it
    /// can only be the one this call created.
    async fn start_json(
        &self,
        name: &str,
        version: u32,
        id: String,
        json: String,
        random: bool,
    ) -> Result<InstanceId, Error> {
        let id = InstanceId::new(id)?;
        self.check_size(|| format!("the input of orchestrator `{name}`"), &json)?;
        // The instance's trace starts here: a child of the caller's context, if it has one.
        let span = tracing::info_span!(
            "durable.start",
            instance = %id,
            orchestrator = name,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
            parent_span_id = tracing::field::Empty,
        );
        let trace = crate::trace::enter(&span, TraceContext::current().as_ref());
        let new = NewInstance::new(id.as_str(), name, json).with_version(version).with_trace(Some(trace));
        tracing::Instrument::instrument(self.create(id, new, random), span).await
    }

    /// Create instance `new` (retrying transient errors without creating it twice).
    async fn create(&self, id: InstanceId, new: NewInstance, random: bool) -> Result<InstanceId, Error> {
        let mut backoff = Backoff::within(self.transient_retry);
        // Whether an attempt may have created the instance without us hearing back.
        let mut maybe_created = false;
        loop {
            let e = match self.backend.create_instance(new.clone()).await {
                Ok(()) => return Ok(id),
                Err(e) => e,
            };
            match e.transient() {
                None if maybe_created && matches!(e, Error::InstanceAlreadyExists(_)) => {
                    return if random || self.created_by(&new).await? { Ok(id) } else { Err(e) };
                }
                None => return Err(e),
                Some(t) => {
                    maybe_created |= t == crate::error::Transient::Unknown;
                    tracing::debug!(instance = %id, error = %e, "starting an instance: the backend cannot be reached; trying again");
                    if !backoff.pause().await {
                        return Err(e);
                    }
                    // Applied but unanswered: do not create it again (a finished instance
                    // would be replaced, and run twice).
                    if maybe_created && self.created_by(&new).await? {
                        return Ok(id);
                    }
                }
            }
        }
    }

    /// Whether the instance `new` describes exists with the execution `new` started.
    async fn created_by(&self, new: &NewInstance) -> Result<bool, Error> {
        let s = self.read_status(&new.instance_id).await?;
        Ok(s.is_some_and(|s| s.execution_id == new.execution_id))
    }

    /// The instance's status, or `None` if there is no such instance.
    pub async fn status(&self, id: &str) -> Result<Option<InstanceStatus>, Error> {
        self.read_status(id).await
    }

    async fn existing(&self, id: &str) -> Result<InstanceStatus, Error> {
        self.read_status(id).await?.ok_or_else(|| Error::InstanceNotFound(id.to_string()))
    }

    /// Wait (real time) until the instance has finished — Completed, Failed or Terminated — and
    /// return its status; `Error::Timeout` if it has not within `timeout`. Transient backend
    /// errors (Redis restarting) are retried until `timeout`.
    pub async fn wait_for_completion(&self, id: &str, timeout: Duration) -> Result<InstanceStatus, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let wait =
            || self.backend.wait_for_finished(id, deadline.saturating_duration_since(tokio::time::Instant::now()));
        let finished = retry(&mut Backoff::until(deadline), "waiting for an instance", Repeat::Safe, wait).await?;
        match finished {
            None => Err(Error::InstanceNotFound(id.to_string())),
            Some(s) if s.is_finished() => Ok(s),
            Some(s) => Err(Error::Timeout {
                id: id.to_string(),
                timeout,
                status: match &s.reason {
                    Some(r) => format!("{}: {r}", s.runtime_status),
                    None => s.runtime_status.to_string(),
                },
            }),
        }
    }

    /// The instance's history, oldest first.
    pub async fn history(&self, id: &str) -> Result<Vec<HistoryEvent>, Error> {
        self.call("reading a history", Repeat::Safe, || self.backend.history(id))
            .await?
            .ok_or_else(|| Error::InstanceNotFound(id.to_string()))
    }

    /// Instances matching `query`, one page at a time.
    pub async fn list(&self, query: InstanceQuery) -> Result<InstancePage, Error> {
        self.call("listing instances", Repeat::Safe, || self.backend.list(query.clone())).await
    }

    /// Raise event `name` with `data` on the instance. Events that arrive before the
    /// orchestrator waits for them are kept until it does.
    pub async fn raise_event<T: Serialize>(&self, id: &str, name: &str, data: T) -> Result<(), Error> {
        let data = payload::to_json(&data, format!("the data of event `{name}`")).map_err(Error::Payload)?;
        self.check_size(|| format!("the data of event `{name}`"), &data)?;
        let s = self.existing(id).await?;
        if s.is_finished() {
            return Err(invalid(&s, format!("cannot raise event `{name}` on a finished instance")));
        }
        let message = InstanceMessage::Event { name: name.to_string(), data };
        self.send(id, message, &format!("event `{name}`"), Repeat::IfNotSent).await
    }

    /// Terminate the instance (its parent, if any, sees the sub-orchestration fail).
    pub async fn terminate(&self, id: &str, reason: &str) -> Result<(), Error> {
        let s = self.existing(id).await?;
        if s.is_finished() {
            return Err(invalid(&s, "cannot terminate an instance that has already finished".into()));
        }
        let message = InstanceMessage::Terminate { reason: reason.to_string() };
        self.send(id, message, "terminate", Repeat::Safe).await
    }

    /// Terminate the instance and, with it, every sub-orchestration it started that is still
    /// running, and theirs, recursively (found in the histories). The parent is terminated
    /// first, so it does not react to its children's ends. Returns how many instances were
    /// terminated; children that finished meanwhile are skipped.
    pub async fn terminate_recursive(&self, id: &str, reason: &str) -> Result<usize, Error> {
        self.terminate(id, reason).await?;
        let mut terminated = 1;
        let mut queue = vec![id.to_string()];
        let mut seen = std::collections::BTreeSet::from([id.to_string()]);
        while let Some(parent) = queue.pop() {
            for e in self.history(&parent).await? {
                let crate::history::EventKind::SubOrchestrationCreated { instance_id: child, .. } = e.kind else {
                    continue;
                };
                let child_reason = format!("{reason} (its parent {parent:?} was terminated)");
                if seen.contains(&child) {
                    continue;
                }
                match self.terminate(&child, &child_reason).await {
                    Ok(()) => terminated += 1,
                    // Finished, or purged, meanwhile: nothing to end (its children may still run).
                    Err(Error::InvalidState { .. } | Error::InstanceNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
                if seen.insert(child.clone()) {
                    queue.push(child);
                }
            }
        }
        Ok(terminated)
    }

    /// Suspend the instance: it takes no steps until resumed; messages wait.
    pub async fn suspend(&self, id: &str, reason: &str) -> Result<(), Error> {
        let s = self.existing(id).await?;
        if s.is_finished() {
            return Err(invalid(&s, "cannot suspend an instance that has already finished".into()));
        }
        let message = InstanceMessage::Suspend { reason: reason.to_string() };
        self.send(id, message, "suspend", Repeat::Safe).await
    }

    /// Resume a suspended instance.
    pub async fn resume(&self, id: &str, reason: &str) -> Result<(), Error> {
        let s = self.existing(id).await?;
        if s.is_finished() {
            return Err(invalid(&s, "cannot resume an instance that has already finished".into()));
        }
        let message = InstanceMessage::Resume { reason: reason.to_string() };
        self.send(id, message, "resume", Repeat::Safe).await
    }

    /// Rewind a failed instance: the tasks whose failure failed it run again, and it goes on
    /// from there.
    pub async fn rewind(&self, id: &str, reason: &str) -> Result<(), Error> {
        let s = self.existing(id).await?;
        if s.runtime_status != RuntimeStatus::Failed {
            return Err(invalid(&s, "only a failed instance can be rewound".into()));
        }
        let message = InstanceMessage::Rewind { reason: reason.to_string() };
        self.send(id, message, "rewind", Repeat::Safe).await
    }

    /// The live state of a suspended orchestration, for people and tools: its suspension
    /// point with its source line, program counter and live locals as JSON (`{"at":
    /// "ctx.wait_for_event(\"go\")", "line": 12, "pc": 7, "locals": {...}}`, see
    /// [`payload::state_to_json`]). A failed instance shows the state its failed step started
    /// from (what a rewind starts from). `None` if it has no snapshot (not started yet,
    /// completed, terminated, or a backend that cannot show it).
    pub async fn state(&self, id: &str) -> Result<Option<serde_json::Value>, Error> {
        Ok(self
            .call("reading a snapshot", Repeat::Safe, || self.backend.snapshot(id))
            .await?
            .map(|b| Snapshot::from_bytes(&b))
            .transpose()?
            .map(|s| payload::state_to_json(&s.state)))
    }

    /// Work waiting in the backend (activities, timers, unconsumed messages), if it can tell.
    pub async fn queue_depths(&self) -> Result<Option<crate::metrics::QueueDepths>, Error> {
        self.call("reading queue depths", Repeat::Safe, || self.backend.queue_depths()).await
    }

    /// The newest `limit` entries the backend could not read (a message variant from a newer
    /// release during a rolling upgrade, say), newest first: each was moved out of its stream
    /// to the backend's dead-letter stream with the reason, so it is neither lost nor read
    /// again and again. Always empty for the Memory backend.
    ///
    /// ```no_run
    /// # async fn f(client: durable_runtime::Client) -> Result<(), durable_runtime::Error> {
    /// for d in client.dead_letters(20).await? {
    ///     println!("{} {} partition {}: {}", d.stream, d.entry_id, d.partition, d.reason);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<crate::backend::DeadLetter>, Error> {
        self.call("reading dead letters", Repeat::Safe, || self.backend.dead_letters(limit)).await
    }

    /// Delete a finished instance and its history; `Ok(false)` if there was none.
    pub async fn purge(&self, id: &str) -> Result<bool, Error> {
        self.call("purge", Repeat::Safe, || self.backend.purge(id)).await
    }

    /// Delete every finished instance matching `query`, with its history and timers; how many
    /// were deleted. It filters like [`list`](Self::list) (statuses, name, created before/after)
    /// but goes through all matches in one call, in bounded batches, so it is the way to clean
    /// up a task hub after the fact (to have finished instances deleted as they age, configure
    /// a retention: `RedisBuilder::retention`, `Memory::with_retention`).
    ///
    /// - Live instances (Pending, Running, Suspended, ContinuedAsNew) and entities are never
    ///   deleted. The statuses in `query` must be finished ones (none = Completed, Failed and
    ///   Terminated); a live status is refused with `Error::InvalidQuery` rather than matching
    ///   nothing, since a purge of running instances can only be a mistake: terminate them first.
    /// - `query.limit`, if set, is the most to delete (the default is no limit);
    ///   `query.continuation` must be `None` (`Error::InvalidQuery`).
    /// - An instance that is restarted under the same id while the purge runs is kept.
    /// - Tried again on transient errors like [`purge`](Self::purge); a call tried again counts
    ///   only what its last attempt deleted.
    ///
    /// Named after the query it takes, like `list(query)`: `purge(id)` deletes one instance,
    /// `purge_where(query)` all that match.
    ///
    /// ```no_run
    /// # async fn f(client: durable_runtime::Client) -> Result<(), durable_runtime::Error> {
    /// use durable_runtime::{InstanceQuery, RuntimeStatus};
    /// use std::time::{Duration, SystemTime};
    /// let month_ago = SystemTime::now() - Duration::from_secs(30 * 24 * 3600);
    /// let query = InstanceQuery::new().with_status(RuntimeStatus::Completed).created_before(month_ago);
    /// let n = client.purge_where(query).await?;
    /// # Ok(()) }
    /// ```
    pub async fn purge_where(&self, query: InstanceQuery) -> Result<u64, Error> {
        crate::instance::purge_statuses(&query)?;
        self.call("bulk purge", Repeat::Safe, || self.backend.purge_where(query.clone())).await
    }

    /// How many instances match `query` (its `limit` and continuation aside): what a bulk
    /// `terminate_where` or `purge_where` would act on now — a dry run. Pages through the
    /// matches.
    pub async fn count(&self, query: InstanceQuery) -> Result<u64, Error> {
        let mut query = query.with_limit(1000);
        query.continuation = None;
        let mut n = 0;
        loop {
            let page = self.list(query.clone()).await?;
            n += page.instances.len() as u64;
            match page.continuation {
                Some(c) => query.continuation = Some(c),
                None => return Ok(n),
            }
        }
    }

    /// Terminate every live instance matching `query` (statuses Pending, Running, Suspended,
    /// ContinuedAsNew; all four if none is given — a finished status is an error), at most
    /// `limit` of them if set; how many were terminated. Instances that finish meanwhile are
    /// skipped. `count(query)` first gives the number a dry run would.
    ///
    /// ```no_run
    /// # async fn f(client: durable_runtime::Client) -> Result<(), durable_runtime::Error> {
    /// use durable_runtime::InstanceQuery;
    /// let n = client.terminate_where(InstanceQuery::new().with_name("nightly_report"), "replaced by v2").await?;
    /// # Ok(()) }
    /// ```
    pub async fn terminate_where(&self, query: InstanceQuery, reason: &str) -> Result<u64, Error> {
        let mut query = live_query(query)?;
        let mut left = query.limit.map_or(u64::MAX, |n| n as u64);
        query.limit = Some(1000);
        let mut n = 0;
        while left > 0 {
            let page = self.list(query.clone()).await?;
            for s in &page.instances {
                if left == 0 {
                    break;
                }
                match self.terminate(&s.instance_id, reason).await {
                    Ok(()) => {
                        n += 1;
                        left -= 1;
                    }
                    Err(Error::InvalidState { .. } | Error::InstanceNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            match page.continuation {
                Some(c) => query.continuation = Some(c),
                None => break,
            }
        }
        Ok(n)
    }
}

/// `query` as a bulk terminate takes it: live statuses only (all four if none is given); an
/// error for a finished status or a continuation.
pub fn live_query(mut query: InstanceQuery) -> Result<InstanceQuery, Error> {
    if query.continuation.is_some() {
        return Err(Error::InvalidQuery(
            "a bulk terminate takes no continuation: it terminates every match in one call (use `limit` for fewer)"
                .to_string(),
        ));
    }
    let finished: Vec<String> = query.statuses.iter().filter(|s| s.is_terminal()).map(ToString::to_string).collect();
    if !finished.is_empty() {
        return Err(Error::InvalidQuery(format!(
            "only live instances (Pending, Running, Suspended, ContinuedAsNew) can be terminated, not {}",
            finished.join(", ")
        )));
    }
    if query.statuses.is_empty() {
        query.statuses = RuntimeStatus::ALL.into_iter().filter(|s| !s.is_terminal()).collect();
    }
    Ok(query)
}

impl Client {
    /// A typed proxy to signal operations of entity `E` with `key`: each operation returns a
    /// future that completes once the signal is stored (not when it has run), e.g.
    /// `client.signal_entity::<Counter>("k").add(10).await?`. The entity is created by its
    /// first operation.
    pub fn signal_entity<E: Entity>(&self, key: impl Into<String>) -> E::Proxy<ClientSignal<'_>> {
        E::__proxy(ClientSignal { client: self, entity: EntityId::of::<E>(key) })
    }

    /// Signal operation `op` of entity `name`/`key` with a JSON input, for callers without
    /// the entity's type. An unknown operation or an input of the wrong shape fails that
    /// operation only: the state stays as it was and [`entity`](Self::entity) reports the
    /// error.
    pub async fn signal_entity_by_name(
        &self,
        name: &str,
        key: &str,
        op: &str,
        input: serde_json::Value,
    ) -> Result<(), Error> {
        self.send_entity_operation(&EntityId::new(name, key), op, input.to_string()).await
    }

    /// Validate and send one operation (a signal) to an entity.
    async fn send_entity_operation(&self, id: &EntityId, op: &str, input: String) -> Result<(), Error> {
        let instance_id = validate_entity_id(id)?;
        self.check_size(|| format!("the input of operation `{op}` on entity `{id}`"), &input)?;
        let span = tracing::info_span!(
            "durable.signal",
            entity = %id,
            op,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
            parent_span_id = tracing::field::Empty,
        );
        let trace = Some(crate::trace::enter(&span, TraceContext::current().as_ref()));
        let message = InstanceMessage::EntityOperation { op: op.to_string(), input, sender: None, reply: None, trace };
        let what = OperationOn { op, id };
        tracing::Instrument::instrument(self.send(&instance_id, message, what, Repeat::IfNotSent), span).await
    }

    /// The state of entity `E` with `key`; `None` if it was never created (or was deleted).
    pub async fn entity_state<E: Entity>(&self, key: impl Into<String>) -> Result<Option<E>, Error> {
        let id = EntityId::of::<E>(key);
        match self.entity(&id.name, &id.key).await? {
            Some(EntityStatus { state: Some(json), .. }) => {
                payload::from_json(&json, format!("the state of entity `{id}`")).map(Some).map_err(Error::Payload)
            }
            _ => Ok(None),
        }
    }

    /// An entity's record by name and key: its state as JSON (`None` if it does not exist), the
    /// last failed operation, and when it last changed. `None` if it never received anything.
    pub async fn entity(&self, name: &str, key: &str) -> Result<Option<EntityStatus>, Error> {
        let id = EntityId::new(name, key);
        Ok(self.read_status(&id.instance_id()).await?.map(|s| EntityStatus::from_status(id, s)))
    }

    /// The last operations entity `name`/`key` applied, oldest first (how many it keeps:
    /// `WorkerBuilder::entity_journal`, default 20): what changed its state, when, sent by
    /// whom, with what result. Empty if it never applied one; `InstanceNotFound` if there is
    /// no such entity.
    pub async fn entity_journal(&self, name: &str, key: &str) -> Result<Vec<EntityJournalEntry>, Error> {
        let id = EntityId::new(name, key).instance_id();
        let Some(bytes) = self.call("reading a snapshot", Repeat::Safe, || self.backend.snapshot(&id)).await? else {
            return match self.read_status(&id).await? {
                Some(_) => Ok(Vec::new()),
                None => Err(Error::InstanceNotFound(id)),
            };
        };
        let snapshot = Snapshot::from_bytes(&bytes)?;
        let record: crate::state::EntityRecord = payload::from_state(&snapshot.state)
            .map_err(|e| Error::Backend(format!("the record of entity {name}/{key} does not decode: {e}")))?;
        Ok(record.journal.into())
    }

    /// Entities, optionally of one name, in creation order (one page; see [`InstanceQuery`]).
    pub async fn list_entities(&self, name: Option<&str>, limit: usize) -> Result<Vec<EntityStatus>, Error> {
        let mut out = Vec::new();
        let mut query = InstanceQuery::new().with_limit(1000);
        if let Some(n) = name {
            query = query.with_name(n);
        }
        loop {
            let page = self.list(query.clone()).await?;
            for s in page.instances {
                if let Some(id) = EntityId::from_instance_id(&s.instance_id) {
                    if s.output.is_some() {
                        out.push(EntityStatus::from_status(id, s));
                    }
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            match page.continuation {
                Some(c) => query = query.with_continuation(c),
                None => return Ok(out),
            }
        }
    }

    /// Delete an entity and its state; `Ok(false)` if there was none.
    pub async fn purge_entity(&self, name: &str, key: &str) -> Result<bool, Error> {
        self.purge(&EntityId::new(name, key).instance_id()).await
    }
}

/// What [`Client::entity`] reports about an entity.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityStatus {
    /// The entity.
    pub id: EntityId,
    /// Its state as JSON; `None` if it does not exist (never created, or deleted).
    pub state: Option<String>,
    /// The error of the last operation that failed, if any.
    pub last_error: Option<String>,
    /// When it last changed (ms since the Unix epoch).
    pub updated_ms: crate::time::Millis,
}

impl EntityStatus {
    fn from_status(id: EntityId, s: InstanceStatus) -> Self {
        Self { id, state: s.output, last_error: s.error, updated_ms: s.updated_ms }
    }
}

/// "operation `op` on entity `id`", as errors name a signal: written only when one does.
#[derive(Clone, Copy)]
struct OperationOn<'a> {
    op: &'a str,
    id: &'a EntityId,
}

impl std::fmt::Display for OperationOn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "operation `{}` on entity `{}`", self.op, self.id)
    }
}

/// Check an entity's id; its instance id if it is valid.
fn validate_entity_id(id: &EntityId) -> Result<String, Error> {
    let instance_id = id.instance_id();
    if id.name.is_empty() || id.name.contains('@') {
        return Err(Error::InvalidInstanceId {
            id: instance_id,
            reason: "an entity name must be non-empty and must not contain `@`".to_string(),
        });
    }
    crate::instance::validate_instance_id(&instance_id)?;
    Ok(instance_id)
}

/// Sink of [`Client::signal_entity`]: a one-way operation sent from outside.
pub struct ClientSignal<'a> {
    client: &'a Client,
    entity: EntityId,
}

impl<'a> EntitySink for ClientSignal<'a> {
    type Output<R: serde::de::DeserializeOwned + 'static> = BoxFuture<'a, Result<(), Error>>;
    fn __send<R: serde::de::DeserializeOwned + 'static, I: Serialize>(
        self,
        op: &'static str,
        input: &I,
    ) -> BoxFuture<'a, Result<(), Error>> {
        let input = payload::to_json(input, format_args!("the input of operation `{op}` on entity `{}`", self.entity));
        Box::pin(async move {
            let input = input.map_err(Error::Payload)?;
            self.client.send_entity_operation(&self.entity, op, input).await
        })
    }
}

fn invalid(s: &InstanceStatus, what: String) -> Error {
    Error::InvalidState { id: s.instance_id.clone(), status: s.runtime_status.to_string(), what }
}
