//! What an orchestrator can do with its [`OrchestrationContext`]: schedule activities, timers,
//! events, sub-orchestrations and entity operations (each a durable task), and the deterministic
//! helpers (`now`, `new_uuid`, custom status, `continue_as_new`).

use super::entity_calls::{EntityCall, EntitySignalFromOrchestration, LockGuard};
use super::handle::OrchestrationContext;
use crate::entity::Entity;
use crate::error::{TaskError, TaskErrorKind};
use crate::hash::{FNV_OFFSET, fnv1a_from};
use crate::ids::EntityId;
use crate::messages::Command;
use crate::orchestrator::{Activity, Orchestrator};
use crate::payload;
use crate::state::OpenTask;
use crate::task::{DurableTask, Select, Task, TaskKind, WhenAll, WhenAny};
use crate::time::{from_millis, to_millis};
use serde::{Serialize, de::DeserializeOwned};
use std::time::{Duration, SystemTime};

impl OrchestrationContext {
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
    pub fn call_activity<A: Activity>(&self, f: A, input: A::Input) -> Task<A::Output> {
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
        let id = match payload::to_json(input, format!("the input of activity `{name}`")) {
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
    pub fn call_orchestrator<O: Orchestrator>(&self, f: O, input: O::Input) -> Task<O::Output> {
        let _ = f;
        self.start_sub_orchestration(O::NAME, O::VERSION, &input)
    }

    /// Start a sub-orchestration by its registered name with a JSON-serializable input; it
    /// runs on the highest version registered on the worker that takes its first step. Prefer
    /// [`call_orchestrator`](Self::call_orchestrator).
    pub fn call_orchestrator_by_name<I: Serialize, O: DeserializeOwned>(&self, name: &str, input: I) -> Task<O> {
        self.start_sub_orchestration(name, crate::ids::LATEST_VERSION, &input)
    }

    fn start_sub_orchestration<I: Serialize, O>(&self, name: &str, version: u32, input: &I) -> Task<O> {
        let mut st = self.inner.borrow_mut();
        let id = match payload::to_json(input, format!("the input of orchestrator `{name}`")) {
            Ok(input) => {
                let next = st.rt.next_id;
                let instance_id = format!("{}:{}", st.instance_id, next);
                st.schedule(
                    OpenTask::SubOrchestration { name: name.to_string(), instance_id: instance_id.clone() },
                    |id| Command::StartSubOrchestration { id, name: name.to_string(), version, instance_id, input },
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
        let data = payload::to_json(&data, format!("the data of event `{name}`")).unwrap_or_else(|e| panic!("{e}"));
        st.commands.push(Command::SendEvent { instance_id: instance_id.to_string(), name: name.to_string(), data });
    }

    /// A task that completes when all `tasks` have: their results in task order, or the first
    /// failure (in task order) once all have finished.
    pub fn when_all<D, T>(&self, tasks: impl IntoIterator<Item = D>) -> WhenAll<D>
    where
        D: DurableTask<Output = Result<T, TaskError>>,
    {
        WhenAll::new(tasks.into_iter().collect(), self.clone())
    }

    /// A task that completes when the first of `tasks` does: its index and result. The others
    /// are abandoned (timers among them cancelled).
    pub fn when_any<D: DurableTask>(&self, tasks: impl IntoIterator<Item = D>) -> WhenAny<D> {
        WhenAny::new(tasks.into_iter().collect(), self.clone())
    }

    /// A task that completes when the first of `a` and `b` does; the other is abandoned
    /// (a losing timer is cancelled).
    pub fn select<A: DurableTask, B: DurableTask>(&self, a: A, b: B) -> Select<A, B> {
        Select::new(a, b, self.clone())
    }

    /// Whether `task` has completed (its result arrived), without consuming it.
    pub(crate) fn is_completed<T>(&self, task: &Task<T>) -> bool {
        self.with(|st| st.completion(task.id()).is_some())
    }

    /// Done with `task` without awaiting it: drop its result, or stop waiting for it (a late
    /// result is then dropped).
    pub(crate) fn release<T>(&self, task: Task<T>) {
        self.with(|st| st.release(task.id()));
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
}

fn deterministic_uuid(seed: &str, n: u64) -> uuid::Uuid {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    let a = mix(fnv1a_from(FNV_OFFSET, seed.as_bytes()) ^ n);
    let b = mix(fnv1a_from(0x84222325cbf29ce4, seed.as_bytes()).wrapping_add(n.wrapping_mul(0x9e3779b97f4a7c15)));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}
