//! Timers and outboxes: the owner of a partition moves due timers into its control stream and
//! drains its outbox into the target partitions, exactly once per operation.

use super::{Redis, ScriptCall, backend_err, invoke_batch, keys, lock, reply_int, reply_str};
use crate::backend::Backend;
use crate::error::Error;
use keys::stream_id;
use redis::Value;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

impl Redis {
    /// Move due timers of owned partitions into their control streams.
    pub(super) async fn pump_timers(&self) -> Result<(), Error> {
        let now = Backend::now(self);
        let due: Vec<(u32, u64, u64, u64)> = {
            let o = lock(&self.inner.owner);
            o.parts.iter().filter(|(_, s)| s.timer_due <= now).map(|(p, s)| (*p, s.epoch, s.mark, s.last)).collect()
        };
        // Due by Redis's clock (what this handle was advanced by added), or by the virtual one.
        let (clock, at) = match self.inner.virtual_start {
            Some(_) => ("v", now),
            None => ("r", self.inner.advanced_ms.load(Ordering::SeqCst)),
        };
        let mut c = self.conn();
        for (p, epoch, mark, last) in due {
            let reply: Value = self
                .inner
                .scripts
                .timers
                .key(format!("{}:lease", self.tag(p)))
                .arg(self.tag(p))
                .arg(&self.inner.worker_id)
                .arg(epoch)
                .arg(clock)
                .arg(at)
                .arg(1000)
                .arg(mark)
                .arg(last)
                .invoke_async(&mut c)
                .await
                .map_err(|e| backend_err("firing timers", e))?;
            match &reply {
                Value::Array(a) if a.len() == 2 => {
                    let moved = reply_int(&a[0]);
                    let next = reply_int(&a[1]);
                    let mut o = lock(&self.inner.owner);
                    if let Some(part) = o.parts.get_mut(&p)
                        && part.epoch == epoch
                    {
                        // More due than one call moves: look again at once.
                        part.timer_due = if moved >= 1000 {
                            0
                        } else if next < 0 {
                            u64::MAX
                        } else {
                            next as u64
                        };
                    }
                }
                other if reply_str(other) == "BACK" => self.went_back(p, epoch, "moving due timers"),
                _ => self.drop_partition(p, epoch),
            }
        }
        Ok(())
    }

    /// Move outbox operations of owned partitions to their target partitions.
    pub(super) async fn drain_outboxes(&self) -> Result<(), Error> {
        let dirty: Vec<u32> = {
            let mut o = lock(&self.inner.owner);
            o.parts
                .iter_mut()
                .filter(|(_, s)| s.outbox_dirty)
                .map(|(p, s)| {
                    s.outbox_dirty = false;
                    *p
                })
                .collect()
        };
        let mut c = self.conn();
        for p in dirty {
            let ob = format!("{}:ob", self.tag(p));
            loop {
                let reply: Value = redis::cmd("XRANGE")
                    .arg(&ob)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(500)
                    .query_async(&mut c)
                    .await
                    .map_err(|e| backend_err("reading the outbox", e))?;
                let entries = keys::parse_entries(reply);
                if entries.is_empty() {
                    break;
                }
                // Every entry of the batch is applied in one round trip. Entries for one target
                // run in order; after a `GAP` the later ones for that target answer `GAP` too
                // (unless another drainer filled the gap meanwhile, which applies them once).
                let mut done = Vec::new();
                let mut calls: Vec<ScriptCall> = Vec::new();
                let mut called: Vec<(u64, u32)> = Vec::new();
                for e in &entries {
                    let target: u32 = e.get_str("t").and_then(|s| s.parse().ok()).unwrap_or(u32::MAX);
                    if target >= self.inner.cfg.partitions {
                        done.push(stream_id(e.n));
                        continue;
                    }
                    let n: usize = e.get_str("n").and_then(|s| s.parse().ok()).unwrap_or(0);
                    let keys = vec![format!("{}:lease", self.tag(target)).into_bytes()];
                    let mut args: Vec<Vec<u8>> = vec![
                        self.tag(target).into_bytes(),
                        target.to_string().into_bytes(),
                        p.to_string().into_bytes(),
                        e.get("q").unwrap_or(b"0").to_vec(),
                        e.get("k").unwrap_or(b"").to_vec(),
                        n.to_string().into_bytes(),
                    ];
                    for i in 1..=n {
                        args.push(e.get(&format!("a{i}")).unwrap_or(b"").to_vec());
                    }
                    calls.push((keys, args));
                    called.push((e.n, target));
                }
                let replies = invoke_batch(self, &self.inner.scripts.apply, &calls)
                    .await
                    .map_err(|e| backend_err("applying outbox entries", e))?;
                let mut blocked: HashSet<u32> = HashSet::new();
                let mut failed = None;
                for (&(n, target), reply) in called.iter().zip(replies) {
                    match reply {
                        Ok(v) if reply_str(&v) == "GAP" => {
                            blocked.insert(target);
                        }
                        Ok(_) => {
                            done.push(stream_id(n));
                            // Applying may have queued work in the target's outbox (a refused
                            // sub-orchestration answers its parent).
                            if let Some(part) = lock(&self.inner.owner).parts.get_mut(&target) {
                                part.outbox_dirty = true;
                            }
                        }
                        Err(e) => {
                            blocked.insert(target);
                            failed.get_or_insert(backend_err("applying an outbox entry", e));
                        }
                    }
                }
                if !done.is_empty() {
                    let _: Value = redis::cmd("XDEL")
                        .arg(&ob)
                        .arg(&done)
                        .query_async(&mut c)
                        .await
                        .map_err(|e| backend_err("XDEL", e))?;
                }
                if !blocked.is_empty() {
                    // An earlier entry is still on its way (another drainer): look again later.
                    if let Some(part) = lock(&self.inner.owner).parts.get_mut(&p) {
                        part.outbox_dirty = true;
                    }
                    if let Some(e) = failed {
                        return Err(e);
                    }
                    break;
                }
            }
        }
        Ok(())
    }
}
