//! Waiting on the in-memory store: taking orchestration and activity work (up to a deadline,
//! woken by the store's notifiers and, on a real-time clock, by the next timer), and waiting for
//! an instance to finish.

use super::Memory;
use crate::backend::{ActivityWorkItem, OrchestrationWorkItem};
use crate::error::Error;
use crate::instance::InstanceStatus;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

impl Memory {
    /// Up to `max` ready instances, locked, taken under one lock; waits up to `wait` for one.
    pub(super) async fn fetch_orchestrations(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<OrchestrationWorkItem>, Error> {
        let deadline = tokio::time::Instant::now() + wait;

        loop {
            let notified = self.inner.orchestrations.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_timer = {
                let mut st = self.inner.lock();
                let now = self.inner.now_locked(&st);
                st.fire_due(now);
                let items = st.lock_ready(max);
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

    /// Up to `max` queued activities, taken under one lock; waits up to `wait` for one.
    pub(super) async fn fetch_activities(&self, max: usize, wait: Duration) -> Result<Vec<ActivityWorkItem>, Error> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.inner.activities.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let items = self.inner.lock().take_activities(max);
            if !items.is_empty() {
                return Ok(items);
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

    /// The status once the instance has finished (or is gone), or when `timeout` has passed.
    pub(super) async fn wait_finished(
        &self,
        instance_id: &str,
        timeout: Duration,
    ) -> Result<Option<InstanceStatus>, Error> {
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
                            .or_insert_with(|| Arc::new(Notify::new()))
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
    }
}
