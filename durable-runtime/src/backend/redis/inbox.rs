//! The inboxes (control streams): clients write instances and messages into them, the owner of
//! a partition reads them into memory and hands out orchestration work, one lock per instance.

use super::{BLOCK_MAX, Inner, Redis, backend_err, keys, lock, record, to_json};
use crate::backend::{Backend, InstanceMessage, NewInstance, OrchestrationWorkItem, PendingMessage};
use crate::error::Error;
use keys::Entry;
use keys::stream_id;
use redis::Value;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// One instance's inbox in memory, and its lock.
#[derive(Default)]
pub(super) struct Inst {
    pub(super) inbox: Vec<PendingMessage>,
    pub(super) has_new: bool,
    pub(super) locked: Option<u64>,
    /// How many of the first messages of `inbox` its last step left (it is suspended, or no
    /// code here can run it): they do not count against the read-ahead until a step consumes
    /// some of its messages again.
    pub(super) stalled: usize,
}

/// What a [`Redis`] handle holds of its partitions' control streams in memory
/// ([`Redis::inbox_stats`]): the figures that [`RedisBuilder::read_ahead`] and
/// [`RedisBuilder::max_messages_per_step`] bound.
///
/// [`RedisBuilder::read_ahead`]: super::RedisBuilder::read_ahead
/// [`RedisBuilder::max_messages_per_step`]: super::RedisBuilder::max_messages_per_step
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxStats {
    /// Control entries held now, over all owned partitions (messages of suspended or blocked
    /// instances, which do not count against the read-ahead, aside).
    pub held: usize,
    /// The most held at once since the handle connected.
    pub peak_held: usize,
    /// Messages held for instances that cannot consume them yet (suspended, or blocked
    /// waiting for their code).
    pub stalled: usize,
    /// The most messages one step has been given since the handle connected.
    pub largest_step: usize,
}

/// How this handle's record cache ([`RedisBuilder::record_cache`]) fares
/// ([`Redis::record_cache_stats`]): how many steps started from a kept record, how many read
/// theirs from Redis, and what is kept now.
///
/// [`RedisBuilder::record_cache`]: super::RedisBuilder::record_cache
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordCacheStats {
    /// Steps that started from a kept record, since the handle connected.
    pub hits: u64,
    /// Steps that read their instance's record from Redis.
    pub misses: u64,
    /// Records kept now, over all owned partitions.
    pub kept: usize,
    /// About how many bytes they take.
    pub bytes: usize,
}

/// A locked instance: where it lives and what its commit checks.
pub(super) struct LockInfo {
    pub(super) part: u32,
    pub(super) epoch: u64,
    pub(super) instance: String,
    pub(super) generation: String,
    /// Inbox entries of an older instance with the same id: acknowledged with the commit.
    pub(super) stale: Vec<u64>,
    /// The step was given only the first messages of a longer inbox.
    pub(super) truncated: bool,
}

impl Redis {
    /// Create an instance: its record and its start message, unless the id is taken.
    pub(super) async fn create(&self, new: NewInstance) -> Result<(), Error> {
        let p = self.part_of(&new.instance_id);
        let now = Backend::now(self);
        let created: i64 = self
            .inner
            .scripts
            .create
            .key(format!("{}:lease", self.tag(p)))
            .arg(self.tag(p))
            .arg(p)
            .arg(&new.instance_id)
            .arg(record::encode_status(&new.initial_status(now))?)
            .arg(now)
            .arg(to_json(&new.start_message())?)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("creating an instance", e))?;
        if created == 0 {
            return Err(Error::InstanceAlreadyExists(new.instance_id));
        }
        Ok(())
    }

    /// What this handle holds of its partitions' control streams in memory: how close it runs
    /// to [`read_ahead`](super::RedisBuilder::read_ahead) and
    /// [`max_messages_per_step`](super::RedisBuilder::max_messages_per_step).
    pub fn inbox_stats(&self) -> InboxStats {
        let o = lock(&self.inner.owner);
        let mut stats = InboxStats { peak_held: o.peak_held, largest_step: o.largest_step, ..InboxStats::default() };
        for part in o.parts.values() {
            for inst in part.insts.values() {
                stats.stalled += inst.stalled;
                stats.held += inst.inbox.len().saturating_sub(inst.stalled);
            }
        }
        stats
    }

    /// How the record cache ([`RedisBuilder::record_cache`](super::RedisBuilder::record_cache))
    /// fares: steps that started from a kept record, steps that read it, and what is kept.
    pub fn record_cache_stats(&self) -> RecordCacheStats {
        let o = lock(&self.inner.owner);
        RecordCacheStats {
            hits: o.kept_hits,
            misses: o.kept_misses,
            kept: o.parts.values().map(|p| p.kept.len()).sum(),
            bytes: o.kept_bytes,
        }
    }

    /// Read new control entries of the owned partitions into their inboxes; blocks up to
    /// `block` if there is none (`None`: do not block).
    pub(super) async fn read_ctl(&self, block: Option<Duration>) -> Result<usize, Error> {
        let room = self.inner.room.notified();
        tokio::pin!(room);
        room.as_mut().enable();
        let (cursors, full): (Vec<(u32, u64, u64)>, bool) = {
            let o = lock(&self.inner.owner);
            let read_ahead = self.inner.cfg.read_ahead;
            let cursors: Vec<_> =
                o.parts.iter().filter(|(_, s)| s.held() < read_ahead).map(|(p, s)| (*p, s.epoch, s.last)).collect();
            let full = cursors.len() < o.parts.len();
            (cursors, full)
        };
        if cursors.is_empty() {
            if let Some(b) = block {
                // Every owned partition holds its read-ahead (or there is none): wait until a
                // step consumes some.
                let wait = if full { b } else { Duration::from_millis(50) };
                tokio::select! {
                    _ = &mut room => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            return Ok(0);
        }
        let streams = if let Some(cluster) = self.cluster() {
            // One read per partition (no command may span slots), all at once, not blocking.
            let cmds = cursors
                .iter()
                .map(|(p, _, last)| {
                    let mut cmd = redis::cmd("XREAD");
                    cmd.arg("COUNT").arg(self.inner.cfg.read_batch).arg("STREAMS");
                    cmd.arg(&self.inner.stream_keys.ctl[*p as usize]).arg(stream_id(*last));
                    cmd
                })
                .collect();
            let streams = self.read_each(cmds).await.map_err(|e| backend_err("XREAD", e))?;
            match block {
                Some(b) if streams.is_empty() => cluster.ctl.idle(b).await,
                _ => cluster.ctl.found(),
            }
            streams
        } else {
            let mut cmd = redis::cmd("XREAD");
            cmd.arg("COUNT").arg(self.inner.cfg.read_batch);
            if let Some(b) = block {
                cmd.arg("BLOCK").arg(b.as_millis().max(1) as u64);
            }
            cmd.arg("STREAMS");
            for (p, _, _) in &cursors {
                cmd.arg(&self.inner.stream_keys.ctl[*p as usize]);
            }
            for (_, _, last) in &cursors {
                cmd.arg(stream_id(*last));
            }
            let reply: Value = if block.is_some() {
                let mut guard = self.inner.ctl_conn.lock().await;
                if guard.is_none() {
                    *guard = Some(self.blocking_conn().await?);
                }
                let c = guard.as_mut().expect("set above");
                cmd.query_async(c).await.map_err(|e| backend_err("XREAD", e))?
            } else {
                cmd.query_async(&mut self.conn()).await.map_err(|e| backend_err("XREAD", e))?
            };
            keys::parse_read(reply)
        };
        let mut added = 0;
        let mut bad = Vec::new();
        {
            let mut o = lock(&self.inner.owner);
            for (key, entries) in streams {
                let Some(&(p, epoch, _)) =
                    self.inner.stream_keys.ctl_part(&key).and_then(|kp| cursors.iter().find(|(p, _, _)| *p == kp))
                else {
                    continue;
                };
                let Some(part) = o.parts.get_mut(&p) else { continue };
                if part.epoch != epoch {
                    continue;
                }
                for e in entries {
                    if e.n <= part.last {
                        continue;
                    }
                    part.last = e.n;
                    let (inst, message) = match decode_ctl(&e) {
                        Ok(d) => d,
                        Err(reason) => {
                            bad.push((p, e, reason));
                            continue;
                        }
                    };
                    let st = part.insts.entry(inst.clone()).or_default();
                    st.inbox.push(PendingMessage { id: e.n, message });
                    if !st.has_new {
                        st.has_new = true;
                        if st.locked.is_none() {
                            part.ready.push_back(inst);
                        }
                    }
                    added += 1;
                }
            }
        }
        if added > 0 {
            let mut o = lock(&self.inner.owner);
            let held = o.parts.values().map(|p| p.held()).sum();
            o.peak_held = o.peak_held.max(held);
            drop(o);
            self.inner.ready.notify_waiters();
        }
        // Past the cursor now: moved to the dead letters, or, if that fails, left in the stream
        // until the partition is read from its start again (by its next owner).
        for (p, e, reason) in bad {
            self.dead_letter_all(p, "ctl", vec![(e, reason)]).await;
        }
        Ok(added)
    }

    /// Take up to `max` ready instances, locked.
    fn pop_ready(&self, max: usize) -> Vec<(u64, u32, String, Vec<PendingMessage>)> {
        let mut out = Vec::new();
        let mut guard = lock(&self.inner.owner);
        let o = &mut *guard;
        let ids: Vec<u32> = o.parts.keys().copied().collect();
        if ids.is_empty() {
            return out;
        }
        for part in o.parts.values_mut() {
            part.trim();
        }
        let start = o.rr as usize % ids.len();
        o.rr = o.rr.wrapping_add(1);
        let mut progress = true;
        while out.len() < max && progress {
            progress = false;
            for k in 0..ids.len() {
                if out.len() >= max {
                    break;
                }
                let p = ids[(start + k) % ids.len()];
                let lock_id = self.inner.next_lock.fetch_add(1, Ordering::Relaxed);
                let Some(part) = o.parts.get_mut(&p) else { continue };
                if part.draining {
                    continue;
                }
                let epoch = part.epoch;
                while let Some(id) = part.ready.pop_front() {
                    let Some(st) = part.insts.get_mut(&id) else { continue };
                    if st.locked.is_some() || !st.has_new {
                        continue;
                    }
                    st.has_new = false;
                    st.locked = Some(lock_id);
                    let (msgs, truncated) = step_window(&st.inbox, self.inner.cfg.step_messages);
                    o.largest_step = o.largest_step.max(msgs.len());
                    out.push((lock_id, p, id.clone(), msgs));
                    o.locks.insert(
                        lock_id,
                        LockInfo {
                            part: p,
                            epoch,
                            instance: id,
                            generation: String::new(),
                            stale: Vec::new(),
                            truncated,
                        },
                    );
                    progress = true;
                    break;
                }
            }
        }
        out
    }

    /// Load the records of locked instances (one round trip) and make the work items.
    async fn load_items(
        &self,
        popped: Vec<(u64, u32, String, Vec<PendingMessage>)>,
    ) -> Result<Vec<OrchestrationWorkItem>, Error> {
        let locks: Vec<(u64, String)> = popped.iter().map(|(l, _, id, _)| (*l, id.clone())).collect();
        let r = self.load_items_inner(popped).await;
        if r.is_err() {
            for (l, id) in locks {
                self.abandon_local(&id, l);
            }
        }
        r
    }

    /// `load_items` without handing the locks back on failure.
    async fn load_items_inner(
        &self,
        popped: Vec<(u64, u32, String, Vec<PendingMessage>)>,
    ) -> Result<Vec<OrchestrationWorkItem>, Error> {
        // The records this handle's commits left (`RedisBuilder::record_cache`); the others
        // read in one round trip, and kept.
        let (mut records, missed) = {
            let mut o = lock(&self.inner.owner);
            let records: Vec<Option<Option<record::Record>>> = popped
                .iter()
                .map(|(lock_id, p, id, _)| {
                    let epoch = o.locks.get(lock_id)?.epoch;
                    let part = o.parts.get(p).filter(|part| part.epoch == epoch)?;
                    Some(Some(part.kept.get(id)?.clone()))
                })
                .collect();
            let missed: Vec<usize> = (0..popped.len()).filter(|&k| records[k].is_none()).collect();
            o.kept_misses += missed.len() as u64;
            o.kept_hits += (popped.len() - missed.len()) as u64;
            (records, missed)
        };
        if !missed.is_empty() {
            let ids: Vec<(u32, &str)> = missed.iter().map(|&k| (popped[k].1, popped[k].2.as_str())).collect();
            let read = self.records(&ids).await?;
            let budget = self.inner.cfg.record_cache;
            let mut o = lock(&self.inner.owner);
            for (&k, rec) in missed.iter().zip(read) {
                let (lock_id, p, id, _) = &popped[k];
                if let Some(r) = &rec
                    && let Some(epoch) = o.locks.get(lock_id).map(|l| l.epoch)
                {
                    o.keep(*p, epoch, id, r.to_keep(), budget);
                }
                records[k] = Some(rec);
            }
        }
        let mut items = Vec::new();
        for ((lock_id, popped_part, id, msgs), rec) in
            popped.into_iter().zip(records.into_iter().map(Option::unwrap_or_default))
        {
            let (generation, m0, hlen, status, snapshot) = match rec {
                Some(r) => {
                    let status = record::decode_status(&r.status, &id)?;
                    if status.is_finished() {
                        // Steps of a finished instance only acknowledge what comes late.
                        lock(&self.inner.owner).unkeep(popped_part, &id);
                    }
                    (Some(r.generation), r.m0, r.history_len, Some(status), r.snapshot)
                }
                None => (None, 0, 0, None, None),
            };
            let (messages, stale): (Vec<_>, Vec<_>) =
                if status.is_some() { msgs.into_iter().partition(|m| m.id > m0) } else { (msgs, Vec::new()) };
            {
                let mut o = lock(&self.inner.owner);
                if let Some(l) = o.locks.get_mut(&lock_id) {
                    l.generation = generation.unwrap_or_default();
                    l.stale = stale.iter().map(|m| m.id).collect();
                }
            }
            items.push(OrchestrationWorkItem {
                instance_id: id,
                lock: lock_id,
                status,
                snapshot,
                history_len: hlen,
                messages,
            });
        }
        Ok(items)
    }

    /// Unlock an instance and queue it as ready again (`false` if the lock is gone).
    pub(super) fn abandon_local(&self, instance_id: &str, lock_id: u64) -> bool {
        let mut o = lock(&self.inner.owner);
        let Some(l) = o.locks.remove(&lock_id) else { return false };
        let Some(part) = o.parts.get_mut(&l.part) else { return false };
        if let Some(st) = part.insts.get_mut(instance_id)
            && st.locked == Some(lock_id)
        {
            st.locked = None;
            st.has_new = true;
            part.ready.push_back(instance_id.to_string());
        }
        drop(o);
        self.inner.ready.notify_waiters();
        true
    }

    pub(super) async fn fetch_orchestration_batch(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<OrchestrationWorkItem>, Error> {
        self.inner.fetching.fetch_add(1, Ordering::SeqCst);
        let _guard = FetchGuard(self);
        self.ensure_orchestrating().await?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut read_once = false;
        loop {
            let notified = self.inner.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let popped = self.pop_ready(max.max(1));
            if !popped.is_empty() {
                return self.load_items(popped).await;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                if read_once {
                    return Ok(Vec::new());
                }
                // Nothing in memory: look at the streams once without blocking.
                read_once = true;
                self.read_ctl(None).await?;
                continue;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(deadline - now) => {}
            }
        }
    }
}

/// The messages one step of an instance gets: the first `max` of its inbox, and, past them,
/// the ones that must not wait behind a backlog (`Terminate`; `Resume`, which is what lets a
/// suspended instance consume what it holds; and the grant of a slot of a concurrency limit,
/// which is what lets a waiting instance start); whether some were left for later steps.
fn step_window(inbox: &[PendingMessage], max: usize) -> (Vec<PendingMessage>, bool) {
    if inbox.len() <= max {
        return (inbox.to_vec(), false);
    }
    let mut window = inbox[..max].to_vec();
    window.extend(
        inbox[max..]
            .iter()
            .filter(|m| {
                matches!(m.message, InstanceMessage::Terminate { .. } | InstanceMessage::Resume { .. })
                    || crate::engine::limit::is_any_grant(&m.message)
            })
            .cloned(),
    );
    (window, true)
}

/// The instance and message of a control entry, or why it cannot be read.
fn decode_ctl(e: &Entry) -> Result<(String, InstanceMessage), String> {
    let inst = e.get_str("i").ok_or("the control entry has no instance (field `i`)")?;
    let m = e.get("m").ok_or("the control entry has no message (field `m`)")?;
    let message = serde_json::from_slice::<InstanceMessage>(m)
        .map_err(|err| format!("the control message does not decode (written by a newer release?): {err}"))?;
    Ok((inst, message))
}

/// Counts a fetch in progress, and notes when it ends (an idle handle hands its partitions back).
struct FetchGuard<'a>(&'a Redis);

impl Drop for FetchGuard<'_> {
    fn drop(&mut self) {
        self.0.inner.fetching.fetch_sub(1, Ordering::SeqCst);
        lock(&self.0.inner.owner).last_fetch = Some(Instant::now());
    }
}

/// The control reader: keeps the owned partitions' inboxes filled (blocking reads).
pub(super) async fn ctl_reader(weak: Weak<Inner>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let r = Redis { inner };
        let active = lock(&r.inner.owner).active;
        let res = if active {
            r.read_ctl(Some(BLOCK_MAX)).await
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(0)
        };
        drop(r);
        match res {
            Ok(_) => backoff = Duration::from_millis(50),
            Err(e) => {
                tracing::error!(error = %e, retry_in = ?backoff, "reading control streams failed");
                // Redis may have restarted: the lease task looks at its run_id at once.
                if let Some(inner) = weak.upgrade() {
                    lock(&inner.owner).next_heartbeat = None;
                    inner.relet.notify_one();
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
