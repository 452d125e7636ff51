//! Activities: reading work items with the consumer group, completing and handing them back,
//! keeping running items claimed, claiming those of dead workers, and deleting consumers that
//! are gone.

use super::{BLOCK_MAX, Redis, backend_err, keys, lock, reply_str, to_json};
use crate::backend::{ActivityRequest, ActivityWorkItem};
use crate::error::Error;
use keys::{Entry, stream_id};
use redis::Value;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// A handle that has not fetched activity work for this long hands its prefetched items back.
const ACT_IDLE_AFTER: Duration = Duration::from_secs(2);
/// How many activity items one read asks for at least, and one upkeep round claims at most
/// per partition.
const ACT_PREFETCH: usize = 8;
/// At most this many `XAUTOCLAIM` calls per partition and upkeep round (each looks at up to
/// ten times `ACT_PREFETCH` pending entries); the next round goes on from where this one
/// stopped.
const CLAIM_CALLS: usize = 128;

/// The activity items this handle holds: read ahead (`buffer`) and handed out (`in_flight`).
#[derive(Default)]
pub(super) struct Acts {
    pub(super) buffer: VecDeque<ActivityWorkItem>,
    pub(super) in_flight: HashMap<u64, ActivityWorkItem>,
    /// Items whose results wait in an inbox of this handle (`handover.rs`): kept claimed, like
    /// running ones, until the step that consumes them commits.
    pub(super) handed: HashSet<u64>,
    /// The worker stopped (`release`): items read or claimed from now on are handed back at
    /// once, until activity work is fetched again.
    pub(super) closed: bool,
}

/// Whether this handle fetches activities, and when its items are claimed again next.
#[derive(Default)]
pub(super) struct ActivityMode {
    pub(super) active: bool,
    pub(super) last_fetch: Option<Instant>,
    pub(super) next_refresh: Option<Instant>,
    /// Per partition, where the walk over the pending entries (`XAUTOCLAIM`) goes on.
    pub(super) claim_cursor: HashMap<u32, String>,
    /// When consumers that are gone are looked for next.
    pub(super) next_cleanup: Option<Instant>,
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
            let parts = this.inner.cfg.partitions;
            // Held for the whole read, so that `hand_back_activities` waits for a read on its way.
            let mut guard = this.inner.act_conn.lock().await;
            let reply: Result<Vec<(String, Vec<Entry>)>, redis::RedisError> = if let Some(cluster) = this.cluster() {
                // One read per partition (no command may span slots), all at once, not blocking.
                let cmds = (0..parts)
                    .map(|p| {
                        let mut cmd = redis::cmd("XREADGROUP");
                        cmd.arg("GROUP").arg("w").arg(&this.inner.worker_id).arg("COUNT").arg(count);
                        cmd.arg("STREAMS").arg(&this.inner.stream_keys.act[p as usize]).arg(">");
                        cmd
                    })
                    .collect();
                let got = this.read_each(cmds).await;
                match (&got, block) {
                    (Ok(streams), Some(b)) if streams.is_empty() => cluster.act.idle(b).await,
                    _ => cluster.act.found(),
                }
                got
            } else {
                let mut cmd = redis::cmd("XREADGROUP");
                cmd.arg("GROUP").arg("w").arg(&this.inner.worker_id).arg("COUNT").arg(count);
                if let Some(b) = block {
                    cmd.arg("BLOCK").arg(b.as_millis().max(1) as u64);
                }
                cmd.arg("STREAMS");
                for k in &this.inner.stream_keys.act {
                    cmd.arg(k);
                }
                for _ in 0..parts {
                    cmd.arg(">");
                }
                let reply: Result<Value, redis::RedisError> = if block.is_some() {
                    if guard.is_none() {
                        *guard = Some(this.blocking_conn().await?);
                    }
                    cmd.query_async(guard.as_mut().expect("set above")).await
                } else {
                    cmd.query_async(&mut this.conn()).await
                };
                reply.map(keys::parse_read)
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
            let mut bad = Vec::new();
            for (key, entries) in reply {
                let Some(p) = this.inner.stream_keys.act_part(&key) else { continue };
                let (ok, unreadable) = Self::work_items(p, entries);
                items.extend(ok);
                bad.push((p, unreadable));
            }
            this.take_in(items).await?;
            // If moving one fails, it stays pending and is claimed again after the visibility
            // timeout (`claim_dead`), which tries again.
            for (p, unreadable) in bad {
                this.dead_letter_all(p, "act", unreadable).await;
            }
            drop(guard);
            Ok::<(), Error>(())
        });
        task.await.map_err(|e| Error::Backend(format!("redis: activity read task failed: {e}")))?
    }

    /// Put items read or claimed into the buffer, or hand them back if the worker stopped.
    async fn take_in(&self, items: Vec<ActivityWorkItem>) -> Result<(), Error> {
        let back: Vec<u64> = {
            let mut acts = lock(&self.inner.acts);
            if acts.closed {
                items.into_iter().map(|i| i.work_id).collect()
            } else {
                acts.buffer.extend(items);
                Vec::new()
            }
        };
        for w in back {
            self.abandon_one(w).await?;
        }
        Ok(())
    }

    /// The work items of activity entries of partition `p`, and those that cannot be read with
    /// the reason.
    fn work_items(p: u32, entries: Vec<Entry>) -> (Vec<ActivityWorkItem>, Vec<(Entry, String)>) {
        let mut items = Vec::new();
        let mut bad = Vec::new();
        for e in entries {
            let decoded = match e.get("r") {
                None => Err("the activity entry has no request (field `r`)".to_string()),
                Some(r) => serde_json::from_slice::<ActivityRequest>(r).map_err(|err| {
                    format!("the activity request does not decode (written by a newer release?): {err}")
                }),
            };
            match decoded {
                Ok(request) => items.push(ActivityWorkItem { work_id: keys::work_id(e.n, p), request }),
                Err(reason) => bad.push((e, reason)),
            }
        }
        (items, bad)
    }

    pub(super) async fn fetch_activity_batch(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ActivityWorkItem>, Error> {
        self.ensure_started().await;
        lock(&self.inner.acts).closed = false;
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
        let message = item.request.result_message(outcome);
        // The instance's partition is this handle's: no round trip.
        let Some(message) = self.try_hand_over(p, n, &item.request.instance_id, message) else { return Ok(()) };
        let msg = to_json(&message)?;
        let args = [stream_id(n).into_bytes(), item.request.instance_id.clone().into_bytes(), msg.into_bytes()];
        self.complete_batched(p, args).await
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
    /// (`XAUTOCLAIM`), delete consumers that are gone, and hand prefetched items back if
    /// activities are no longer fetched.
    pub(super) async fn activity_upkeep(&self) -> Result<(), Error> {
        let _one_at_a_time = self.inner.act_upkeep.lock().await;
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
        let (mine, closed) = {
            let acts = lock(&self.inner.acts);
            let mine: Vec<u64> = acts
                .in_flight
                .keys()
                .chain(acts.buffer.iter().map(|i| &i.work_id))
                .chain(acts.handed.iter())
                .copied()
                .collect();
            (mine, acts.closed)
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
        if idle || closed {
            let acts = lock(&self.inner.acts);
            if acts.in_flight.is_empty() && acts.handed.is_empty() {
                drop(acts);
                lock(&self.inner.activity).active = false;
            }
            return Ok(());
        }
        let mine: HashSet<u64> = mine.into_iter().collect();
        for p in 0..self.inner.cfg.partitions {
            self.claim_dead(p, &mine).await?;
        }
        let cleanup_due = {
            let mut a = lock(&self.inner.activity);
            let due = a.next_cleanup.is_none_or(|t| Instant::now() >= t);
            if due {
                a.next_cleanup = Some(Instant::now() + self.inner.cfg.visibility);
            }
            due
        };
        if cleanup_due {
            let idle_ms = self.inner.cfg.visibility.as_millis() as u64;
            for p in 0..self.inner.cfg.partitions {
                self.delete_consumers(p, Some(idle_ms), "").await?;
            }
        }
        Ok(())
    }

    /// Claim up to `ACT_PREFETCH` items of partition `p` idle past the visibility timeout (their
    /// worker died), walking the pending entries with the cursor `XAUTOCLAIM` returns: each call
    /// looks at only so many entries, and those of live workers (kept fresh) may come first in
    /// any number. The walk goes on in the next round from where this one stopped, and starts
    /// over when it has been through all of them.
    async fn claim_dead(&self, p: u32, mine: &HashSet<u64>) -> Result<(), Error> {
        let mut c = self.conn();
        let visibility = self.inner.cfg.visibility.as_millis() as u64;
        let mut cursor = lock(&self.inner.activity).claim_cursor.get(&p).cloned().unwrap_or_else(|| "0-0".to_string());
        let mut claimed = 0;
        for _ in 0..CLAIM_CALLS {
            let reply: Value = redis::cmd("XAUTOCLAIM")
                .arg(format!("{}:act", self.tag(p)))
                .arg("w")
                .arg(&self.inner.worker_id)
                .arg(visibility)
                .arg(&cursor)
                .arg("COUNT")
                .arg(ACT_PREFETCH - claimed)
                .query_async(&mut c)
                .await
                .map_err(|e| backend_err("XAUTOCLAIM", e))?;
            let (next, entries) = match reply {
                Value::Array(mut a) if a.len() >= 2 => {
                    let entries = keys::parse_entries(a.swap_remove(1));
                    (reply_str(&a[0]), entries)
                }
                _ => (String::new(), Vec::new()),
            };
            claimed += entries.len();
            let (items, unreadable) = Self::work_items(p, entries);
            self.take_in(items.into_iter().filter(|i| !mine.contains(&i.work_id)).collect()).await?;
            self.dead_letter_all(p, "act", unreadable).await;
            cursor = if next.is_empty() { "0-0".to_string() } else { next };
            if cursor == "0-0" || claimed >= ACT_PREFETCH {
                break;
            }
        }
        lock(&self.inner.activity).claim_cursor.insert(p, cursor);
        Ok(())
    }

    /// Delete the consumers of partition `p` that hold no pending entry and are idle for longer
    /// than `idle_ms` (if given), or are named `name` (see `consumers.lua`).
    async fn delete_consumers(&self, p: u32, idle_ms: Option<u64>, name: &str) -> Result<(), Error> {
        let deleted: i64 = self
            .inner
            .scripts
            .consumers
            .key(format!("{}:lease", self.tag(p)))
            .arg(self.tag(p))
            .arg(idle_ms.map_or(-1, |ms| ms as i64))
            .arg(name)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("deleting activity consumers", e))?;
        if deleted > 0 {
            tracing::debug!(partition = p, deleted, "deleted activity consumers with nothing pending");
        }
        Ok(())
    }

    /// The worker stopped: hand the prefetched items back at once (another worker takes them
    /// without waiting for the visibility timeout), and delete this handle's consumers if they
    /// hold nothing. Items still running stay claimed until they complete or are handed back.
    pub(super) async fn hand_back_activities(&self) -> Result<(), Error> {
        let _one_at_a_time = self.inner.act_upkeep.lock().await;
        lock(&self.inner.acts).closed = true;
        // A read on its way puts what it read into the buffer first (or hands it back).
        let _reads = self.inner.act_conn.lock().await;
        let left: Vec<u64> = lock(&self.inner.acts).buffer.drain(..).map(|i| i.work_id).collect();
        for w in left {
            self.abandon_one(w).await?;
        }
        {
            // Items running, or whose results wait in an inbox here, stay claimed.
            let acts = lock(&self.inner.acts);
            if !acts.in_flight.is_empty() || !acts.handed.is_empty() {
                return Ok(());
            }
        }
        lock(&self.inner.activity).active = false;
        for p in 0..self.inner.cfg.partitions {
            self.delete_consumers(p, None, &self.inner.worker_id).await?;
        }
        Ok(())
    }
}
