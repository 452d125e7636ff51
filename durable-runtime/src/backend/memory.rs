//! The in-process backend: fast, embedded, with a clock that tests can move.

use super::{
    Action, ActivityWorkItem, Backend, InstanceMessage, NewInstance, OrchestrationWorkItem, PendingMessage,
    SnapshotChange, StepCommit, TimerRequest,
};
use crate::error::Error;
use crate::history::HistoryEvent;
use crate::instance::{InstancePage, InstanceQuery, InstanceStatus};
use crate::orchestrator::BoxFuture;
use crate::time::{Millis, from_millis, to_millis};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;

/// The in-process backend: everything in memory, nothing survives the process. The default for
/// examples and for testing workflows.
///
/// Its clock is real time by default; [`Memory::with_virtual_clock`] makes one that only moves
/// on [`advance`](Memory::advance), so a 72-hour timer is tested instantly:
///
/// ```
/// use durable_runtime::backend::{Backend, Memory};
/// use std::time::Duration;
/// let backend = Memory::with_virtual_clock();
/// let t0 = backend.now();
/// backend.advance(Duration::from_secs(72 * 3600));
/// assert_eq!(backend.now() - t0, 72 * 3600 * 1000);
/// ```
///
/// Cloning gives another handle on the same store.
#[derive(Clone)]
pub struct Memory {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.inner.lock();
        f.debug_struct("Memory")
            .field("instances", &st.instances.len())
            .field("virtual_clock", &self.inner.virtual_start.is_some())
            .finish()
    }
}

struct Inner {
    state: Mutex<State>,
    /// `Some(start)`: a virtual clock that reads `start + offset`; `None`: wall time + offset.
    virtual_start: Option<Millis>,
    /// Signalled when orchestration work may be available.
    orchestrations: Notify,
    /// Signalled when activity work may be available.
    activities: Notify,
}

#[derive(Default)]
struct State {
    offset_ms: u64,
    instances: HashMap<String, Instance>,
    /// Instances with new messages and no lock, in the order they became ready.
    ready: VecDeque<String>,
    /// Timers by (fire time, arming order).
    timers: BTreeMap<(Millis, u64), TimerRequest>,
    /// (instance, key) → position in `timers`.
    timer_index: HashMap<(String, String), (Millis, u64)>,
    activity_queue: VecDeque<ActivityWorkItem>,
    activities_in_flight: HashMap<u64, ActivityWorkItem>,
    next_id: u64,
    /// The clock when the lock was taken (for records created while it is held).
    now_hint: Millis,
    /// Waiters for an instance to finish, by instance (woken when it finishes or is purged).
    finish_waiters: HashMap<String, std::sync::Arc<Notify>>,
}

struct Instance {
    status: InstanceStatus,
    history: Vec<HistoryEvent>,
    snapshot: Option<Vec<u8>>,
    inbox: Vec<PendingMessage>,
    /// Has messages not offered to a worker since they arrived.
    has_new: bool,
    /// The lock token of the worker stepping it.
    locked: Option<u64>,
}

impl State {
    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Put a message in an inbox; `false` if there is no such instance. An entity instance
    /// (`@name@key`) is created by its first message.
    fn deliver(&mut self, instance_id: &str, message: InstanceMessage) -> bool {
        let id = self.next();
        if !self.instances.contains_key(instance_id) {
            let Some(status) = crate::instance::implicit_entity_status(instance_id, self.now_hint) else {
                return false;
            };
            self.instances.insert(
                instance_id.to_string(),
                Instance {
                    status,
                    history: Vec::new(),
                    snapshot: None,
                    inbox: Vec::new(),
                    has_new: false,
                    locked: None,
                },
            );
        }
        let Some(inst) = self.instances.get_mut(instance_id) else {
            return false;
        };
        inst.inbox.push(PendingMessage { id, message });
        if !inst.has_new {
            inst.has_new = true;
            if inst.locked.is_none() {
                self.ready.push_back(instance_id.to_string());
            }
        }
        true
    }

    fn set_timer(&mut self, t: TimerRequest) {
        self.cancel_timer(&t.instance_id, &t.key);
        let pos = (t.fire_at, self.next());
        self.timer_index.insert((t.instance_id.clone(), t.key.clone()), pos);
        self.timers.insert(pos, t);
    }

    fn cancel_timer(&mut self, instance_id: &str, key: &str) {
        if let Some(pos) = self.timer_index.remove(&(instance_id.to_string(), key.to_string())) {
            self.timers.remove(&pos);
        }
    }

    /// Deliver the timers due at `now`; whether any was.
    fn fire_due(&mut self, now: Millis) -> bool {
        let mut fired = false;
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let t = entry.remove();
            self.timer_index.remove(&(t.instance_id.clone(), t.key.clone()));
            self.deliver(&t.instance_id, t.message);
            fired = true;
        }
        fired
    }

    fn next_timer(&self) -> Option<Millis> {
        self.timers.first_key_value().map(|(k, _)| k.0)
    }

    /// Create an instance, or say why not.
    fn create(&mut self, new: NewInstance, now: Millis) -> Result<(), Error> {
        if let Some(existing) = self.instances.get(&new.instance_id) {
            if !existing.status.is_finished() {
                return Err(Error::InstanceAlreadyExists(new.instance_id));
            }
            // A finished instance is replaced: drop its timers.
            self.drop_timers_of(&new.instance_id);
        }
        let inst = Instance {
            status: new.initial_status(now),
            history: Vec::new(),
            snapshot: None,
            inbox: Vec::new(),
            has_new: false,
            // A worker still holding the replaced instance loses its lock.
            locked: None,
        };
        let start = new.start_message();
        self.instances.insert(new.instance_id.clone(), inst);
        self.deliver(&new.instance_id, start);
        Ok(())
    }

    fn drop_timers_of(&mut self, instance_id: &str) {
        let keys: Vec<_> = self.timer_index.keys().filter(|(i, _)| i == instance_id).cloned().collect();
        for (i, k) in keys {
            self.cancel_timer(&i, &k);
        }
    }
}

impl Default for Memory {
    fn default() -> Self {
        Self::new()
    }
}

impl Memory {
    /// A store whose clock is real time.
    pub fn new() -> Self {
        Self::build(None)
    }

    /// A store whose clock starts at the current wall time and moves only on
    /// [`advance`](Memory::advance).
    pub fn with_virtual_clock() -> Self {
        Self::build(Some(to_millis(SystemTime::now())))
    }

    fn build(virtual_start: Option<Millis>) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                virtual_start,
                orchestrations: Notify::new(),
                activities: Notify::new(),
            }),
        }
    }

    /// Move the clock forward by `d` (on a real-time clock too: it then runs ahead) and deliver
    /// the timers that are due.
    pub fn advance(&self, d: Duration) {
        let fired = {
            let mut st = self.inner.lock();
            st.offset_ms = st.offset_ms.saturating_add(d.as_millis() as u64);
            let now = self.inner.now_locked(&st);
            st.fire_due(now)
        };
        if fired {
            self.inner.orchestrations.notify_waiters();
        }
    }

    /// The clock, as a `SystemTime`.
    pub fn time(&self) -> SystemTime {
        from_millis(Backend::now(self))
    }

    /// Whether the clock is virtual.
    pub fn is_virtual_clock(&self) -> bool {
        self.inner.virtual_start.is_some()
    }

    /// How many timers are armed (all instances).
    pub fn pending_timers(&self) -> usize {
        self.inner.lock().timers.len()
    }

    /// The earliest armed timer, if any.
    pub fn next_timer(&self) -> Option<SystemTime> {
        self.inner.lock().next_timer().map(from_millis)
    }

    /// How many activity work items are queued or running.
    pub fn pending_activities(&self) -> usize {
        let st = self.inner.lock();
        st.activity_queue.len() + st.activities_in_flight.len()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every update is one step).
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.now_hint = self.now_locked(&st);
        st
    }

    fn now_locked(&self, st: &State) -> Millis {
        match self.virtual_start {
            Some(start) => start.saturating_add(st.offset_ms),
            None => to_millis(SystemTime::now()).saturating_add(st.offset_ms),
        }
    }
}

impl Backend for Memory {
    fn now(&self) -> Millis {
        let st = self.inner.lock();
        self.inner.now_locked(&st)
    }

    fn create_instance(&self, new: NewInstance) -> BoxFuture<'_, Result<(), Error>> {
        let r = {
            let mut st = self.inner.lock();
            let now = self.inner.now_locked(&st);
            st.create(new, now)
        };
        if r.is_ok() {
            self.inner.orchestrations.notify_waiters();
        }
        Box::pin(std::future::ready(r))
    }

    fn send_message<'a>(&'a self, instance_id: &'a str, message: InstanceMessage) -> BoxFuture<'a, Result<(), Error>> {
        let ok = self.inner.lock().deliver(instance_id, message);
        let r = if ok {
            self.inner.orchestrations.notify_waiters();
            Ok(())
        } else {
            Err(Error::InstanceNotFound(instance_id.to_string()))
        };
        Box::pin(std::future::ready(r))
    }

    fn status<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<Option<InstanceStatus>, Error>> {
        let s = self.inner.lock().instances.get(instance_id).map(|i| i.status.clone());
        Box::pin(std::future::ready(Ok(s)))
    }

    fn history<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<Option<Vec<HistoryEvent>>, Error>> {
        let h = self.inner.lock().instances.get(instance_id).map(|i| i.history.clone());
        Box::pin(std::future::ready(Ok(h)))
    }

    fn queue_depths(&self) -> BoxFuture<'_, Result<Option<crate::metrics::QueueDepths>, Error>> {
        let st = self.inner.lock();
        let d = crate::metrics::QueueDepths {
            activities: (st.activity_queue.len() + st.activities_in_flight.len()) as u64,
            timers: st.timers.len() as u64,
            messages: st.instances.values().map(|i| i.inbox.len() as u64).sum(),
        };
        Box::pin(std::future::ready(Ok(Some(d))))
    }

    fn snapshot<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        let s = self.inner.lock().instances.get(instance_id).and_then(|i| i.snapshot.clone());
        Box::pin(std::future::ready(Ok(s)))
    }

    fn list(&self, query: InstanceQuery) -> BoxFuture<'_, Result<InstancePage, Error>> {
        let r = (|| {
            let after = match &query.continuation {
                None => None,
                Some(c) => {
                    let (ms, id) = c
                        .split_once(':')
                        .and_then(|(ms, id)| Some((ms.parse::<Millis>().ok()?, id.to_string())))
                        .ok_or_else(|| {
                            Error::Backend(format!("invalid continuation {c:?}: pass the one a page returned"))
                        })?;
                    Some((ms, id))
                }
            };
            let st = self.inner.lock();
            let mut all: Vec<&InstanceStatus> = st
                .instances
                .values()
                .map(|i| &i.status)
                .filter(|s| query.matches(s))
                .filter(|s| after.as_ref().is_none_or(|(ms, id)| (s.created_ms, &s.instance_id) > (*ms, id)))
                .collect();
            all.sort_by(|a, b| (a.created_ms, &a.instance_id).cmp(&(b.created_ms, &b.instance_id)));
            let limit = query.limit.unwrap_or(100).max(1);
            let more = all.len() > limit;
            let instances: Vec<InstanceStatus> = all.into_iter().take(limit).cloned().collect();
            let continuation =
                if more { instances.last().map(|s| format!("{}:{}", s.created_ms, s.instance_id)) } else { None };
            Ok(InstancePage { instances, continuation })
        })();
        Box::pin(std::future::ready(r))
    }

    fn purge<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let r = {
            let mut st = self.inner.lock();
            match st.instances.get(instance_id) {
                None => Ok(false),
                Some(i) if crate::ids::is_entity_instance(instance_id) && i.locked.is_some() => {
                    Err(Error::InvalidState {
                        id: instance_id.to_string(),
                        status: i.status.runtime_status.to_string(),
                        what: "the entity is being stepped right now; try again".to_string(),
                    })
                }
                Some(i) if !i.status.is_finished() && !crate::ids::is_entity_instance(instance_id) => {
                    Err(Error::InvalidState {
                        id: instance_id.to_string(),
                        status: i.status.runtime_status.to_string(),
                        what: "only a finished instance can be purged; terminate it first".to_string(),
                    })
                }
                Some(_) => {
                    st.instances.remove(instance_id);
                    st.drop_timers_of(instance_id);
                    if let Some(w) = st.finish_waiters.remove(instance_id) {
                        w.notify_waiters();
                    }
                    Ok(true)
                }
            }
        };
        Box::pin(std::future::ready(r))
    }

    fn fetch_orchestration_work(&self, wait: Duration) -> BoxFuture<'_, Result<Option<OrchestrationWorkItem>, Error>> {
        Box::pin(async move { Ok(self.fetch_orchestrations(1, wait).await?.pop()) })
    }

    fn fetch_orchestration_work_batch(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<OrchestrationWorkItem>, Error>> {
        Box::pin(self.fetch_orchestrations(max.max(1), wait))
    }

    fn commit(&self, commit: StepCommit) -> BoxFuture<'_, Result<(), Error>> {
        let r = (|| {
            let mut st = self.inner.lock();
            let now = self.inner.now_locked(&st);
            let inst = match st.instances.get_mut(&commit.instance_id) {
                Some(i) if i.locked == Some(commit.lock) => i,
                _ => return Err(Error::LockLost(commit.instance_id.clone())),
            };
            let mut activities = false;
            if commit.consumed.len() <= 8 {
                inst.inbox.retain(|m| !commit.consumed.contains(&m.id));
            } else {
                let consumed: std::collections::HashSet<u64> = commit.consumed.iter().copied().collect();
                inst.inbox.retain(|m| !consumed.contains(&m.id));
            }
            if commit.reset_history {
                inst.history = commit.new_events;
            } else {
                inst.history.extend(commit.new_events);
            }
            match commit.snapshot {
                SnapshotChange::Keep => {}
                SnapshotChange::Set(s) => inst.snapshot = Some(s),
                SnapshotChange::Delete => inst.snapshot = None,
            }
            let finished = commit.status.as_ref().is_some_and(|s| s.is_finished());
            if let Some(s) = commit.status {
                inst.status = s;
            }
            inst.locked = None;
            if inst.has_new {
                st.ready.push_back(commit.instance_id.clone());
            }
            for action in commit.actions {
                match action {
                    Action::ScheduleActivity(request) => {
                        let work_id = st.next();
                        st.activity_queue.push_back(ActivityWorkItem { work_id, request });
                        activities = true;
                    }
                    Action::SetTimer(t) => st.set_timer(t),
                    Action::CancelTimer { instance_id, key } => st.cancel_timer(&instance_id, &key),
                    Action::SendMessage { instance_id, message } => {
                        st.deliver(&instance_id, message);
                    }
                    Action::CreateInstance(new) => {
                        let reply = new.already_exists_reply();
                        if st.create(new, now).is_err()
                            && let Some((parent, message)) = reply
                        {
                            st.deliver(&parent, message);
                        }
                    }
                }
            }
            st.fire_due(now);
            let waiter = if finished { st.finish_waiters.remove(&commit.instance_id) } else { None };
            Ok((activities, waiter))
        })();
        if let Ok((activities, waiter)) = &r {
            self.inner.orchestrations.notify_waiters();
            if *activities {
                self.inner.activities.notify_waiters();
            }
            if let Some(w) = waiter {
                w.notify_waiters();
            }
        }
        Box::pin(std::future::ready(r.map(|_| ())))
    }

    fn abandon_orchestration_work<'a>(&'a self, instance_id: &'a str, lock: u64) -> BoxFuture<'a, Result<(), Error>> {
        {
            let mut st = self.inner.lock();
            if let Some(inst) = st.instances.get_mut(instance_id)
                && inst.locked == Some(lock)
            {
                inst.locked = None;
                inst.has_new = true;
                st.ready.push_back(instance_id.to_string());
            }
        }
        self.inner.orchestrations.notify_waiters();
        Box::pin(std::future::ready(Ok(())))
    }

    fn fetch_activity_work(&self, wait: Duration) -> BoxFuture<'_, Result<Option<ActivityWorkItem>, Error>> {
        Box::pin(async move { Ok(self.fetch_activities(1, wait).await?.pop()) })
    }

    fn fetch_activity_work_batch(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<ActivityWorkItem>, Error>> {
        Box::pin(self.fetch_activities(max.max(1), wait))
    }

    fn complete_activity_work(
        &self,
        item: ActivityWorkItem,
        outcome: Result<String, String>,
    ) -> BoxFuture<'_, Result<(), Error>> {
        let delivered = {
            let mut st = self.inner.lock();
            match st.activities_in_flight.remove(&item.work_id) {
                // Already completed (or never fetched): only the first completion counts.
                None => false,
                Some(item) => {
                    let msg = item.request.result_message(outcome);
                    st.deliver(&item.request.instance_id, msg);
                    true
                }
            }
        };
        if delivered {
            self.inner.orchestrations.notify_waiters();
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn abandon_activity_work(&self, item: ActivityWorkItem) -> BoxFuture<'_, Result<(), Error>> {
        let requeued = {
            let mut st = self.inner.lock();
            match st.activities_in_flight.remove(&item.work_id) {
                Some(item) => {
                    st.activity_queue.push_front(item);
                    true
                }
                None => false,
            }
        };
        if requeued {
            self.inner.activities.notify_waiters();
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn wait_for_finished<'a>(
        &'a self,
        instance_id: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Option<InstanceStatus>, Error>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                // One notifier per waited-for instance: a commit wakes only its own waiters.
                let (status, waiter) = {
                    let mut st = self.inner.lock();
                    let status = st.instances.get(instance_id).map(|i| i.status.clone());
                    let waiter = match &status {
                        Some(s) if !s.is_finished() => Some(
                            st.finish_waiters
                                .entry(instance_id.to_string())
                                .or_insert_with(|| std::sync::Arc::new(Notify::new()))
                                .clone(),
                        ),
                        _ => None,
                    };
                    (status, waiter)
                };
                let now = tokio::time::Instant::now();
                let Some(waiter) = waiter else { return Ok(status) };
                if now >= deadline {
                    return Ok(status);
                }
                let notified = waiter.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                // Re-check: it may have finished between the look and `enable`.
                if self.inner.lock().instances.get(instance_id).is_none_or(|i| i.status.is_finished()) {
                    continue;
                }
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(deadline - now) => {}
                }
            }
        })
    }
}

impl Memory {
    /// Up to `max` ready instances, locked, taken under one lock; waits up to `wait` for one.
    async fn fetch_orchestrations(&self, max: usize, wait: Duration) -> Result<Vec<OrchestrationWorkItem>, Error> {
        let deadline = tokio::time::Instant::now() + wait;

        loop {
            let notified = self.inner.orchestrations.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_timer = {
                let mut st = self.inner.lock();
                let now = self.inner.now_locked(&st);
                st.fire_due(now);
                let mut items = Vec::new();
                while items.len() < max
                    && let Some(id) = st.ready.pop_front()
                {
                    let lock = st.next();
                    let Some(inst) = st.instances.get_mut(&id) else {
                        continue;
                    };
                    if inst.locked.is_some() || !inst.has_new {
                        continue;
                    }
                    inst.has_new = false;
                    inst.locked = Some(lock);
                    let item = OrchestrationWorkItem {
                        instance_id: id,
                        lock,
                        status: Some(inst.status.clone()),
                        snapshot: inst.snapshot.clone(),
                        history_len: inst.history.len() as u64,
                        messages: inst.inbox.clone(),
                    };
                    items.push(item);
                }
                if !items.is_empty() {
                    return Ok(items);
                }
                st.next_timer().map(|t| t.saturating_sub(now))
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let mut sleep_for = deadline - now;
            if self.inner.virtual_start.is_none()
                && let Some(ms) = next_timer
            {
                sleep_for = sleep_for.min(Duration::from_millis(ms.max(1)));
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(sleep_for) => {}
            }
        }
    }
}

impl Memory {
    /// Up to `max` queued activities, taken under one lock; waits up to `wait` for one.
    async fn fetch_activities(&self, max: usize, wait: Duration) -> Result<Vec<ActivityWorkItem>, Error> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.inner.activities.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.inner.lock();
                let mut items = Vec::new();
                while items.len() < max
                    && let Some(item) = st.activity_queue.pop_front()
                {
                    st.activities_in_flight.insert(item.work_id, item.clone());
                    items.push(item);
                }
                if !items.is_empty() {
                    return Ok(items);
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(deadline - now) => {}
            }
        }
    }
}
