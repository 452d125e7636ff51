//! The contexts user code receives: [`OrchestrationContext`] and [`ActivityContext`].
//!
//! An orchestration context records what the orchestrator asks for (activities, timers, events,
//! sub-orchestrations) as commands, and hands it the results the engine delivered. It holds the
//! runtime part of an instance's state ([`RuntimeState`]), which is persisted beside the
//! generated state machine's snapshot.

use crate::entity::{Entity, EntityId, EntitySink};
use crate::error::{TaskError, TaskErrorKind};
use crate::payload;
use crate::retry::RetryPolicy;
use crate::task::{Select, Task, TaskKind, WhenAll, WhenAny};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

pub(crate) fn to_millis(t: SystemTime) -> Millis {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub(crate) fn from_millis(ms: Millis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// A task result waiting to be consumed by the orchestrator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Completion {
    /// Arrival order: decides which task `when_any`/`select` report as first.
    pub seq: u64,
    /// The JSON result, or the failure.
    pub outcome: Result<String, TaskError>,
}

/// A task that was scheduled and has not completed yet.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum OpenTask {
    /// An activity; `attempt` counts from 1.
    Activity {
        /// Activity name.
        name: String,
        /// JSON input.
        input: String,
        /// Retry policy, if any.
        retry: Option<RetryPolicy>,
        /// Current attempt (1-based).
        attempt: u32,
        /// Waiting on the backoff timer before the next attempt.
        waiting_retry: bool,
    },
    /// A durable timer.
    Timer {
        /// When it fires.
        fire_at: Millis,
    },
    /// A wait for an external event.
    Event {
        /// The event name.
        name: String,
    },
    /// A sub-orchestration.
    SubOrchestration {
        /// Orchestrator name.
        name: String,
        /// The child's instance id.
        instance_id: String,
    },
    /// An entity operation called with a result.
    Entity {
        /// The entity.
        entity: EntityId,
        /// The operation.
        op: String,
    },
    /// A request to lock entities.
    Lock {
        /// The entities, sorted.
        entities: Vec<EntityId>,
    },
}

/// The runtime part of an orchestration's persisted state: task bookkeeping and buffered events.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RuntimeState {
    /// Next task id to hand out.
    pub next_id: u64,
    /// Next completion arrival number.
    pub next_seq: u64,
    /// Results delivered and not yet consumed by an `.await`.
    pub results: BTreeMap<u64, Completion>,
    /// Tasks scheduled and not completed.
    pub open: BTreeMap<u64, OpenTask>,
    /// Tasks the orchestrator no longer waits for (losers of `when_any`/`select`); their late
    /// results are dropped.
    pub abandoned: BTreeSet<u64>,
    /// External events that arrived before anyone waited for them, in arrival order.
    pub buffered_events: VecDeque<(String, String)>,
    /// Counter behind `new_uuid()`.
    pub uuid_counter: u64,
    /// Entity locks requested or held (by lock task id): released when the orchestration
    /// unlocks them or ends.
    #[serde(default)]
    pub locks: BTreeMap<u64, Vec<EntityId>>,
}

/// What an orchestration step asks the outside world to do.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[non_exhaustive]
pub enum Command {
    /// Run an activity (attempt `attempt`).
    ScheduleActivity {
        /// Task id.
        id: u64,
        /// Activity name.
        name: String,
        /// JSON input.
        input: String,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// Start a durable timer.
    CreateTimer {
        /// Task id.
        id: u64,
        /// Fire time.
        fire_at: Millis,
    },
    /// Cancel a timer nobody waits for any more.
    CancelTimer {
        /// Task id.
        id: u64,
    },
    /// Start a sub-orchestration.
    StartSubOrchestration {
        /// Task id.
        id: u64,
        /// Orchestrator name.
        name: String,
        /// The child's instance id.
        instance_id: String,
        /// JSON input.
        input: String,
    },
    /// Call an entity operation; its result completes task `id`.
    CallEntity {
        /// Task id.
        id: u64,
        /// The entity.
        entity: EntityId,
        /// The operation.
        op: String,
        /// JSON input.
        input: String,
    },
    /// Signal an entity operation (one-way).
    SignalEntity {
        /// The entity.
        entity: EntityId,
        /// The operation.
        op: String,
        /// JSON input.
        input: String,
    },
    /// Lock entities (sorted); task `id` completes once all are held.
    LockEntities {
        /// Task id.
        id: u64,
        /// The entities, sorted.
        entities: Vec<EntityId>,
    },
    /// Release the locks taken by lock task `id`.
    UnlockEntities {
        /// The lock task's id.
        id: u64,
        /// The entities.
        entities: Vec<EntityId>,
    },
    /// Raise an event on another instance.
    SendEvent {
        /// Target instance.
        instance_id: String,
        /// Event name.
        name: String,
        /// JSON data.
        data: String,
    },
}

impl Command {
    /// The task id this command belongs to, if any.
    pub fn task_id(&self) -> Option<u64> {
        match self {
            Command::ScheduleActivity { id, .. }
            | Command::CreateTimer { id, .. }
            | Command::CancelTimer { id }
            | Command::StartSubOrchestration { id, .. }
            | Command::CallEntity { id, .. }
            | Command::LockEntities { id, .. }
            | Command::UnlockEntities { id, .. } => Some(*id),
            Command::SendEvent { .. } | Command::SignalEntity { .. } => None,
        }
    }
}

/// A message delivered to an orchestration's runtime state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum TaskMessage {
    /// An activity returned.
    ActivityCompleted {
        /// Task id.
        id: u64,
        /// JSON result.
        result: String,
    },
    /// An activity failed (error or panic).
    ActivityFailed {
        /// Task id.
        id: u64,
        /// Attempt that failed.
        attempt: u32,
        /// Error message.
        message: String,
    },
    /// A timer fired (also used for retry backoff timers of activities).
    TimerFired {
        /// Task id.
        id: u64,
    },
    /// An external event arrived.
    EventRaised {
        /// Event name.
        name: String,
        /// JSON data.
        data: String,
    },
    /// A sub-orchestration completed.
    SubOrchestrationCompleted {
        /// Task id.
        id: u64,
        /// JSON output.
        result: String,
    },
    /// A sub-orchestration failed or was terminated.
    SubOrchestrationFailed {
        /// Task id.
        id: u64,
        /// Failure message.
        message: String,
    },
    /// An entity operation returned.
    EntityCompleted {
        /// Task id.
        id: u64,
        /// JSON result.
        result: String,
    },
    /// An entity operation failed (error, panic, unknown operation, bad input).
    EntityFailed {
        /// Task id.
        id: u64,
        /// Failure message.
        message: String,
    },
    /// All entities of a lock request are held.
    LockAcquired {
        /// The lock task's id.
        id: u64,
    },
}

/// What applying a message did, for the history.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    /// The message completed a task, or was buffered (events).
    Delivered,
    /// An activity failed and will be retried after this backoff.
    RetryScheduled {
        /// Task id.
        id: u64,
        /// The attempt that will run next.
        next_attempt: u32,
        /// When.
        fire_at: Millis,
    },
    /// The message is a duplicate or for a task nobody waits for: dropped.
    Dropped,
}

/// The per-step state behind an [`OrchestrationContext`] (internal).
#[doc(hidden)]
#[derive(Debug)]
pub struct CtxState {
    pub(crate) instance_id: String,
    pub(crate) now: Millis,
    pub(crate) rt: RuntimeState,
    pub(crate) commands: Vec<Command>,
    pub(crate) custom_status: Option<Option<String>>,
    pub(crate) continue_as_new: Option<String>,
}

impl CtxState {
    fn alloc(&mut self) -> u64 {
        let id = self.rt.next_id;
        self.rt.next_id += 1;
        id
    }

    fn complete(&mut self, id: u64, outcome: Result<String, TaskError>) {
        let seq = self.rt.next_seq;
        self.rt.next_seq += 1;
        self.rt.results.insert(id, Completion { seq, outcome });
    }

    /// Peek a leaf task's completion.
    pub(crate) fn completion(&self, id: u64) -> Option<&Completion> {
        self.rt.results.get(&id)
    }

    /// The task is done with: drop its result, or if it has not completed, stop waiting for it.
    pub(crate) fn release(&mut self, id: u64) {
        if self.rt.results.remove(&id).is_some() {
            return;
        }
        if let Some(open) = self.rt.open.remove(&id) {
            self.rt.abandoned.insert(id);
            match open {
                OpenTask::Timer { .. } => self.commands.push(Command::CancelTimer { id }),
                OpenTask::Activity { waiting_retry: true, .. } => self.commands.push(Command::CancelTimer { id }),
                _ => {}
            }
        }
    }

    /// Apply a delivered message to the runtime state.
    pub(crate) fn apply(&mut self, msg: TaskMessage) -> Applied {
        match msg {
            TaskMessage::EventRaised { name, data } => {
                let waiter = self.rt.open.iter().find_map(|(id, t)| match t {
                    OpenTask::Event { name: n } if *n == name => Some(*id),
                    _ => None,
                });
                match waiter {
                    Some(id) => {
                        self.rt.open.remove(&id);
                        self.complete(id, Ok(data));
                    }
                    None => self.rt.buffered_events.push_back((name, data)),
                }
                Applied::Delivered
            }
            TaskMessage::ActivityCompleted { id, result } => match self.rt.open.get(&id) {
                Some(OpenTask::Activity { waiting_retry: false, .. }) => {
                    self.rt.open.remove(&id);
                    self.complete(id, Ok(result));
                    Applied::Delivered
                }
                _ => self.drop_late(id),
            },
            TaskMessage::ActivityFailed { id, attempt, message } => {
                let Some(OpenTask::Activity { name, retry, attempt: current, waiting_retry, .. }) =
                    self.rt.open.get_mut(&id)
                else {
                    return self.drop_late(id);
                };
                if *waiting_retry || *current != attempt {
                    return Applied::Dropped;
                }
                let delay = retry.as_ref().and_then(|p| p.delay_after(attempt));
                match delay {
                    Some(d) => {
                        *waiting_retry = true;
                        let fire_at = self.now + d.as_millis() as u64;
                        self.commands.push(Command::CreateTimer { id, fire_at });
                        Applied::RetryScheduled { id, next_attempt: attempt + 1, fire_at }
                    }
                    None => {
                        let err = TaskError::new(TaskErrorKind::ActivityFailed, name.clone(), message);
                        self.rt.open.remove(&id);
                        self.complete(id, Err(err));
                        Applied::Delivered
                    }
                }
            }
            TaskMessage::TimerFired { id } => match self.rt.open.get_mut(&id) {
                Some(OpenTask::Timer { .. }) => {
                    self.rt.open.remove(&id);
                    self.complete(id, Ok("null".to_string()));
                    Applied::Delivered
                }
                Some(OpenTask::Activity { name, input, attempt, waiting_retry, .. }) if *waiting_retry => {
                    *waiting_retry = false;
                    *attempt += 1;
                    self.commands.push(Command::ScheduleActivity {
                        id,
                        name: name.clone(),
                        input: input.clone(),
                        attempt: *attempt,
                    });
                    Applied::Delivered
                }
                _ => self.drop_late(id),
            },
            TaskMessage::SubOrchestrationCompleted { id, result } => match self.rt.open.get(&id) {
                Some(OpenTask::SubOrchestration { .. }) => {
                    self.rt.open.remove(&id);
                    self.complete(id, Ok(result));
                    Applied::Delivered
                }
                _ => self.drop_late(id),
            },
            TaskMessage::EntityCompleted { id, result } => match self.rt.open.get(&id) {
                Some(OpenTask::Entity { .. }) => {
                    self.rt.open.remove(&id);
                    self.complete(id, Ok(result));
                    Applied::Delivered
                }
                _ => self.drop_late(id),
            },
            TaskMessage::EntityFailed { id, message } => match self.rt.open.get(&id) {
                Some(OpenTask::Entity { entity, op }) => {
                    let err = TaskError::new(TaskErrorKind::EntityFailed, format!("{entity}.{op}"), message);
                    self.rt.open.remove(&id);
                    self.complete(id, Err(err));
                    Applied::Delivered
                }
                _ => self.drop_late(id),
            },
            TaskMessage::LockAcquired { id } => match self.rt.open.get(&id) {
                Some(OpenTask::Lock { .. }) => {
                    self.rt.open.remove(&id);
                    self.complete(id, Ok(serde_json::json!({ "lock": id }).to_string()));
                    Applied::Delivered
                }
                _ => self.drop_late(id),
            },
            TaskMessage::SubOrchestrationFailed { id, message } => match self.rt.open.get(&id) {
                Some(OpenTask::SubOrchestration { name, .. }) => {
                    let err = TaskError::new(TaskErrorKind::SubOrchestrationFailed, name.clone(), message);
                    self.rt.open.remove(&id);
                    self.complete(id, Err(err));
                    Applied::Delivered
                }
                _ => self.drop_late(id),
            },
        }
    }

    fn drop_late(&mut self, id: u64) -> Applied {
        self.rt.abandoned.remove(&id);
        Applied::Dropped
    }

    fn schedule(&mut self, open: OpenTask, command: impl FnOnce(u64) -> Command) -> u64 {
        let id = self.alloc();
        self.rt.open.insert(id, open);
        self.commands.push(command(id));
        id
    }

    fn fail_now(&mut self, kind: TaskErrorKind, name: &str, message: String) -> u64 {
        let id = self.alloc();
        self.complete(id, Err(TaskError::new(kind, name, message)));
        id
    }
}

/// The orchestrator's handle on the runtime: every method returns a durable task, and
/// `.await` on a task gives `Result<T, TaskError>`.
///
/// Everything here is deterministic: the same history gives the same tasks, times and UUIDs.
#[derive(Clone)]
pub struct OrchestrationContext {
    pub(crate) inner: Rc<RefCell<CtxState>>,
}

impl std::fmt::Debug for OrchestrationContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.inner.borrow();
        f.debug_struct("OrchestrationContext").field("instance_id", &st.instance_id).finish()
    }
}

impl OrchestrationContext {
    /// A context for one step of `instance_id` at time `now` with this runtime state.
    #[doc(hidden)]
    pub fn new(instance_id: impl Into<String>, now: Millis, rt: RuntimeState) -> Self {
        Self {
            inner: Rc::new(RefCell::new(CtxState {
                instance_id: instance_id.into(),
                now,
                rt,
                commands: Vec::new(),
                custom_status: None,
                continue_as_new: None,
            })),
        }
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut CtxState) -> R) -> R {
        f(&mut self.inner.borrow_mut())
    }

    /// This instance's id.
    pub fn instance_id(&self) -> String {
        self.inner.borrow().instance_id.clone()
    }

    /// The current time, deterministic: the time this step started, as recorded in the history.
    pub fn now(&self) -> SystemTime {
        from_millis(self.inner.borrow().now)
    }

    /// A UUID that is the same on every replay of this instance.
    pub fn new_uuid(&self) -> uuid::Uuid {
        let mut st = self.inner.borrow_mut();
        let n = st.rt.uuid_counter;
        st.rt.uuid_counter += 1;
        deterministic_uuid(&st.instance_id, n)
    }

    /// Schedule an activity. `f` is the activity's name as declared with `#[activity]`.
    pub fn call_activity<A: crate::Activity>(&self, f: A, input: A::Input) -> Task<A::Output> {
        let _ = f;
        self.schedule_activity(A::NAME, &input)
    }

    /// Schedule an activity by name with a JSON-serializable input (for activities registered
    /// in another process or language). Prefer [`call_activity`](Self::call_activity).
    pub fn call_activity_by_name<I: Serialize, O: DeserializeOwned>(&self, name: &str, input: I) -> Task<O> {
        self.schedule_activity(name, &input)
    }

    fn schedule_activity<I: Serialize, O>(&self, name: &str, input: &I) -> Task<O> {
        let mut st = self.inner.borrow_mut();
        let id = match payload::to_json(input, &format!("the input of activity `{name}`")) {
            Ok(input) => st.schedule(
                OpenTask::Activity {
                    name: name.to_string(),
                    input: input.clone(),
                    retry: None,
                    attempt: 1,
                    waiting_retry: false,
                },
                |id| Command::ScheduleActivity { id, name: name.to_string(), input, attempt: 1 },
            ),
            Err(e) => st.fail_now(TaskErrorKind::ScheduleFailed, name, e),
        };
        drop(st);
        Task::new(id, TaskKind::Activity, self.clone())
    }

    /// Start a sub-orchestration and get a task for its output. Its instance id is derived from
    /// this instance's id unless set with [`Task::with_instance_id`].
    pub fn call_orchestrator<O: crate::Orchestrator>(&self, f: O, input: O::Input) -> Task<O::Output> {
        let _ = f;
        let name = O::NAME;
        let mut st = self.inner.borrow_mut();
        let id = match payload::to_json(&input, &format!("the input of orchestrator `{name}`")) {
            Ok(input) => {
                let next = st.rt.next_id;
                let instance_id = format!("{}:{}", st.instance_id, next);
                st.schedule(
                    OpenTask::SubOrchestration { name: name.to_string(), instance_id: instance_id.clone() },
                    |id| Command::StartSubOrchestration { id, name: name.to_string(), instance_id, input },
                )
            }
            Err(e) => st.fail_now(TaskErrorKind::ScheduleFailed, name, e),
        };
        Task::new(id, TaskKind::SubOrchestration, self.clone())
    }

    /// A durable timer that fires after `duration` (from [`now`](Self::now)).
    pub fn timer(&self, duration: Duration) -> Task<()> {
        let mut st = self.inner.borrow_mut();
        let fire_at = st.now.saturating_add(duration.as_millis().min(u64::MAX as u128) as u64);
        let id = st.schedule(OpenTask::Timer { fire_at }, |id| Command::CreateTimer { id, fire_at });
        Task::new(id, TaskKind::Timer, self.clone())
    }

    /// A durable timer that fires at `time` (at once if that is in the past).
    pub fn timer_at(&self, time: SystemTime) -> Task<()> {
        let mut st = self.inner.borrow_mut();
        let fire_at = to_millis(time).max(st.now);
        let id = st.schedule(OpenTask::Timer { fire_at }, |id| Command::CreateTimer { id, fire_at });
        Task::new(id, TaskKind::Timer, self.clone())
    }

    /// Wait for an external event named `name` (raised with `Client::raise_event`). Events that
    /// arrived before the wait are kept and delivered in order.
    pub fn wait_for_event<T: DeserializeOwned>(&self, name: &str) -> Task<T> {
        let mut st = self.inner.borrow_mut();
        let buffered = st.rt.buffered_events.iter().position(|(n, _)| n == name);
        let id = match buffered {
            Some(pos) => {
                let (_, data) = st.rt.buffered_events.remove(pos).expect("position is valid");
                let id = st.alloc();
                st.complete(id, Ok(data));
                id
            }
            None => {
                let id = st.alloc();
                st.rt.open.insert(id, OpenTask::Event { name: name.to_string() });
                id
            }
        };
        Task::new(id, TaskKind::Event(name.to_string()), self.clone())
    }

    /// Raise an event on another instance (one-way).
    pub fn send_event<T: Serialize>(&self, instance_id: &str, name: &str, data: T) {
        let mut st = self.inner.borrow_mut();
        let data = payload::to_json(&data, &format!("the data of event `{name}`")).unwrap_or_else(|e| panic!("{e}"));
        st.commands.push(Command::SendEvent { instance_id: instance_id.to_string(), name: name.to_string(), data });
    }

    /// A task that completes when all `tasks` have: their results in task order, or the first
    /// failure (in task order) once all have finished.
    pub fn when_all<D, T>(&self, tasks: impl IntoIterator<Item = D>) -> WhenAll<D>
    where
        D: crate::task::DurableTask<Output = Result<T, TaskError>>,
    {
        WhenAll::new(tasks.into_iter().collect(), self.clone())
    }

    /// A task that completes when the first of `tasks` does: its index and result. The others
    /// are abandoned (timers among them cancelled).
    pub fn when_any<D: crate::task::DurableTask>(&self, tasks: impl IntoIterator<Item = D>) -> WhenAny<D> {
        WhenAny::new(tasks.into_iter().collect(), self.clone())
    }

    /// A task that completes when the first of `a` and `b` does; the other is abandoned
    /// (a losing timer is cancelled).
    pub fn select<A: crate::task::DurableTask, B: crate::task::DurableTask>(&self, a: A, b: B) -> Select<A, B> {
        Select::new(a, b, self.clone())
    }

    /// Set the instance's custom status (shown by `Client::status`), any serializable value.
    pub fn set_custom_status<T: Serialize>(&self, value: T) {
        let json = payload::to_json(&value, "the custom status").unwrap_or_else(|e| panic!("{e}"));
        self.inner.borrow_mut().custom_status = Some(Some(json));
    }

    /// Clear the instance's custom status.
    pub fn clear_custom_status(&self) {
        self.inner.borrow_mut().custom_status = Some(None);
    }

    /// Restart this orchestration with a new input once the orchestrator returns: the history
    /// starts over (keeping it short for eternal orchestrations), and events not yet consumed
    /// are carried over. The orchestrator's return value is then ignored.
    pub fn continue_as_new<T: Serialize>(&self, input: T) {
        let json = payload::to_json(&input, "the input of continue_as_new").unwrap_or_else(|e| panic!("{e}"));
        self.inner.borrow_mut().continue_as_new = Some(json);
    }

    /// A typed proxy to call operations of entity `E` with `key`: each call is a durable task
    /// whose `.await` gives the operation's result, e.g.
    /// `ctx.entity::<Counter>("k").get().await?`.
    pub fn entity<E: Entity>(&self, key: impl Into<String>) -> E::Proxy<EntityCall> {
        E::__proxy(EntityCall { ctx: self.clone(), entity: EntityId::of::<E>(key) })
    }

    /// A typed proxy to signal operations of entity `E` with `key` (one-way, no result), e.g.
    /// `ctx.signal::<Counter>("k").add(1)`.
    pub fn signal<E: Entity>(&self, key: impl Into<String>) -> E::Proxy<EntitySignalFromOrchestration> {
        E::__proxy(EntitySignalFromOrchestration { ctx: self.clone(), entity: EntityId::of::<E>(key) })
    }

    /// Lock `entities` for a critical section: the task completes once all are held; until
    /// they are released only this orchestration's operations run on them. Entities are
    /// acquired in one global order, so orchestrations locking overlapping sets never
    /// deadlock. Locks are released by [`unlock`](Self::unlock), or when the orchestration
    /// completes, fails, is terminated or continues as new.
    pub fn lock(&self, entities: impl IntoIterator<Item = EntityId>) -> Task<LockGuard> {
        let mut entities: Vec<EntityId> = entities.into_iter().collect();
        entities.sort();
        entities.dedup();
        let mut st = self.inner.borrow_mut();
        let id = st.alloc();
        if entities.is_empty() {
            st.complete(id, Ok(serde_json::json!({ "lock": id }).to_string()));
        } else {
            st.rt.open.insert(id, OpenTask::Lock { entities: entities.clone() });
            st.rt.locks.insert(id, entities.clone());
            st.commands.push(Command::LockEntities { id, entities });
        }
        Task::new(id, TaskKind::Lock, self.clone())
    }

    /// Release the locks of a critical section.
    pub fn unlock(&self, guard: LockGuard) {
        let mut st = self.inner.borrow_mut();
        if let Some(entities) = st.rt.locks.remove(&guard.lock) {
            st.commands.push(Command::UnlockEntities { id: guard.lock, entities });
        }
    }

    /// Take the commands produced so far (engine use).
    #[doc(hidden)]
    pub fn take_commands(&self) -> Vec<Command> {
        std::mem::take(&mut self.inner.borrow_mut().commands)
    }

    /// Deliver a message (engine and test-harness use).
    #[doc(hidden)]
    pub fn apply(&self, msg: TaskMessage) -> Applied {
        self.inner.borrow_mut().apply(msg)
    }

    /// Set the step time (engine use).
    #[doc(hidden)]
    pub fn set_now(&self, now: Millis) {
        self.inner.borrow_mut().now = now;
    }

    /// A copy of the runtime state (engine use).
    #[doc(hidden)]
    pub fn runtime_state(&self) -> RuntimeState {
        self.inner.borrow().rt.clone()
    }

    /// Take what the step set: custom status and continue-as-new input (engine use).
    #[doc(hidden)]
    pub fn take_step_effects(&self) -> (Option<Option<String>>, Option<String>) {
        let mut st = self.inner.borrow_mut();
        (st.custom_status.take(), st.continue_as_new.take())
    }
}

/// What an activity knows about its invocation.
#[derive(Clone, Debug)]
pub struct ActivityContext {
    pub(crate) instance_id: String,
    pub(crate) name: String,
    pub(crate) task_id: u64,
    pub(crate) attempt: u32,
}

impl ActivityContext {
    /// A context, for calling an activity function directly in a unit test.
    pub fn new(instance_id: impl Into<String>, name: impl Into<String>, task_id: u64, attempt: u32) -> Self {
        Self { instance_id: instance_id.into(), name: name.into(), task_id, attempt }
    }
    /// The orchestration instance that scheduled this activity.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }
    /// The activity's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The task id within the instance; with [`instance_id`](Self::instance_id) it identifies
    /// this invocation across retries (an idempotency key).
    pub fn task_id(&self) -> u64 {
        self.task_id
    }
    /// Attempt number, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

fn deterministic_uuid(seed: &str, n: u64) -> uuid::Uuid {
    fn fnv(bytes: &[u8], basis: u64) -> u64 {
        let mut h = basis;
        for b in bytes {
            h ^= *b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        h
    }
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    let a = mix(fnv(seed.as_bytes(), 0xcbf29ce484222325) ^ n);
    let b = mix(fnv(seed.as_bytes(), 0x84222325cbf29ce4).wrapping_add(n.wrapping_mul(0x9e3779b97f4a7c15)));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// What `ctx.lock(..).await` gives: pass it to `ctx.unlock` to end the critical section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockGuard {
    lock: u64,
}

/// Sink of [`OrchestrationContext::entity`]: an operation call whose result is a task.
pub struct EntityCall {
    ctx: OrchestrationContext,
    entity: EntityId,
}

impl EntitySink for EntityCall {
    type Output<R: DeserializeOwned + 'static> = Task<R>;
    fn __send<R: DeserializeOwned + 'static, I: Serialize>(self, op: &'static str, input: &I) -> Task<R> {
        let mut st = self.ctx.inner.borrow_mut();
        let name = format!("{}.{op}", self.entity);
        let id =
            match payload::to_json(input, &format!("the input of operation `{name}`")) {
                Ok(input) => {
                    let entity = self.entity.clone();
                    st.schedule(OpenTask::Entity { entity: entity.clone(), op: op.to_string() }, |id| {
                        Command::CallEntity { id, entity, op: op.to_string(), input }
                    })
                }
                Err(e) => st.fail_now(TaskErrorKind::ScheduleFailed, &name, e),
            };
        drop(st);
        Task::new(id, TaskKind::Entity, self.ctx.clone())
    }
}

/// Sink of [`OrchestrationContext::signal`]: a one-way operation.
pub struct EntitySignalFromOrchestration {
    ctx: OrchestrationContext,
    entity: EntityId,
}

impl EntitySink for EntitySignalFromOrchestration {
    type Output<R: DeserializeOwned + 'static> = ();
    fn __send<R: DeserializeOwned + 'static, I: Serialize>(self, op: &'static str, input: &I) {
        let input = payload::to_json(input, &format!("the input of operation `{}.{op}`", self.entity))
            .unwrap_or_else(|e| panic!("{e}"));
        self.ctx.inner.borrow_mut().commands.push(Command::SignalEntity {
            entity: self.entity,
            op: op.to_string(),
            input,
        });
    }
}
