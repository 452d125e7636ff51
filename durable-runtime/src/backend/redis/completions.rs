//! Activity completions, batched: each joins a queue, and one task at a time sends what is
//! queued — one script call per kind and partition, all in one pipeline — while what arrives
//! meanwhile queues up for the next round. Nothing waits for a batch to fill: a lone item goes
//! at once; under load, many share a round trip and a script call.
//!
//! Not used for clients' messages (`send.lua`): measured with 16 concurrent senders to one
//! entity, rounds one after the other cost more than they saved (signals/s fell by a quarter,
//! by half with `appendfsync always`, where each round is its own fsync), since each sender
//! waits for a round and the one after it.

use super::{Redis, ScriptCall, backend_err, invoke_batch, lock, reply_int};
use crate::error::Error;
use redis::Value;
use std::collections::BTreeMap;
use tokio::sync::oneshot;

/// The most items one round sends.
const MAX_BATCH: usize = 512;

/// What an item does.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) enum Kind {
    /// Complete an activity item (`complete.lua`): stream id, instance, result message.
    Complete,
}

/// An item waiting to be sent: what, its partition, its script arguments, and who waits for
/// whether it applied (`complete`: the item was still pending).
pub(super) struct Queued {
    kind: Kind,
    part: u32,
    args: Vec<Vec<u8>>,
    done: oneshot::Sender<Result<bool, Error>>,
}

/// The queue, and whether a task is sending it.
#[derive(Default)]
pub(super) struct Completions {
    queue: Vec<Queued>,
    sending: bool,
}

impl Redis {
    /// Queue an item and wait for its outcome: whether it applied.
    pub(super) async fn batched(&self, kind: Kind, part: u32, args: Vec<Vec<u8>>) -> Result<bool, Error> {
        let (done, wait) = oneshot::channel();
        let start = {
            let mut c = lock(&self.inner.completions);
            c.queue.push(Queued { kind, part, args, done });
            !std::mem::replace(&mut c.sending, true)
        };
        if start {
            // Spawned: a caller that stops waiting does not stop the round for the others.
            tokio::spawn(self.clone().send_batches());
        }
        wait.await.unwrap_or_else(|_| Err(Error::Backend("redis: the batch sender stopped".into())))
    }

    /// Send what is queued, round after round, until the queue is empty.
    async fn send_batches(self) {
        loop {
            let batch: Vec<Queued> = {
                let mut c = lock(&self.inner.completions);
                if c.queue.is_empty() {
                    c.sending = false;
                    return;
                }
                let n = c.queue.len().min(MAX_BATCH);
                c.queue.drain(..n).collect()
            };
            let mut groups: BTreeMap<(Kind, u32), Vec<Queued>> = BTreeMap::new();
            for q in batch {
                groups.entry((q.kind, q.part)).or_default().push(q);
            }
            let mut by_kind: BTreeMap<Kind, (Vec<ScriptCall>, Vec<Vec<Queued>>)> = BTreeMap::new();
            for ((kind, p), qs) in groups {
                let t = self.tag(p);
                let mut args = Vec::with_capacity(1 + 3 * qs.len());
                args.push(t.clone().into_bytes());
                for q in &qs {
                    args.extend(q.args.iter().cloned());
                }
                let e = by_kind.entry(kind).or_default();
                e.0.push((vec![format!("{t}:lease").into_bytes()], args));
                e.1.push(qs);
            }
            for (kind, (calls, groups)) in by_kind {
                let (lua, what) = match kind {
                    Kind::Complete => (&self.inner.scripts.complete, "completing an activity"),
                };
                let replies = invoke_batch(&self, lua, &calls).await;
                for (k, qs) in groups.into_iter().enumerate() {
                    let reply: Result<&Value, String> = match &replies {
                        Ok(r) => r[k].as_ref().map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    let applied: Vec<bool> = match reply {
                        Ok(Value::Array(a)) => a.iter().map(|v| reply_int(v) == 1).collect(),
                        _ => Vec::new(),
                    };
                    for (j, q) in qs.into_iter().enumerate() {
                        let outcome = match &reply {
                            Ok(_) => Ok(applied.get(j).copied().unwrap_or(false)),
                            Err(e) => Err(backend_err(what, e)),
                        };
                        let _ = q.done.send(outcome);
                    }
                }
            }
        }
    }
}
