//! The in-memory tables behind [`Memory`](super::Memory) and their operations: instances with
//! their inboxes (delivery, readiness, locks), timers, the activity queue, and applying a step's
//! commit. Everything here runs under the store's one lock.

use crate::backend::{
    Action, ActivityWorkItem, InstanceMessage, NewInstance, OrchestrationWorkItem, PendingMessage, SnapshotChange,
    StepCommit, TimerRequest,
};
use crate::error::Error;
use crate::history::HistoryEvent;
use crate::instance::{InstancePage, InstanceQuery, InstanceStatus};
use crate::time::Millis;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Default)]
pub(super) struct State {
    /// How far the clock has been moved by [`advance`](super::Memory::advance).
    pub(super) offset_ms: u64,
    pub(super) instances: HashMap<String, Instance>,
    /// Instances with new messages and no lock, in the order they became ready.
    ready: VecDeque<String>,
    /// Timers by (fire time, arming order).
    pub(super) timers: BTreeMap<(Millis, u64), TimerRequest>,
    /// (instance, key) → position in `timers`.
    timer_index: HashMap<(String, String), (Millis, u64)>,
    activity_queue: VecDeque<ActivityWorkItem>,
    activities_in_flight: HashMap<u64, ActivityWorkItem>,
    next_id: u64,
    /// The clock when the lock was taken (for records created while it is held).
    pub(super) now_hint: Millis,
    /// Waiters for an instance to finish, by instance (woken when it finishes or is purged).
    pub(super) finish_waiters: HashMap<String, Arc<Notify>>,
    /// Finished instances (Completed, Failed, Terminated) by when they finished.
    finished: BTreeSet<(Millis, String)>,
    /// Delete finished instances this long (ms) after they finished; `None`: keep them.
    pub(super) retention_ms: Option<u64>,
}

pub(super) struct Instance {
    pub(super) status: InstanceStatus,
    pub(super) history: Vec<HistoryEvent>,
    pub(super) snapshot: Option<Vec<u8>>,
    /// The task table of a split snapshot (`SnapshotChange::Split`), entries by task id.
    pub(super) table: std::collections::BTreeMap<u64, Vec<u8>>,
    pub(super) inbox: Vec<PendingMessage>,
    /// Has messages not offered to a worker since they arrived.
    has_new: bool,
    /// The lock token of the worker stepping it.
    locked: Option<u64>,
    /// When it finished (its entry in `State::finished`), if it has.
    finished_at: Option<Millis>,
}

impl Instance {
    /// The entries of its snapshot's task table kept apart, by task id.
    pub(super) fn table_entries(&self) -> crate::engine::store::TableEntries {
        self.table.iter().map(|(k, v)| (*k, v.clone())).collect()
    }
}

impl State {
    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Put a message in an inbox; `false` if there is no such instance. An entity instance
    /// (`@name@key`) is created by its first message.
    pub(super) fn deliver(&mut self, instance_id: &str, message: InstanceMessage) -> bool {
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
                    table: Default::default(),
                    inbox: Vec::new(),
                    has_new: false,
                    locked: None,
                    finished_at: None,
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
    pub(super) fn fire_due(&mut self, now: Millis) -> bool {
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

    pub(super) fn next_timer(&self) -> Option<Millis> {
        self.timers.first_key_value().map(|(k, _)| k.0)
    }

    /// Create an instance, or say why not.
    pub(super) fn create(&mut self, new: NewInstance, now: Millis) -> Result<(), Error> {
        if let Some(existing) = self.instances.get(&new.instance_id) {
            if !existing.status.is_finished() {
                return Err(Error::InstanceAlreadyExists(new.instance_id));
            }
            // A finished instance is replaced: drop its timers.
            self.drop_timers_of(&new.instance_id);
            self.set_finished(&new.instance_id, None);
        }
        let inst = Instance {
            status: new.initial_status(now),
            history: Vec::new(),
            snapshot: None,
            table: Default::default(),
            inbox: Vec::new(),
            has_new: false,
            // A worker still holding the replaced instance loses its lock.
            locked: None,
            finished_at: None,
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

    /// One page of the instances matching `query`, in (creation time, id) order.
    pub(super) fn list(&self, query: &InstanceQuery) -> Result<InstancePage, Error> {
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
        let mut all: Vec<&InstanceStatus> = self
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
    }

    /// Delete a finished instance (or an entity no worker is stepping), its timers, and wake
    /// its finish waiters; `false` if there is no such instance.
    pub(super) fn purge(&mut self, instance_id: &str) -> Result<bool, Error> {
        match self.instances.get(instance_id) {
            None => Ok(false),
            Some(i) if crate::ids::is_entity_instance(instance_id) && i.locked.is_some() => Err(Error::InvalidState {
                id: instance_id.to_string(),
                status: i.status.runtime_status.to_string(),
                what: "the entity is being stepped right now; try again".to_string(),
            }),
            Some(i) if !i.status.is_finished() && !crate::ids::is_entity_instance(instance_id) => {
                Err(Error::InvalidState {
                    id: instance_id.to_string(),
                    status: i.status.runtime_status.to_string(),
                    what: "only a finished instance can be purged; terminate it first".to_string(),
                })
            }
            Some(_) => {
                self.set_finished(instance_id, None);
                self.instances.remove(instance_id);
                self.drop_timers_of(instance_id);
                if let Some(w) = self.finish_waiters.remove(instance_id) {
                    w.notify_waiters();
                }
                Ok(true)
            }
        }
    }

    /// Record when an instance finished (`None`: it has not, or no longer has).
    fn set_finished(&mut self, instance_id: &str, at: Option<Millis>) {
        let Some(inst) = self.instances.get_mut(instance_id) else { return };
        if let Some(old) = inst.finished_at.take() {
            self.finished.remove(&(old, instance_id.to_string()));
        }
        if let Some(at) = at {
            inst.finished_at = Some(at);
            self.finished.insert((at, instance_id.to_string()));
        }
    }

    /// Retention: delete the instances that finished `retention_ms` before `now` or earlier.
    pub(super) fn expire(&mut self, now: Millis) {
        let Some(retention) = self.retention_ms else { return };
        let cutoff = now.saturating_sub(retention);
        while let Some((at, id)) = self.finished.first().cloned()
            && at <= cutoff
        {
            if !matches!(self.purge(&id), Ok(true)) {
                // Not finished any more (cannot happen: the index follows every status change).
                self.finished.remove(&(at, id));
            }
        }
    }

    /// Delete the finished instances matching `query` (see `Backend::purge_where`), oldest
    /// first; how many.
    pub(super) fn purge_where(&mut self, query: &InstanceQuery) -> Result<u64, Error> {
        let statuses = crate::instance::purge_statuses(query)?;
        let query = InstanceQuery { statuses, ..query.clone() };
        let mut matches: Vec<(Millis, String)> = self
            .instances
            .iter()
            .filter(|(id, i)| i.status.is_finished() && !crate::ids::is_entity_instance(id) && query.matches(&i.status))
            .map(|(id, i)| (i.status.created_ms, id.clone()))
            .collect();
        matches.sort();
        matches.truncate(query.limit.unwrap_or(usize::MAX));
        let mut purged = 0;
        for (_, id) in matches {
            if let Ok(true) = self.purge(&id) {
                purged += 1;
            }
        }
        Ok(purged)
    }

    /// Up to `max` ready instances, each locked for the worker that takes it.
    pub(super) fn lock_ready(&mut self, max: usize) -> Vec<OrchestrationWorkItem> {
        let mut items = Vec::new();
        while items.len() < max
            && let Some(id) = self.ready.pop_front()
        {
            let lock = self.next();
            let Some(inst) = self.instances.get_mut(&id) else {
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
        items
    }

    /// Release a lock without committing: the instance is offered again.
    pub(super) fn unlock(&mut self, instance_id: &str, lock: u64) {
        if let Some(inst) = self.instances.get_mut(instance_id)
            && inst.locked == Some(lock)
        {
            inst.locked = None;
            inst.has_new = true;
            self.ready.push_back(instance_id.to_string());
        }
    }

    /// Apply a step's commit at `now` (the lock must still be held): whether activities were
    /// queued, and the finish waiters to wake if the instance finished.
    pub(super) fn commit(&mut self, commit: StepCommit, now: Millis) -> Result<(bool, Option<Arc<Notify>>), Error> {
        let inst = match self.instances.get_mut(&commit.instance_id) {
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
            SnapshotChange::Set(s) => {
                inst.snapshot = Some(s);
                inst.table.clear();
            }
            SnapshotChange::Delete => {
                inst.snapshot = None;
                inst.table.clear();
            }
            SnapshotChange::Split { rest, table } => {
                inst.snapshot = Some(rest);
                table.apply(&mut inst.table);
            }
        }
        let finished = commit.status.as_ref().is_some_and(|s| s.is_finished());
        let finished_at = commit.status.as_ref().map(|s| s.is_finished().then_some(s.updated_ms));
        if let Some(s) = commit.status {
            inst.status = s;
        }
        inst.locked = None;
        if inst.has_new {
            self.ready.push_back(commit.instance_id.clone());
        }
        if let Some(at) = finished_at {
            self.set_finished(&commit.instance_id, at);
        }
        for action in commit.actions {
            match action {
                Action::ScheduleActivity(request) => {
                    let work_id = self.next();
                    self.activity_queue.push_back(ActivityWorkItem { work_id, request });
                    activities = true;
                }
                Action::SetTimer(t) => self.set_timer(t),
                Action::CancelTimer { instance_id, key } => self.cancel_timer(&instance_id, &key),
                Action::SendMessage { instance_id, message } => {
                    self.deliver(&instance_id, message);
                }
                Action::CreateInstance(new) => {
                    let reply = new.already_exists_reply();
                    if self.create(new, now).is_err()
                        && let Some((parent, message)) = reply
                    {
                        self.deliver(&parent, message);
                    }
                }
            }
        }
        self.fire_due(now);
        let waiter = if finished { self.finish_waiters.remove(&commit.instance_id) } else { None };
        Ok((activities, waiter))
    }

    /// How many activity work items are queued or running.
    pub(super) fn activities_pending(&self) -> usize {
        self.activity_queue.len() + self.activities_in_flight.len()
    }

    /// Up to `max` queued activities, moved to in flight.
    pub(super) fn take_activities(&mut self, max: usize) -> Vec<ActivityWorkItem> {
        let mut items = Vec::new();
        while items.len() < max
            && let Some(item) = self.activity_queue.pop_front()
        {
            self.activities_in_flight.insert(item.work_id, item.clone());
            items.push(item);
        }
        items
    }

    /// Deliver an activity's result to its instance; `false` if it was not in flight (already
    /// completed, or never fetched: only the first completion counts).
    pub(super) fn complete_activity(&mut self, work_id: u64, outcome: Result<String, String>) -> bool {
        match self.activities_in_flight.remove(&work_id) {
            None => false,
            Some(item) => {
                let msg = item.request.result_message(outcome);
                self.deliver(&item.request.instance_id, msg);
                true
            }
        }
    }

    /// Put an activity in flight back at the front of the queue; `false` if it was not in flight.
    pub(super) fn requeue_activity(&mut self, work_id: u64) -> bool {
        match self.activities_in_flight.remove(&work_id) {
            Some(item) => {
                self.activity_queue.push_front(item);
                true
            }
            None => false,
        }
    }
}
