//! The in-process backend: fast, embedded, with a clock that tests can move.
//!
//! - this file: the [`Memory`] handle, its public API (the clock, counts for tests) and its
//!   [`Backend`] implementation (take the lock, apply, wake whoever waits);
//! - `state.rs`: the tables under the lock and their operations (inbox delivery, timers, the
//!   activity queue, commits);
//! - `wait.rs`: the loops that wait for work or for an instance to finish.

mod state;
mod wait;

use self::state::State;
use super::{ActivityWorkItem, Backend, InstanceMessage, NewInstance, OrchestrationWorkItem, StepCommit};
use crate::error::Error;
use crate::history::HistoryEvent;
use crate::instance::{InstancePage, InstanceQuery, InstanceStatus};
use crate::orchestrator::BoxFuture;
use crate::state::Snapshot;
use crate::time::{Millis, from_millis, to_millis};
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
    /// The slots of activity concurrency limits and the windows of rate limits.
    flow: crate::flow::LocalFlow,
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
                flow: crate::flow::LocalFlow::default(),
            }),
        }
    }

    /// Delete finished instances (Completed, Failed, Terminated) with their history and timers
    /// once they have been finished for `d` (by this store's clock, so a virtual clock's
    /// [`advance`](Memory::advance) expires them). Default: keep them until purged. Expired
    /// instances are deleted on the next call that touches the store. Instances still running,
    /// chains of `continue_as_new` in progress and entities are never deleted. Applies to every
    /// clone of this handle.
    ///
    /// ```
    /// use durable_runtime::backend::Memory;
    /// use std::time::Duration;
    /// let backend = Memory::with_virtual_clock().with_retention(Duration::from_secs(24 * 3600));
    /// ```
    pub fn with_retention(self, d: Duration) -> Self {
        self.inner.lock().retention_ms = Some(d.as_millis() as u64);
        self
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
        self.inner.lock().activities_pending()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every update is one step).
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.now_hint = self.now_locked(&st);
        let now = st.now_hint;
        st.expire(now);
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
    fn acquire_slot<'a>(&'a self, name: &'a str, max: u32, holder: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(std::future::ready(Ok(self.inner.flow.acquire(name, max, holder))))
    }

    fn release_slot<'a>(&'a self, name: &'a str, holder: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.inner.flow.release(name, holder);
        Box::pin(std::future::ready(Ok(())))
    }

    fn take_rate<'a>(
        &'a self,
        name: &'a str,
        max: u32,
        period: Duration,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<Option<Duration>, Error>> {
        let now = Backend::now(self);
        Box::pin(std::future::ready(Ok(self.inner.flow.take_rate(name, max, period, holder, now))))
    }

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
            activities: st.activities_pending() as u64,
            timers: st.timers.len() as u64,
            messages: st.instances.values().map(|i| i.inbox.len() as u64).sum(),
            partitions: Vec::new(),
        };
        Box::pin(std::future::ready(Ok(Some(d))))
    }

    fn snapshot<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, Error>> {
        let st = self.inner.lock();
        let s = st.instances.get(instance_id).and_then(|i| {
            let bytes = i.snapshot.as_ref()?;
            if !Snapshot::is_split(bytes) {
                return Some(Ok(bytes.clone()));
            }
            Some(Snapshot::from_split(bytes, &i.table_entries()).and_then(|s| s.to_bytes()))
        });
        Box::pin(std::future::ready(s.transpose()))
    }

    fn keeps_task_tables_apart(&self) -> bool {
        true
    }

    fn snapshot_table<'a>(
        &'a self,
        instance_id: &'a str,
    ) -> BoxFuture<'a, Result<crate::engine::store::TableEntries, Error>> {
        let st = self.inner.lock();
        let t = st.instances.get(instance_id).map_or_else(Vec::new, |i| i.table_entries());
        Box::pin(std::future::ready(Ok(t)))
    }

    fn list(&self, query: InstanceQuery) -> BoxFuture<'_, Result<InstancePage, Error>> {
        let r = self.inner.lock().list(&query);
        Box::pin(std::future::ready(r))
    }

    fn purge<'a>(&'a self, instance_id: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let r = self.inner.lock().purge(instance_id);
        Box::pin(std::future::ready(r))
    }

    fn purge_where(&self, query: InstanceQuery) -> BoxFuture<'_, Result<u64, Error>> {
        let r = self.inner.lock().purge_where(&query);
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
        let r = {
            let mut st = self.inner.lock();
            let now = self.inner.now_locked(&st);
            st.commit(commit, now)
        };
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
        self.inner.lock().unlock(instance_id, lock);
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
        let delivered = self.inner.lock().complete_activity(item.work_id, outcome);
        if delivered {
            self.inner.orchestrations.notify_waiters();
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn abandon_activity_work(&self, item: ActivityWorkItem) -> BoxFuture<'_, Result<(), Error>> {
        let requeued = self.inner.lock().requeue_activity(item.work_id);
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
        Box::pin(self.wait_finished(instance_id, timeout))
    }
}
