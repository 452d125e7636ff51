//! Waiting for an instance to finish. A waiter in the process whose worker commits the
//! finishing step is woken by that commit at once; any other waiter (another process, or a
//! commit by another worker) sees it at its next look (`poll_until_finished`).

use super::{Redis, lock};
use crate::engine::store::poll_until_finished;
use crate::error::Error;
use crate::instance::InstanceStatus;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The instances someone in this process waits for, with how many wait for each.
#[derive(Default)]
pub(super) struct Waits {
    by_instance: HashMap<String, (Arc<Notify>, usize)>,
}

/// One waiter's registration; dropping it removes the instance when no one else waits for it.
struct Registered<'a> {
    redis: &'a Redis,
    id: &'a str,
    notify: Arc<Notify>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut w = lock(&self.redis.inner.waits);
        if let Some((_, n)) = w.by_instance.get_mut(self.id) {
            *n -= 1;
            if *n == 0 {
                w.by_instance.remove(self.id);
            }
        }
    }
}

impl Redis {
    /// The status of `instance_id` once it is finished, or as it is when `timeout` passes;
    /// `None` if there is no such instance.
    pub(super) async fn wait_finished(
        &self,
        instance_id: &str,
        timeout: Duration,
    ) -> Result<Option<InstanceStatus>, Error> {
        let notify = {
            let mut w = lock(&self.inner.waits);
            let e = w.by_instance.entry(instance_id.to_string()).or_insert_with(|| (Arc::new(Notify::new()), 0));
            e.1 += 1;
            e.0.clone()
        };
        let reg = Registered { redis: self, id: instance_id, notify };
        poll_until_finished(|| self.load_status(instance_id), Some(&reg.notify), timeout).await
    }

    /// A step of this process finished `instance_id`: wake whoever here waits for it.
    pub(super) fn finished_here(&self, instance_id: &str) {
        let w = lock(&self.inner.waits);
        if let Some((n, _)) = w.by_instance.get(instance_id) {
            n.notify_waiters();
        }
    }
}
