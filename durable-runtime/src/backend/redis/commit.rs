//! Committing steps: the arguments of the commit script, pipelined commits, and applying their
//! outcome (or an unknown one) to the in-memory state.

use super::handover::HANDED;
use super::inbox::LockInfo;
use super::{Redis, backend_err, keys, lock, record, reply_int, reply_str, to_json};
use crate::backend::{Action, Backend, SnapshotChange, StepCommit, TableChange};
use crate::error::Error;
use crate::time::Millis;
use keys::stream_id;
use redis::{RedisResult, Value};
use std::collections::HashSet;

/// What a commit queued besides its own instance, for the in-memory state to follow.
#[derive(Default)]
struct CommitEffects {
    /// The new status as the commit writes it, if it changes.
    status: Option<Vec<u8>>,
    /// Activity entries whose results were handed over in memory and this commit consumes.
    handed: Vec<u64>,
    activities: bool,
    remote: bool,
    timers: Vec<(u32, Millis)>,
}

impl Redis {
    /// One step's arguments of the commit script (see `commit.lua`), and what the step queues.
    fn commit_args(&self, commit: &StepCommit, info: &LockInfo) -> Result<(Vec<Vec<u8>>, CommitEffects), Error> {
        let mut a: Vec<Vec<u8>> = Vec::with_capacity(24);
        a.push(info.generation.clone().into_bytes());
        a.push(commit.instance_id.clone().into_bytes());
        let mut fx = CommitEffects::default();
        let (handed, consumed): (Vec<u64>, Vec<u64>) =
            commit.consumed.iter().chain(info.stale.iter()).copied().partition(|id| id & HANDED != 0);
        a.push(consumed.len().to_string().into_bytes());
        a.extend(consumed.iter().map(|n| stream_id(*n).into_bytes()));
        fx.handed = handed.iter().map(|id| id & !HANDED).collect();
        a.push(fx.handed.len().to_string().into_bytes());
        a.extend(fx.handed.iter().map(|n| stream_id(*n).into_bytes()));
        a.push(if commit.reset_history { b"1".to_vec() } else { b"0".to_vec() });
        a.push(commit.new_events.len().to_string().into_bytes());
        let mut events = Vec::new();
        for e in &commit.new_events {
            events.extend(record::encode_event(e)?);
        }
        a.push(events);
        match &commit.snapshot {
            SnapshotChange::Keep => a.extend([b"k".to_vec(), Vec::new()]),
            SnapshotChange::Set(s) => a.extend([b"s".to_vec(), s.clone()]),
            SnapshotChange::Delete => a.extend([b"d".to_vec(), Vec::new()]),
            SnapshotChange::Split { rest, table } => {
                a.extend([b"p".to_vec(), rest.clone()]);
                let (mode, set, remove): (&[u8], _, &[u64]) = match table {
                    TableChange::Replace(entries) => (b"r", entries, &[]),
                    TableChange::Patch { set, remove } => (b"u", set, remove),
                };
                a.push(mode.to_vec());
                a.push(set.len().to_string().into_bytes());
                for (id, entry) in set {
                    a.push(id.to_string().into_bytes());
                    a.push(entry.clone());
                }
                a.push(remove.len().to_string().into_bytes());
                a.extend(remove.iter().map(|id| id.to_string().into_bytes()));
            }
        }
        match &commit.status {
            Some(s) => {
                let status = record::encode_status(s)?;
                a.push(status.clone());
                fx.status = Some(status);
                a.push(s.runtime_status.to_string().into_bytes());
                a.push(s.updated_ms.to_string().into_bytes());
            }
            None => a.extend([Vec::new(), Vec::new(), Vec::new()]),
        }
        a.push(commit.actions.len().to_string().into_bytes());
        let now = Backend::now(self);
        for action in &commit.actions {
            let (kind, target, args): (&str, u32, Vec<Vec<u8>>) = match action {
                Action::ScheduleActivity(r) => {
                    fx.activities = true;
                    (
                        "act",
                        self.part_of(&r.instance_id),
                        vec![r.instance_id.clone().into_bytes(), to_json(r)?.into_bytes()],
                    )
                }
                Action::SetTimer(t) => {
                    let p = self.part_of(&t.instance_id);
                    fx.timers.push((p, t.fire_at));
                    (
                        "tmr",
                        p,
                        vec![
                            t.instance_id.clone().into_bytes(),
                            t.key.clone().into_bytes(),
                            t.fire_at.to_string().into_bytes(),
                            to_json(&t.message)?.into_bytes(),
                        ],
                    )
                }
                Action::CancelTimer { instance_id, key } => {
                    ("cnl", self.part_of(instance_id), vec![instance_id.clone().into_bytes(), key.clone().into_bytes()])
                }
                Action::SendMessage { instance_id, message } => (
                    "snd",
                    self.part_of(instance_id),
                    vec![instance_id.clone().into_bytes(), to_json(message)?.into_bytes()],
                ),
                Action::CreateInstance(new) => {
                    let status = new.initial_status(now);
                    let (pp, pi, fail) = match new.already_exists_reply() {
                        Some((parent, msg)) => (self.part_of(&parent), parent, to_json(&msg)?),
                        None => (0, String::new(), String::new()),
                    };
                    (
                        "new",
                        self.part_of(&new.instance_id),
                        vec![
                            new.instance_id.clone().into_bytes(),
                            record::encode_status(&status)?,
                            now.to_string().into_bytes(),
                            to_json(&new.start_message())?.into_bytes(),
                            pp.to_string().into_bytes(),
                            pi.into_bytes(),
                            fail.into_bytes(),
                        ],
                    )
                }
            };
            if target != info.part {
                fx.remote = true;
            }
            a.push(kind.as_bytes().to_vec());
            a.push(target.to_string().into_bytes());
            a.push(args.len().to_string().into_bytes());
            a.extend(args);
        }
        Ok((a, fx))
    }

    /// Apply a step's outcome to the in-memory state: `outcome` and what follows it in the reply
    /// (`rest`), and the partition's new mark (see `commit.lua`).
    fn after_commit(
        &self,
        commit: &StepCommit,
        outcome: &str,
        rest: &[Value],
        mark: u64,
        fx: &CommitEffects,
    ) -> Result<(), Error> {
        let mut guard = lock(&self.inner.owner);
        let o = &mut *guard;
        let Some(info) = o.locks.remove(&commit.lock) else {
            return Err(Error::LockLost(commit.instance_id.clone()));
        };
        match outcome {
            "OK" => {
                if commit.status.as_ref().is_some_and(|s| s.is_finished()) {
                    self.finished_here(&commit.instance_id);
                }
                if let Some(part) = o.parts.get_mut(&info.part)
                    && part.epoch == info.epoch
                {
                    part.mark = part.mark.max(mark);
                    let done: HashSet<u64> = commit.consumed.iter().chain(info.stale.iter()).copied().collect();
                    let mut remove = false;
                    if let Some(st) = part.insts.get_mut(&commit.instance_id) {
                        st.inbox.retain(|m| !done.contains(&m.id));
                        st.locked = None;
                        // More messages came, or the step had only the first ones and took
                        // some (a step that took none of them would take none again).
                        let progressed = !commit.consumed.is_empty();
                        if progressed {
                            st.stalled = 0;
                        }
                        if st.has_new || (info.truncated && progressed) {
                            st.has_new = true;
                            part.ready.push_back(commit.instance_id.clone());
                        } else if st.inbox.is_empty() {
                            remove = true;
                        }
                        if !progressed {
                            // It took none of what it was given (all of it, or the first
                            // messages and the `terminate`/`resume` behind them): it takes
                            // none of the rest either until a step of it makes progress.
                            st.stalled = st.inbox.len();
                        }
                    }
                    if remove {
                        part.insts.remove(&commit.instance_id);
                    }
                    // What is kept of its record follows the commit (see `commit.lua`).
                    let (mut freed, mut grown) = (0, 0);
                    if let Some(k) = part.kept.get_mut(&commit.instance_id) {
                        let id_len = commit.instance_id.len();
                        freed = k.kept_size(id_len);
                        k.follow(commit, fx.status.as_deref());
                        grown = k.kept_size(id_len);
                    }
                    if fx.remote {
                        part.outbox_dirty = true;
                    }
                    if !fx.handed.is_empty() {
                        lock(&self.inner.acts).settled(info.part, fx.handed.iter().copied());
                    }
                    o.kept_bytes = o.kept_bytes + grown - freed;
                    if commit.status.as_ref().is_some_and(|s| s.is_finished()) {
                        // A finished instance steps again only to acknowledge what comes late.
                        o.unkeep(info.part, &commit.instance_id);
                    } else if grown > freed {
                        // A record that grew may take the room of the ones kept longest.
                        o.fit(self.inner.cfg.record_cache);
                    }
                }
                for (p, at) in &fx.timers {
                    if let Some(part) = o.parts.get_mut(p) {
                        part.timer_due = part.timer_due.min(*at);
                    }
                }
                let ready = o.parts.get(&info.part).is_some_and(|p| !p.ready.is_empty());
                drop(guard);
                if !commit.consumed.is_empty() {
                    self.inner.room.notify_one();
                }
                if fx.remote || !fx.timers.is_empty() {
                    self.inner.wake.notify_one();
                }
                if ready {
                    self.inner.ready.notify_waiters();
                }
                Ok(())
            }
            "DUP" => {
                // Results handed over in memory whose activity entries are no longer pending:
                // another worker completed them first, and its results are on their way
                // through the control stream. Drop ours; the step runs again without them.
                let gone: HashSet<u64> = rest
                    .iter()
                    .filter_map(|v| reply_str(v).split('-').next().and_then(|n| n.parse::<u64>().ok()))
                    .collect();
                if let Some(part) = o.parts.get_mut(&info.part)
                    && let Some(st) = part.insts.get_mut(&commit.instance_id)
                {
                    st.inbox.retain(|m| m.id & HANDED == 0 || !gone.contains(&(m.id & !HANDED)));
                    // It runs again at once, with what is left.
                    st.stalled = 0;
                    st.locked = None;
                    st.has_new = true;
                    part.ready.push_back(commit.instance_id.clone());
                }
                drop(guard);
                lock(&self.inner.acts).settled(info.part, gone);
                self.inner.ready.notify_waiters();
                Err(Error::LockLost(commit.instance_id.clone()))
            }
            "GONE" => {
                // Replaced or purged since the fetch (or since the commit that left the record
                // kept): look again with fresh data.
                o.unkeep(info.part, &commit.instance_id);
                if let Some(part) = o.parts.get_mut(&info.part)
                    && let Some(st) = part.insts.get_mut(&commit.instance_id)
                {
                    st.locked = None;
                    st.has_new = true;
                    part.ready.push_back(commit.instance_id.clone());
                }
                drop(guard);
                self.inner.ready.notify_waiters();
                Err(Error::LockLost(commit.instance_id.clone()))
            }
            "BACK" => {
                // Redis lost writes it had acknowledged: read the partition again.
                drop(guard);
                self.went_back(info.part, info.epoch, "a commit");
                Err(Error::LockLost(commit.instance_id.clone()))
            }
            _ => {
                // The lease is gone (taken over, or expired): forget the partition.
                o.forget(info.part, Some(info.epoch));
                drop(guard);
                self.inner.wake.notify_one();
                Err(Error::LockLost(commit.instance_id.clone()))
            }
        }
    }

    /// The outcome of a commit is unknown (the connection failed): take the partition again
    /// under a new epoch, which fences the commit if it is still on its way, and re-read it.
    fn reset_partition(&self, commit: &StepCommit) {
        let mut o = lock(&self.inner.owner);
        o.unkeep(self.part_of(&commit.instance_id), &commit.instance_id);
        if let Some(info) = o.locks.remove(&commit.lock)
            && o.forget(info.part, Some(info.epoch))
        {
            // Take it again now, not at the next renewal.
            o.next_heartbeat = None;
        }
        drop(o);
        self.inner.wake.notify_one();
        self.inner.relet.notify_one();
    }

    /// Commit several steps, one script call per partition they belong to (all the calls in
    /// one pipeline); one result per commit, in order.
    pub(super) async fn commit_pipelined(&self, commits: Vec<StepCommit>) -> Vec<Result<(), Error>> {
        let mut results: Vec<Option<Result<(), Error>>> = Vec::with_capacity(commits.len());
        let mut calls: Vec<PartitionCommit> = Vec::new();
        for (k, c) in commits.iter().enumerate() {
            let info = {
                let o = lock(&self.inner.owner);
                o.locks.get(&c.lock).and_then(|l| {
                    let part = o.parts.get(&l.part).filter(|p| p.epoch == l.epoch)?;
                    let info = LockInfo {
                        part: l.part,
                        epoch: l.epoch,
                        instance: l.instance.clone(),
                        generation: l.generation.clone(),
                        stale: l.stale.clone(),
                        truncated: l.truncated,
                    };
                    Some((info, (part.mark, part.last)))
                })
            };
            match info {
                Some((info, seen)) if info.instance == c.instance_id => match self.commit_args(c, &info) {
                    Ok((args, fx)) => {
                        results.push(None);
                        let bytes: usize = args.iter().map(Vec::len).sum();
                        // The partition's last call, if this step fits in it.
                        let fits =
                            calls.iter().rposition(|g| (g.part, g.epoch) == (info.part, info.epoch)).filter(|&g| {
                                calls[g].args.len() + args.len() <= CALL_ARGS && calls[g].bytes + bytes <= CALL_BYTES
                            });
                        let call = match fits {
                            Some(g) => &mut calls[g],
                            None => {
                                calls.push(PartitionCommit {
                                    part: info.part,
                                    epoch: info.epoch,
                                    seen,
                                    steps: Vec::new(),
                                    args: Vec::new(),
                                    bytes: 0,
                                });
                                calls.last_mut().expect("just pushed")
                            }
                        };
                        // The strongest check of what Redis must still have.
                        call.seen = (call.seen.0.max(seen.0), call.seen.1.max(seen.1));
                        call.steps.push((k, fx));
                        call.args.extend(args);
                        call.bytes += bytes;
                    }
                    Err(e) => {
                        self.abandon_local(&c.instance_id, c.lock);
                        results.push(Some(Err(e)));
                    }
                },
                _ => results.push(Some(Err(Error::LockLost(c.instance_id.clone())))),
            }
        }
        let prepared: Vec<_> = calls.iter_mut().map(|g| self.commit_call(g)).collect();
        // Each call is sent once by the script's SHA1 (or as a function). Redis answers
        // `NOSCRIPT` to those it reached after its script cache was emptied (a restart, `SCRIPT
        // FLUSH`, even in the middle of this pipeline): they did not run, and only they are
        // sent again, by the script's text. The calls that ran are never sent twice: they would
        // pass the lease and generation checks again and apply twice.
        let script = &self.inner.scripts.commit;
        let mut todo: Vec<usize> = (0..calls.len()).collect();
        let mut by_text = false;
        while !todo.is_empty() {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for &g in &todo {
                pipe.add_command(script.cmd(by_text, &prepared[g].0, &prepared[g].1));
            }
            let replies: Result<Vec<RedisResult<Value>>, redis::RedisError> =
                pipe.query_async(&mut self.commit_conn()).await;
            let replies = match replies {
                Ok(replies) if replies.len() == todo.len() => Ok(replies),
                Ok(replies) => Err(format!("{} replies to {} commit calls", replies.len(), todo.len())),
                Err(e) => Err(e.to_string()),
            };
            let replies = match replies {
                Ok(replies) => replies,
                Err(e) => {
                    for &g in &todo {
                        self.outcome_unknown(&commits, &calls[g].steps, &mut results, &e);
                    }
                    break;
                }
            };
            let mut again = Vec::new();
            for (&g, reply) in todo.iter().zip(replies) {
                let steps = &calls[g].steps;
                match reply {
                    Ok(Value::Array(a)) if reply_str(a.first().unwrap_or(&Value::Nil)) == "OK" => {
                        let mark = a.get(1).map_or(0, |m| reply_int(m).max(0) as u64);
                        for (j, (k, fx)) in steps.iter().enumerate() {
                            let c = &commits[*k];
                            results[*k] = Some(match a.get(2 + j) {
                                Some(Value::Array(o)) if !o.is_empty() => {
                                    self.after_commit(c, &reply_str(&o[0]), &o[1..], mark, fx)
                                }
                                Some(o) => self.after_commit(c, &reply_str(o), &[], mark, fx),
                                None => {
                                    self.reset_partition(c);
                                    Err(Error::Backend(
                                        "redis: a commit call answered fewer steps than it was given".into(),
                                    ))
                                }
                            });
                        }
                    }
                    // Refused as a whole (`LOCK`, `BACK`): nothing was written.
                    Ok(v) => {
                        let outcome = reply_str(&v);
                        for (k, fx) in steps {
                            results[*k] = Some(self.after_commit(&commits[*k], &outcome, &[], 0, fx));
                        }
                    }
                    Err(e) if !by_text && script.missed(&e) => again.push(g),
                    // The script failed while it ran: its outcome is unknown.
                    Err(e) => self.outcome_unknown(&commits, steps, &mut results, &e),
                }
            }
            todo = again;
            by_text = true;
        }
        results.into_iter().map(|r| r.unwrap_or_else(|| Err(Error::Backend("redis: no reply".into())))).collect()
    }

    /// A commit call whose outcome is unknown (the connection failed, or the script failed while
    /// it ran): each of its steps' partitions is taken again and re-read, and the steps fail.
    fn outcome_unknown(
        &self,
        commits: &[StepCommit],
        steps: &[(usize, CommitEffects)],
        results: &mut [Option<Result<(), Error>>],
        e: &dyn std::fmt::Display,
    ) {
        for (k, _) in steps {
            self.reset_partition(&commits[*k]);
            results[*k] = Some(Err(backend_err("committing a step (it will run again)", e)));
        }
    }

    /// The keys and arguments of one partition's commit call: its header, then its steps.
    fn commit_call(&self, g: &mut PartitionCommit) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let t = self.tag(g.part);
        let keys = vec![format!("{t}:lease").into_bytes()];
        let mut a: Vec<Vec<u8>> = Vec::with_capacity(7 + g.args.len());
        a.push(t.into_bytes());
        a.push(g.part.to_string().into_bytes());
        a.push(self.inner.worker_id.clone().into_bytes());
        a.push(g.epoch.to_string().into_bytes());
        a.push(g.seen.0.to_string().into_bytes());
        a.push(g.seen.1.to_string().into_bytes());
        a.push(g.steps.len().to_string().into_bytes());
        a.append(&mut g.args);
        (keys, a)
    }
}

/// A commit call takes more steps of its partition while it has under this many arguments and
/// bytes of them (a step larger than that goes alone): one call runs while Redis runs nothing
/// else, and a batch of large steps is better several calls, one after the other.
const CALL_ARGS: usize = 20_000;
const CALL_BYTES: usize = 4 << 20;

/// The steps of one partition (and lease epoch) committed by one call of the commit script.
struct PartitionCommit {
    part: u32,
    epoch: u64,
    /// The partition's mark and cursor: what the call checks Redis still has.
    seen: (u64, u64),
    /// Each step's index among the commits, and what it queues.
    steps: Vec<(usize, CommitEffects)>,
    /// The steps' arguments, one after the other, and their bytes.
    args: Vec<Vec<u8>>,
    bytes: usize,
}
