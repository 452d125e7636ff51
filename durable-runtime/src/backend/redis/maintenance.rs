//! Upkeep: the background tasks, each on its own schedule (leases and heartbeats; timers and
//! outboxes; activity claims; retention), and purging finished instances, one or all that
//! match a query.

use super::inbox::ctl_reader;
use super::{Inner, Redis, ScriptCall, backend_err, invoke_batch, lock, reply_int, reply_str};
use crate::backend::Backend;
use crate::error::Error;
use crate::instance::{InstanceQuery, purge_statuses};
use crate::time::Millis;
use redis::Value;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A handle that has not fetched orchestration work for this long hands its partitions back.
const IDLE_AFTER: Duration = Duration::from_secs(3);

impl Redis {
    /// Start the maintenance and control-reader tasks (once per handle).
    pub(super) async fn ensure_started(&self) {
        self.inner
            .started
            .get_or_init(|| async {
                let weak = Arc::downgrade(&self.inner);
                // Independent tasks, so that none waits behind another's work: a lease is
                // renewed on time however long an outbox takes to drain.
                tokio::spawn(run_task(weak.clone(), "leases", Some(|i| &i.relet), lease_round));
                tokio::spawn(run_task(weak.clone(), "timers and outboxes", Some(|i| &i.wake), timers_round));
                tokio::spawn(run_task(weak.clone(), "activity claims", None, activities_round));
                if self.inner.cfg.retention.is_some() {
                    tokio::spawn(run_task(weak.clone(), "retention", None, retention_round));
                }
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

/// How many instances one call of the retention or bulk-purge script deletes at most.
const PURGE_BATCH: usize = 100;

/// How many instances one call of the bulk-purge script looks at at most.
const PURGE_SCAN: usize = 1000;

impl Redis {
    /// Delete the finished instances matching `query` (see `Backend::purge_where`): partition
    /// by partition, each by `purge_where.lua` calls that delete up to [`PURGE_BATCH`] and look
    /// at up to [`PURGE_SCAN`] instances, walking the creation index from where the last one
    /// stopped.
    pub(super) async fn purge_matching(&self, query: InstanceQuery) -> Result<u64, Error> {
        let statuses = purge_statuses(&query)?;
        let mut left = query.limit.map_or(u64::MAX, |n| n as u64);
        let (from, to) = (opt_ms(query.created_from_ms), opt_ms(query.created_to_ms));
        let (name, prefix) = name_filter(query.name.as_deref())?;
        let mut purged = 0;
        for p in 0..self.inner.cfg.partitions {
            let t = self.tag(p);
            let mut after: Option<(String, String)> = None;
            while left > 0 {
                let mut call = self.inner.scripts.purge_where.key(format!("{t}:lease"));
                let (ms, id) = after.clone().unwrap_or_default();
                call.arg(&t).arg(ms).arg(id).arg(&from).arg(&to).arg(&name).arg(&prefix);
                call.arg(left.min(PURGE_BATCH as u64)).arg(PURGE_SCAN).arg(statuses.len());
                for s in &statuses {
                    call.arg(s.to_string());
                }
                call.arg(query.instance_id_prefix.as_deref().unwrap_or(""));
                let r: Vec<Value> =
                    call.invoke_async(&mut self.conn()).await.map_err(|e| backend_err("purging instances", e))?;
                let n = r.first().map_or(0, reply_int).max(0) as u64;
                purged += n;
                left = left.saturating_sub(n);
                let more = r.get(3).map_or(0, reply_int) == 1;
                if !more {
                    break;
                }
                after =
                    Some((r.get(1).map(reply_str).unwrap_or_default(), r.get(2).map(reply_str).unwrap_or_default()));
            }
        }
        if purged > 0 {
            tracing::info!(purged, "purged finished instances");
        }
        Ok(purged)
    }

    /// Delete the instances of the owned partitions that finished `retention` ago or earlier,
    /// [`PURGE_BATCH`] per script call, all partitions in one pipeline, until none is left.
    async fn expire_finished(&self, retention: Duration) -> Result<u64, Error> {
        let cutoff = Backend::now(self).saturating_sub(retention.as_millis() as Millis);
        let mut parts: Vec<u32> = lock(&self.inner.owner).parts.keys().copied().collect();
        let mut deleted = 0u64;
        while !parts.is_empty() {
            let calls: Vec<ScriptCall> = parts
                .iter()
                .map(|p| {
                    let t = self.tag(*p);
                    let keys = vec![format!("{t}:lease").into_bytes()];
                    let args =
                        vec![t.into_bytes(), cutoff.to_string().into_bytes(), PURGE_BATCH.to_string().into_bytes()];
                    (keys, args)
                })
                .collect();
            let replies = invoke_batch(self, &self.inner.scripts.expire, &calls)
                .await
                .map_err(|e| backend_err("deleting expired instances", e))?;
            let mut again = Vec::new();
            for (p, reply) in parts.iter().zip(replies) {
                let n = reply.map_err(|e| backend_err("deleting expired instances", e))?;
                let n = reply_int(&n).max(0) as u64;
                deleted += n;
                if n == PURGE_BATCH as u64 {
                    again.push(*p);
                }
            }
            parts = again;
        }
        Ok(deleted)
    }
}

/// A bound of a creation-time filter as the scripts take it ('' = none).
pub(super) fn opt_ms(ms: Option<Millis>) -> String {
    ms.map(|ms| ms.to_string()).unwrap_or_default()
}

/// A name filter as the scripts take it: the name ('' = any) and the name as JSON (see
/// `has_name` in `lib.lua`).
pub(super) fn name_filter(name: Option<&str>) -> Result<(String, String), Error> {
    match name {
        None => Ok((String::new(), String::new())),
        Some(n) => Ok((n.to_string(), super::to_json(&n)?)),
    }
}

/// Run `round` until the handle is dropped; each round says how long to wait for the next.
/// After an error it runs again with backoff (50 ms doubling up to 2 s). The `Notify` that
/// `woken_by` picks, if any, makes it run early.
async fn run_task<F, Fut>(weak: Weak<Inner>, what: &'static str, woken_by: Option<fn(&Inner) -> &Notify>, round: F)
where
    F: Fn(Redis) -> Fut,
    Fut: Future<Output = Result<Duration, Error>>,
{
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let r = Redis { inner };
        let sleep = match round(r.clone()).await {
            Ok(d) => {
                backoff = Duration::from_millis(50);
                d
            }
            Err(e) => {
                tracing::error!(error = %e, retry_in = ?backoff, task = what, "upkeep failed");
                let d = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                d
            }
        };
        if let Some(notify) = woken_by {
            let _ = tokio::time::timeout(sleep, notify(&r.inner).notified()).await;
        } else {
            drop(r);
            tokio::time::sleep(sleep).await;
        }
    }
}

/// Whether this handle steps orchestrations, and whether it stopped fetching them.
fn orchestrating(r: &Redis) -> (bool, bool) {
    let o = lock(&r.inner.owner);
    let idle = r.inner.fetching.load(Ordering::SeqCst) == 0
        && o.last_fetch.is_none_or(|t| t.elapsed() > IDLE_AFTER.max(r.inner.cfg.lease));
    (o.active, idle)
}

/// Leases on their own schedule: heartbeat, renew and rebalance every third of the lease, and
/// hand the partitions back once idle. Nothing else runs in this task, so a long outbox drain
/// or a burst of timers never delays a renewal.
async fn lease_round(r: Redis) -> Result<Duration, Error> {
    let every = r.inner.cfg.lease / 3;
    let (active, idle) = orchestrating(&r);
    if !active {
        return Ok(every.min(Duration::from_secs(1)));
    }
    if idle {
        r.stop_orchestrating().await;
        return Ok(every.min(Duration::from_secs(1)));
    }
    let due = {
        let o = lock(&r.inner.owner);
        o.next_heartbeat.is_none_or(|t| Instant::now() >= t) || o.parts.is_empty()
    };
    if due {
        r.rebalance().await?;
        // Renewed and rebalanced: new partitions may have timers due or outboxes to drain.
        r.inner.wake.notify_one();
    }
    let o = lock(&r.inner.owner);
    Ok(o.next_heartbeat.map_or(every, |t| t.saturating_duration_since(Instant::now())).max(Duration::from_millis(1)))
}

/// Timers and outboxes of owned partitions.
async fn timers_round(r: Redis) -> Result<Duration, Error> {
    let mut sleep = Duration::from_secs(1);
    let (active, idle) = orchestrating(&r);
    if !active || idle {
        return Ok(sleep);
    }
    r.pump_timers().await?;
    r.drain_outboxes().await?;
    let o = lock(&r.inner.owner);
    if r.inner.virtual_start.is_none() {
        let now = Backend::now(&r);
        if let Some(due) = o.parts.values().map(|p| p.timer_due).min()
            && due != u64::MAX
        {
            sleep = sleep.min(Duration::from_millis(due.saturating_sub(now).max(1)));
        }
    }
    if o.parts.values().any(|p| p.outbox_dirty) {
        sleep = sleep.min(Duration::from_millis(20));
    }
    Ok(sleep)
}

/// Activity claims: refresh what this handle runs every quarter of the visibility timeout.
async fn activities_round(r: Redis) -> Result<Duration, Error> {
    let every = r.inner.cfg.visibility / 4;
    let refresh_due = {
        let mut a = lock(&r.inner.activity);
        if !a.active {
            return Ok(every.min(Duration::from_secs(1)));
        }
        if a.next_refresh.is_none_or(|t| Instant::now() >= t) {
            a.next_refresh = Some(Instant::now() + every);
            true
        } else {
            false
        }
    };
    if refresh_due {
        r.activity_upkeep().await?;
    }
    let a = lock(&r.inner.activity);
    Ok(a.next_refresh.map_or(every, |t| t.saturating_duration_since(Instant::now())).max(Duration::from_millis(1)))
}

/// Retention: the owner of a partition deletes its instances that finished longer than the
/// retention ago, every quarter of the retention (between 50 ms and 5 s). Nothing without a
/// retention or without partitions.
async fn retention_round(r: Redis) -> Result<Duration, Error> {
    let Some(retention) = r.inner.cfg.retention else {
        return Ok(Duration::from_secs(60)); // not started without one
    };
    let every = (retention / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let (active, idle) = orchestrating(&r);
    if !active || idle {
        return Ok(every);
    }
    let deleted = r.expire_finished(retention).await?;
    if deleted > 0 {
        tracing::debug!(deleted, ?retention, "deleted expired instances");
    }
    Ok(every)
}
