//! Partition leases: the partitions a handle owns, joining the live-worker set, taking,
//! renewing and handing back leases under fencing epochs (rebalance).

use super::handover::{self, Orphan};
use super::inbox::{Inst, LockInfo};
use super::record::Record;
use super::{Redis, ScriptCall, backend_err, invoke_batch, lock};
use crate::error::Error;
use crate::time::Millis;
use redis::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

/// The partitions this handle owns, with their inboxes.
#[derive(Default)]
pub(super) struct Owner {
    /// Whether this handle steps orchestrations (it has fetched orchestration work recently).
    pub(super) active: bool,
    pub(super) last_fetch: Option<Instant>,
    pub(super) parts: BTreeMap<u32, Part>,
    pub(super) locks: HashMap<u64, LockInfo>,
    pub(super) rr: u32,
    pub(super) next_heartbeat: Option<Instant>,
    /// The most control entries counted against the read-ahead at once, over all partitions.
    pub(super) peak_held: usize,
    /// The most messages one step was given.
    pub(super) largest_step: usize,
    /// Partitions this handle stopped holding in memory, and when: within a lease of that,
    /// Redis may still (or again, after going back in time) name this handle their holder.
    pub(super) forgotten: HashMap<u32, Instant>,
    /// The bytes of records kept over all partitions (`Part::kept`, `Record::kept_size`).
    pub(super) kept_bytes: usize,
    /// Partitions and instances of the records kept, oldest first (`keep`); it may also name
    /// some no longer kept.
    pub(super) kept_order: VecDeque<(u32, String)>,
    /// Steps that started from a kept record, and steps that read theirs.
    pub(super) kept_hits: u64,
    pub(super) kept_misses: u64,
    /// Activity results handed over in memory (`handover.rs`) whose partitions this handle
    /// stopped holding: to send through `complete.lua`.
    pub(super) orphans: Vec<Orphan>,
}

impl Owner {
    /// Forget partition `p` if it is held at `epoch` (any epoch if `None`), with its locks: their
    /// commits are refused. `false` if it was not held so.
    pub(super) fn forget(&mut self, p: u32, epoch: Option<u64>) -> bool {
        if self.parts.get(&p).is_none_or(|s| epoch.is_some_and(|e| s.epoch != e)) {
            return false;
        }
        if let Some(part) = self.parts.remove(&p) {
            self.kept_bytes -= part.kept.iter().map(|(id, r)| r.kept_size(id.len())).sum::<usize>();
            for (instance, st) in part.insts {
                handover::orphans_of(p, &instance, st.inbox, &mut self.orphans);
            }
        }
        self.locks.retain(|_, l| l.part != p);
        self.forgotten.insert(p, Instant::now());
        true
    }

    /// Keep `kept` as the record of instance `id` of partition `p` (if it is held at `epoch`),
    /// first forgetting the records kept longest while they would take more than `budget`
    /// bytes: instances that stopped stepping (parked, waiting for an event for days) give
    /// their room to the ones that step. A record over a quarter of the budget is not kept.
    pub(super) fn keep(&mut self, p: u32, epoch: u64, id: &str, kept: Record, budget: usize) {
        let size = kept.kept_size(id.len());
        if self.parts.get(&p).is_none_or(|part| part.epoch != epoch) {
            return;
        }
        self.unkeep(p, id);
        if size > budget / 4 || !self.fit(budget - size) {
            return;
        }
        let Some(part) = self.parts.get_mut(&p) else { return };
        part.kept.insert(id.to_string(), kept);
        self.kept_bytes += size;
        self.kept_order.push_back((p, id.to_string()));
        // The order also names records forgotten since (finished, refused, their partition
        // lost): drop those once they are most of it.
        if self.kept_order.len() > 1024 {
            let live: usize = self.parts.values().map(|part| part.kept.len()).sum();
            if self.kept_order.len() > 2 * live {
                let parts = &self.parts;
                let mut seen = std::collections::HashSet::new();
                self.kept_order.retain(|(q, id)| {
                    parts.get(q).is_some_and(|part| part.kept.contains_key(id)) && seen.insert((*q, id.clone()))
                });
            }
        }
    }

    /// Forget the records kept longest until those kept take at most `budget` bytes; whether
    /// they do.
    pub(super) fn fit(&mut self, budget: usize) -> bool {
        while self.kept_bytes > budget {
            let Some((q, old)) = self.kept_order.pop_front() else { return false };
            self.unkeep(q, &old);
        }
        true
    }

    /// Forget what is kept of the record of instance `id` of partition `p`.
    pub(super) fn unkeep(&mut self, p: u32, id: &str) {
        if let Some(r) = self.parts.get_mut(&p).and_then(|part| part.kept.remove(id)) {
            self.kept_bytes -= r.kept_size(id.len());
        }
    }

    /// Forget every partition; the ones that were held.
    pub(super) fn forget_all(&mut self) -> Vec<(u32, u64)> {
        let held: Vec<(u32, u64)> = self.parts.iter().map(|(p, s)| (*p, s.epoch)).collect();
        for &(p, _) in &held {
            self.forget(p, None);
        }
        held
    }
}

/// An owned partition: its lease epoch, its inboxes, and its timer and outbox state.
pub(super) struct Part {
    pub(super) epoch: u64,
    /// The last control entry read.
    pub(super) last: u64,
    /// The highest `:mark` this tenure's commits were answered with: Redis holding a lower one
    /// means it went back in time (see `fenced` in `lib.lua`).
    pub(super) mark: u64,
    pub(super) insts: HashMap<String, Inst>,
    pub(super) ready: VecDeque<String>,
    /// Being handed back: no new work from it.
    pub(super) draining: bool,
    /// The earliest timer due (ms), `0` if unknown, `u64::MAX` if none.
    pub(super) timer_due: u64,
    pub(super) outbox_dirty: bool,
    /// Records of its instances as this tenure's commits left them (see
    /// [`RedisBuilder::record_cache`](super::RedisBuilder::record_cache)); dropped with the
    /// partition.
    pub(super) kept: HashMap<String, Record>,
}

impl Part {
    fn new(epoch: u64) -> Self {
        Self {
            epoch,
            last: 0,
            mark: 0,
            insts: HashMap::new(),
            ready: VecDeque::new(),
            draining: false,
            timer_due: 0,
            outbox_dirty: true,
            kept: HashMap::new(),
        }
    }

    /// The control entries held in memory that count against the read-ahead: those of
    /// instances that can consume them.
    pub(super) fn held(&self) -> usize {
        self.insts.values().map(|i| i.inbox.len().saturating_sub(i.stalled)).sum()
    }

    fn locked(&self) -> usize {
        self.insts.values().filter(|i| i.locked.is_some()).count()
    }

    /// Give back the room of a burst. `insts` and `ready` grow to hold every instance with
    /// unconsumed messages at once (73 + 24 bytes a slot; after 100,000 starts queued at once,
    /// 8,000–16,000 slots in each of 8 partitions) and used to keep that capacity when they
    /// emptied, so an idle worker held room for every instance of the burst, parked or not. A
    /// table more than eight times larger than what it holds is shrunk to twice that; it is
    /// shrunk again only after losing at least half of its entries, so the rehash is amortized
    /// over the removals.
    pub(super) fn trim(&mut self) {
        if self.insts.capacity() > TRIM_ABOVE && self.insts.len() * 8 < self.insts.capacity() {
            self.insts.shrink_to(self.insts.len() * 2);
        }
        if self.ready.capacity() > TRIM_ABOVE && self.ready.len() * 8 < self.ready.capacity() {
            self.ready.shrink_to(self.ready.len() * 2);
        }
    }
}

/// Inbox tables of a partition up to this capacity are never shrunk.
const TRIM_ABOVE: usize = 1024;

impl Redis {
    /// Become an orchestration worker: register, take leases (the first time, before returning).
    pub(super) async fn ensure_orchestrating(&self) -> Result<(), Error> {
        self.ensure_started().await;
        let first = {
            let mut o = lock(&self.inner.owner);
            o.last_fetch = Some(Instant::now());
            let first = !o.active;
            o.active = true;
            first
        };
        if first {
            self.open_commit_conn();
            self.rebalance().await?;
            self.read_ctl(None).await?;
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    /// Open the connection steps are committed on (`commit_conn`), on one Redis, in the
    /// background: until it is open commits go on the shared connection, and a failed attempt
    /// is tried again, less and less often, for as long as the handle lives.
    fn open_commit_conn(&self) {
        if self.inner.target.is_cluster() || self.inner.commit_conn.initialized() {
            return;
        }
        let inner = std::sync::Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut pause = std::time::Duration::from_millis(100);
            loop {
                let Some(i) = inner.upgrade() else { return };
                match i.target.connect(i.cfg.replica_acks).await {
                    Ok(c) => {
                        let _ = i.commit_conn.set(c);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?pause, "opening the connection for commits failed; commits go on the shared connection meanwhile");
                    }
                }
                drop(i);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(10));
            }
        });
    }

    /// Heartbeat, renew leases, and take or hand back partitions to reach this worker's share.
    pub(super) async fn rebalance(&self) -> Result<(), Error> {
        let inner = &self.inner;
        let _one_at_a_time = inner.rebalancing.lock().await;
        let lease_ms = inner.cfg.lease.as_millis() as u64;
        let wkey = format!("{{{}}}:workers", inner.cfg.prefix);
        let mut c = self.conn();
        // The heartbeat also reads Redis's clock, which this handle's clock follows.
        let sent = Instant::now();
        let (redis_ms, live): (Millis, Vec<String>) = inner
            .scripts
            .members
            .key(&wkey)
            .arg(&inner.worker_id)
            .arg(lease_ms)
            .invoke_async(&mut c)
            .await
            .map_err(|e| backend_err("heartbeat", e))?;
        inner.clock.set(redis_ms, sent, Instant::now());
        let n = live.len().max(1) as u32;
        let rank = live.iter().position(|w| *w == inner.worker_id).unwrap_or(0) as u32;
        let parts = inner.cfg.partitions;
        let target = parts.div_ceil(n);

        // A Redis that restarted or failed over may have gone back in time: read everything
        // again (before renewing, so that the partitions are taken again below).
        self.check_run_id().await;
        // Beside the renewals, which nothing may delay: load the function library again if
        // Redis lost it, and send results held for partitions this handle no longer holds to
        // their next owner (behind the completions queued before them).
        let r = self.clone();
        tokio::spawn(async move {
            r.load_functions().await;
            r.send_orphans().await;
        });

        // Renew what we hold, all in one round trip; each renewal also checks that Redis did
        // not go back in time (see `fenced` in `lib.lua`).
        let held: Vec<(u32, u64, u64, u64)> =
            lock(&inner.owner).parts.iter().map(|(p, s)| (*p, s.epoch, s.mark, s.last)).collect();
        let calls: Vec<ScriptCall> = held
            .iter()
            .map(|&(p, epoch, mark, last)| {
                let keys = vec![format!("{}:lease", self.tag(p)).into_bytes()];
                let args = [
                    self.tag(p),
                    "renew".to_string(),
                    inner.worker_id.clone(),
                    lease_ms.to_string(),
                    epoch.to_string(),
                    mark.to_string(),
                    last.to_string(),
                ]
                .map(String::into_bytes)
                .to_vec();
                (keys, args)
            })
            .collect();
        let renewed =
            invoke_batch(self, &inner.scripts.lease, &calls).await.map_err(|e| backend_err("renewing leases", e))?;
        for (&(p, epoch, _, _), reply) in held.iter().zip(renewed) {
            match reply.map_err(|e| backend_err("renewing a lease", e))? {
                Value::Int(1) => {}
                Value::Int(-1) => {
                    crate::metrics::lease_changed(crate::metrics::LeaseChange::Lost, p, epoch);
                    self.went_back(p, epoch, "the lease renewal")
                }
                _ => {
                    crate::metrics::lease_changed(crate::metrics::LeaseChange::Lost, p, epoch);
                    self.drop_partition(p, epoch)
                }
            }
        }
        self.take_back_orphans().await?;

        // Preferred partitions: a contiguous run by rank, so workers rarely compete.
        let preferred: Vec<u32> = (0..parts).map(|i| (rank * target + i) % parts).collect();
        let (owned, draining_ready): (usize, Vec<(u32, u64)>) = {
            let mut o = lock(&inner.owner);
            let mut owned = o.parts.values().filter(|p| !p.draining).count();
            // Too many: hand back the least preferred.
            if owned > target as usize {
                for p in preferred.iter().rev() {
                    if owned <= target as usize {
                        break;
                    }
                    if let Some(part) = o.parts.get_mut(p)
                        && !part.draining
                    {
                        part.draining = true;
                        owned -= 1;
                    }
                }
            }
            let ready =
                o.parts.iter().filter(|(_, s)| s.draining && s.locked() == 0).map(|(p, s)| (*p, s.epoch)).collect();
            (owned, ready)
        };
        for (p, epoch) in draining_ready {
            crate::metrics::lease_changed(crate::metrics::LeaseChange::Released, p, epoch);
            self.drop_partition(p, epoch);
            let _: Result<i64, _> = inner
                .scripts
                .lease
                .key(format!("{}:lease", self.tag(p)))
                .arg(self.tag(p))
                .arg("release")
                .arg(&inner.worker_id)
                .arg(lease_ms)
                .arg(epoch)
                .invoke_async(&mut c)
                .await;
        }
        let mut owned = owned;
        for p in preferred {
            if owned >= target as usize {
                break;
            }
            if lock(&inner.owner).parts.contains_key(&p) {
                continue;
            }
            let epoch = self.acquire(p).await?;
            if epoch > 0 {
                crate::metrics::lease_changed(crate::metrics::LeaseChange::Acquired, p, epoch);
                lock(&inner.owner).parts.insert(p, Part::new(epoch));
                owned += 1;
            }
        }
        let mut o = lock(&inner.owner);
        o.next_heartbeat = Some(Instant::now() + inner.cfg.lease / 3);
        // Other partitions' outbox drains may have put work in our outboxes or timer sets.
        for part in o.parts.values_mut() {
            part.outbox_dirty = true;
            part.timer_due = 0;
        }
        Ok(())
    }

    /// Take again the partitions Redis says this handle holds though it does not hold them in
    /// memory (looked for among those it stopped holding within the last lease). Their lease
    /// would otherwise keep every other worker out until it runs out: after Redis went back in
    /// time, a lease this handle had handed back is there again; a partition it dropped to read
    /// it again (an unknown commit outcome, Redis going back in time) is still leased to it.
    /// Any extra partitions are handed back by the next rebalance, as usual.
    async fn take_back_orphans(&self) -> Result<(), Error> {
        let inner = &self.inner;
        let candidates: Vec<u32> = {
            let mut o = lock(&inner.owner);
            o.forgotten.retain(|_, at| at.elapsed() < inner.cfg.lease);
            let o = &*o;
            o.forgotten.keys().filter(|p| !o.parts.contains_key(p)).copied().collect()
        };
        if candidates.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for p in &candidates {
            pipe.cmd("GET").arg(format!("{}:lease", self.tag(*p)));
        }
        let holders: Vec<Option<String>> =
            pipe.query_async(&mut self.conn()).await.map_err(|e| backend_err("reading leases", e))?;
        for (p, holder) in candidates.into_iter().zip(holders) {
            if holder.as_deref() != Some(inner.worker_id.as_str()) {
                continue;
            }
            let epoch = self.acquire(p).await?;
            if epoch > 0 {
                let mut o = lock(&inner.owner);
                o.forgotten.remove(&p);
                o.parts.insert(p, Part::new(epoch));
            }
        }
        Ok(())
    }

    /// Take partition `p`'s lease if it is free or already this handle's, under a new epoch;
    /// the epoch, or 0 if another worker holds it.
    async fn acquire(&self, p: u32) -> Result<u64, Error> {
        let inner = &self.inner;
        inner
            .scripts
            .lease
            .key(format!("{}:lease", self.tag(p)))
            .arg(self.tag(p))
            .arg("acquire")
            .arg(&inner.worker_id)
            .arg(inner.cfg.lease.as_millis() as u64)
            .arg(0)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("acquiring a lease", e))
    }

    /// Forget a partition (lost, handed back, or to be taken again under a new epoch). Its
    /// locked items' commits are refused.
    pub(super) fn drop_partition(&self, p: u32, epoch: u64) {
        lock(&self.inner.owner).forget(p, Some(epoch));
    }

    /// Redis went back in time (`noticed_by` saw it refuse the partition's mark or cursor): it
    /// lost writes it had acknowledged — it restarted from an older snapshot or from an AOF
    /// written with `appendfsync everysec`, or failed over to a replica that was behind. What
    /// this handle holds in memory of partition `p` is ahead of Redis: forget it and take the
    /// partition again at once, under a new epoch (which fences every commit of the old one),
    /// reading its control stream from the start. Steps whose commits were lost run again.
    pub(super) fn went_back(&self, p: u32, epoch: u64, noticed_by: &str) {
        let mut o = lock(&self.inner.owner);
        if o.forget(p, Some(epoch)) {
            o.next_heartbeat = None;
            drop(o);
            tracing::warn!(
                partition = p,
                noticed_by,
                "Redis lost writes it had acknowledged (it went back in time: restarted from an older snapshot or \
                 from an AOF written with `appendfsync everysec`, or failed over to a replica that was behind); \
                 the partition is read again from the start under a new epoch, and lost steps run again. To lose \
                 nothing acknowledged, run Redis with `appendonly yes` and `appendfsync always`"
            );
            self.inner.relet.notify_one();
            self.inner.wake.notify_one();
        }
    }

    /// Compare Redis's `run_id` (`INFO server`) with the one seen before: a new one means Redis
    /// restarted or failed over, and may have gone back in time. Then every owned partition is
    /// read again from the start under a new epoch (the checks of commits and renewals would
    /// find out partition by partition; this finds out at once, also for partitions where
    /// nothing happens), and the activity claims walk the pending entries from the start. A
    /// Redis that does not allow `INFO` is not checked this way. On a cluster each partition's
    /// master is checked on its own (`check_cluster_run_ids`).
    pub(super) async fn check_run_id(&self) {
        if self.check_cluster_run_ids().await {
            return;
        }
        let info: Result<String, redis::RedisError> =
            redis::cmd("INFO").arg("server").query_async(&mut self.conn()).await;
        let Some(run_id) = info.ok().as_deref().and_then(run_id_of).map(str::to_string) else { return };
        let before = lock(&self.inner.run_id).replace(run_id.clone());
        if before.is_none_or(|b| b == run_id) {
            return;
        }
        let parts: Vec<u32> = {
            let mut o = lock(&self.inner.owner);
            o.next_heartbeat = None;
            o.forget_all().into_iter().map(|(p, _)| p).collect()
        };
        lock(&self.inner.activity).claim_cursor.clear();
        tracing::warn!(
            run_id,
            partitions = ?parts,
            "Redis restarted or failed over (its run_id changed), and may have lost writes it had acknowledged; \
             the owned partitions are read again from the start under new epochs"
        );
        self.inner.relet.notify_one();
        self.inner.wake.notify_one();
    }

    /// Hand every partition back and leave the live-worker set.
    pub(super) async fn stop_orchestrating(&self) {
        let _one_at_a_time = self.inner.rebalancing.lock().await;
        let parts: Vec<(u32, u64)> = {
            let mut o = lock(&self.inner.owner);
            if o.parts.values().any(|p| p.locked() > 0) {
                return;
            }
            o.active = false;
            o.forget_all()
        };
        self.send_orphans().await;
        let mut c = self.conn();
        for (p, epoch) in parts {
            crate::metrics::lease_changed(crate::metrics::LeaseChange::Released, p, epoch);
            let _: Result<i64, _> = self
                .inner
                .scripts
                .lease
                .key(format!("{}:lease", self.tag(p)))
                .arg(self.tag(p))
                .arg("release")
                .arg(&self.inner.worker_id)
                .arg(1000)
                .arg(epoch)
                .invoke_async(&mut c)
                .await;
        }
        let wkey = format!("{{{}}}:workers", self.inner.cfg.prefix);
        let _: Result<i64, _> = redis::cmd("ZREM").arg(wkey).arg(&self.inner.worker_id).query_async(&mut c).await;
    }
}

/// The `run_id` in the reply of `INFO server`.
pub(super) fn run_id_of(info: &str) -> Option<&str> {
    info.lines().find_map(|l| l.strip_prefix("run_id:")).map(str::trim).filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_partition_gives_back_the_room_of_a_burst() {
        let mut part = Part::new(1);
        let id = |i: u32| format!("instance-{i}");
        for i in 0..100_000 {
            part.insts.insert(id(i), Inst::default());
            part.ready.push_back(id(i));
        }
        let burst = part.insts.capacity();
        // Most instances parked (their inboxes consumed), one in 50 still queued.
        let keep = |every: u32| move |k: &String| k[9..].parse::<u32>().unwrap() % every == 0;
        part.insts.retain(|k, _| keep(50)(k));
        part.ready.retain(keep(50));
        part.trim();
        assert_eq!(part.insts.len(), 2_000);
        let cap = part.insts.capacity();
        assert!(cap < 8 * 2_000 && cap < burst / 8, "insts kept room for {cap} of {burst}");
        assert!(part.ready.capacity() < 8 * 2_000, "ready kept room for {}", part.ready.capacity());
        // Not shrunk again (no rehash) until it has lost at least half of what it holds.
        part.insts.retain(|k, _| keep(100)(k));
        part.trim();
        assert_eq!(part.insts.capacity(), cap);
        part.insts.clear();
        part.ready.clear();
        part.trim();
        assert_eq!((part.insts.capacity(), part.ready.capacity()), (0, 0));
    }

    #[test]
    fn the_run_id_is_read_from_info_server() {
        let info = "# Server\r\nredis_version:7.0.15\r\nrun_id:0123abcd\r\ntcp_port:6379\r\n";
        assert_eq!(run_id_of(info), Some("0123abcd"));
        assert_eq!(run_id_of("# Server\r\nredis_version:7.0.15\r\n"), None);
    }
}
