//! Upkeep: the background tasks (leases and heartbeats, timers, outboxes, activity claims), and
//! purging finished instances.

use super::inbox::ctl_reader;
use super::{Inner, Redis, backend_err, lock, reply_str};
use crate::backend::Backend;
use crate::error::Error;
use redis::Value;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// A handle that has not fetched orchestration work for this long hands its partitions back.
const IDLE_AFTER: Duration = Duration::from_secs(3);

impl Redis {
    /// Start the maintenance and control-reader tasks (once per handle).
    pub(super) async fn ensure_started(&self) {
        self.inner
            .started
            .get_or_init(|| async {
                let weak = Arc::downgrade(&self.inner);
                tokio::spawn(maintenance(weak.clone()));
                tokio::spawn(ctl_reader(weak));
            })
            .await;
    }

    /// Delete a finished instance (or an entity) with its history and timers: `true` if it was
    /// purged, `false` if there is none, `Error::InvalidState` if it is still running.
    pub(super) async fn purge_instance(&self, instance_id: &str) -> Result<bool, Error> {
        let p = self.part_of(instance_id);
        let r: Value = self
            .inner
            .scripts
            .purge
            .key(format!("{}:lease", self.tag(p)))
            .arg(self.tag(p))
            .arg(instance_id)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("purging an instance", e))?;
        match r {
            Value::Int(1) => Ok(true),
            Value::Int(_) => Ok(false),
            other => Err(Error::InvalidState {
                id: instance_id.to_string(),
                status: reply_str(&other),
                what: "only a finished instance can be purged; terminate it first".to_string(),
            }),
        }
    }
}

/// Leases, heartbeats, timers, outboxes and activity upkeep.
async fn maintenance(weak: Weak<Inner>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let r = Redis { inner };
        let res = maintenance_round(&r).await;
        let sleep = match res {
            Ok(d) => {
                backoff = Duration::from_millis(50);
                d
            }
            Err(e) => {
                tracing::error!(error = %e, retry_in = ?backoff, "upkeep failed");
                let d = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                d
            }
        };
        let _ = tokio::time::timeout(sleep, r.inner.wake.notified()).await;
    }
}

/// One round of upkeep; how long to sleep until the next.
async fn maintenance_round(r: &Redis) -> Result<Duration, Error> {
    let mut sleep = Duration::from_secs(1);
    let (active, idle, heartbeat_due) = {
        let o = lock(&r.inner.owner);
        let idle = r.inner.fetching.load(Ordering::SeqCst) == 0
            && o.last_fetch.is_none_or(|t| t.elapsed() > IDLE_AFTER.max(r.inner.cfg.lease));
        (o.active, idle, o.next_heartbeat.is_none_or(|t| Instant::now() >= t) || o.parts.is_empty())
    };
    if active {
        if idle {
            r.stop_orchestrating().await;
        } else {
            if heartbeat_due {
                r.rebalance().await?;
            }
            r.pump_timers().await?;
            r.drain_outboxes().await?;
            let o = lock(&r.inner.owner);
            if let Some(t) = o.next_heartbeat {
                sleep = sleep.min(t.saturating_duration_since(Instant::now()));
            }
            if r.inner.virtual_start.is_none() {
                let now = Backend::now(r);
                if let Some(due) = o.parts.values().map(|p| p.timer_due).min()
                    && due != u64::MAX
                {
                    sleep = sleep.min(Duration::from_millis(due.saturating_sub(now).max(1)));
                }
            }
            if o.parts.values().any(|p| p.outbox_dirty) {
                sleep = sleep.min(Duration::from_millis(20));
            }
            if o.parts.len() < r.inner.cfg.partitions as usize {
                // Partitions of dead workers free up when their leases expire.
                sleep = sleep.min(r.inner.cfg.lease / 3);
            }
        }
    }
    let refresh_due = {
        let mut a = lock(&r.inner.activity);
        if !a.active {
            false
        } else if a.next_refresh.is_none_or(|t| Instant::now() >= t) {
            a.next_refresh = Some(Instant::now() + r.inner.cfg.visibility / 4);
            true
        } else {
            false
        }
    };
    if refresh_due {
        r.activity_upkeep().await?;
    }
    if lock(&r.inner.activity).active {
        sleep = sleep.min(r.inner.cfg.visibility / 4);
    }
    Ok(sleep)
}
