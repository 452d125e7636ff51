//! Activities: reading work items with the consumer group, completing and handing them back,
//! keeping running items claimed and claiming those of dead workers.

use super::{BLOCK_MAX, Redis, backend_err, from_json, keys, lock, to_json};
use crate::backend::{ActivityRequest, ActivityWorkItem};
use crate::error::Error;
use keys::{Entry, stream_id};
use redis::Value;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// A handle that has not fetched activity work for this long hands its prefetched items back.
const ACT_IDLE_AFTER: Duration = Duration::from_secs(2);
/// How many activity items one read asks for at least.
const ACT_PREFETCH: usize = 8;

/// The activity items this handle holds: read ahead (`buffer`) and handed out (`in_flight`).
#[derive(Default)]
pub(super) struct Acts {
    pub(super) buffer: VecDeque<ActivityWorkItem>,
    pub(super) in_flight: HashMap<u64, ActivityWorkItem>,
}

/// Whether this handle fetches activities, and when its items are claimed again next.
#[derive(Default)]
pub(super) struct ActivityMode {
    pub(super) active: bool,
    pub(super) last_fetch: Option<Instant>,
    pub(super) next_refresh: Option<Instant>,
}

impl Redis {
    /// Create the activity consumer group `w` of every partition (if it is not there).
    pub(super) async fn ensure_groups(&self) -> Result<(), Error> {
        let mut c = self.inner.conn.clone();
        for p in 0..self.inner.cfg.partitions {
            let r: Result<Value, _> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(format!("{}:act", self.tag(p)))
                .arg("w")
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut c)
                .await;
            if let Err(e) = r
                && !e.to_string().contains("BUSYGROUP")
            {
                return Err(backend_err("creating the activity consumer group", e));
            }
        }
        Ok(())
    }

    /// Note that activity work is fetched (an idle handle hands its read-ahead items back).
    fn note_activity_fetch(&self) {
        let mut a = lock(&self.inner.activity);
        a.active = true;
        a.last_fetch = Some(Instant::now());
    }

    /// Read activity items into the buffer (spawned: a dropped fetch loses nothing).
    async fn read_activities(&self, block: Option<Duration>, count: usize) -> Result<(), Error> {
        let this = self.clone();
        let task = tokio::spawn(async move {
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP").arg("w").arg(&this.inner.worker_id).arg("COUNT").arg(count);
            if let Some(b) = block {
                cmd.arg("BLOCK").arg(b.as_millis().max(1) as u64);
            }
            cmd.arg("STREAMS");
            let parts = this.inner.cfg.partitions;
            for p in 0..parts {
                cmd.arg(format!("{}:act", this.tag(p)));
            }
            for _ in 0..parts {
                cmd.arg(">");
            }
            let reply: Result<Value, redis::RedisError> = if block.is_some() {
                let mut guard = this.inner.act_conn.lock().await;
                if guard.is_none() {
                    *guard = Some(Self::manager(&this.inner.client, Some(BLOCK_MAX + Duration::from_secs(5))).await?);
                }
                cmd.query_async(guard.as_mut().expect("set above")).await
            } else {
                cmd.query_async(&mut this.conn()).await
            };
            let reply = match reply {
                Ok(r) => r,
                Err(e) if e.to_string().contains("NOGROUP") => {
                    this.ensure_groups().await?;
                    return Ok(());
                }
                Err(e) => return Err(backend_err("XREADGROUP", e)),
            };
            let mut items = Vec::new();
            for (key, entries) in keys::parse_read(&reply) {
                let Some(p) = (0..parts).find(|p| key == format!("{}:act", this.tag(*p))) else { continue };
                items.extend(entries.iter().filter_map(|e| this.work_item(p, e)));
            }
            lock(&this.inner.acts).buffer.extend(items);
            Ok::<(), Error>(())
        });
        task.await.map_err(|e| Error::Backend(format!("redis: activity read task failed: {e}")))?
    }

    /// The work item of an activity entry of partition `p` (`None`: unreadable, left pending).
    fn work_item(&self, p: u32, e: &Entry) -> Option<ActivityWorkItem> {
        let r = e.get("r")?;
        match from_json::<ActivityRequest>(r, "an activity request") {
            Ok(request) => Some(ActivityWorkItem { work_id: keys::work_id(e.n, p), request }),
            Err(err) => {
                tracing::warn!(entry = e.n, partition = p, error = %err, "skipping an unreadable activity entry");
                None
            }
        }
    }

    pub(super) async fn fetch_activity_batch(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ActivityWorkItem>, Error> {
        self.ensure_started().await;
        self.note_activity_fetch();
        let deadline = tokio::time::Instant::now() + wait;
        let mut read_once = false;
        loop {
            {
                let mut acts = lock(&self.inner.acts);
                let n = max.max(1).min(acts.buffer.len());
                if n > 0 {
                    let items: Vec<_> = acts.buffer.drain(..n).collect();
                    for i in &items {
                        acts.in_flight.insert(i.work_id, i.clone());
                    }
                    return Ok(items);
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline && read_once {
                return Ok(Vec::new());
            }
            let block = if now >= deadline { None } else { Some((deadline - now).min(BLOCK_MAX)) };
            read_once = true;
            self.read_activities(block, max.max(ACT_PREFETCH)).await?;
            self.note_activity_fetch();
        }
    }

    pub(super) async fn complete_one(
        &self,
        item: &ActivityWorkItem,
        outcome: Result<String, String>,
    ) -> Result<(), Error> {
        // Whatever happens, this handle no longer keeps the item: if the completion did not get
        // through, the item is claimed again after the visibility timeout and runs again.
        lock(&self.inner.acts).in_flight.remove(&item.work_id);
        let (n, p) = keys::split_work_id(item.work_id);
        let msg = to_json(&item.request.result_message(outcome))?;
        let _: i64 = self
            .inner
            .scripts
            .complete
            .key(format!("{}:lease", self.tag(p)))
            .arg(self.tag(p))
            .arg(stream_id(n))
            .arg(&item.request.instance_id)
            .arg(msg)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("completing an activity", e))?;
        Ok(())
    }

    pub(super) async fn abandon_one(&self, work_id: u64) -> Result<(), Error> {
        lock(&self.inner.acts).in_flight.remove(&work_id);
        let (n, p) = keys::split_work_id(work_id);
        let _: i64 = self
            .inner
            .scripts
            .abandon
            .key(format!("{}:lease", self.tag(p)))
            .arg(self.tag(p))
            .arg(stream_id(n))
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("handing an activity back", e))?;
        Ok(())
    }

    /// Keep our running items (`XCLAIM` resets their idle time), claim items of dead workers
    /// (`XAUTOCLAIM`), and hand prefetched items back if activities are no longer fetched.
    pub(super) async fn activity_upkeep(&self) -> Result<(), Error> {
        let (active, idle) = {
            let a = lock(&self.inner.activity);
            (a.active, a.last_fetch.is_none_or(|t| t.elapsed() > ACT_IDLE_AFTER))
        };
        if !active {
            return Ok(());
        }
        let mut c = self.conn();
        if idle {
            let left: Vec<u64> = lock(&self.inner.acts).buffer.drain(..).map(|i| i.work_id).collect();
            for w in left {
                self.abandon_one(w).await?;
            }
        }
        let mine: Vec<u64> = {
            let acts = lock(&self.inner.acts);
            acts.in_flight.keys().chain(acts.buffer.iter().map(|i| &i.work_id)).copied().collect()
        };
        let mut by_part: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for w in &mine {
            let (n, p) = keys::split_work_id(*w);
            by_part.entry(p).or_default().push(stream_id(n));
        }
        for (p, ids) in by_part {
            let _: Value = redis::cmd("XCLAIM")
                .arg(format!("{}:act", self.tag(p)))
                .arg("w")
                .arg(&self.inner.worker_id)
                .arg(0)
                .arg(ids)
                .arg("JUSTID")
                .query_async(&mut c)
                .await
                .map_err(|e| backend_err("XCLAIM", e))?;
        }
        if idle {
            if lock(&self.inner.acts).in_flight.is_empty() {
                lock(&self.inner.activity).active = false;
            }
            return Ok(());
        }
        let mine: HashSet<u64> = mine.into_iter().collect();
        let visibility = self.inner.cfg.visibility.as_millis() as u64;
        for p in 0..self.inner.cfg.partitions {
            let reply: Value = redis::cmd("XAUTOCLAIM")
                .arg(format!("{}:act", self.tag(p)))
                .arg("w")
                .arg(&self.inner.worker_id)
                .arg(visibility)
                .arg("0-0")
                .arg("COUNT")
                .arg(ACT_PREFETCH)
                .query_async(&mut c)
                .await
                .map_err(|e| backend_err("XAUTOCLAIM", e))?;
            let entries = match &reply {
                Value::Array(a) if a.len() >= 2 => keys::parse_entries(&a[1]),
                _ => Vec::new(),
            };
            let items: Vec<_> =
                entries.iter().filter_map(|e| self.work_item(p, e)).filter(|i| !mine.contains(&i.work_id)).collect();
            lock(&self.inner.acts).buffer.extend(items);
        }
        Ok(())
    }
}
