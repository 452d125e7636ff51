//! Activity completions, batched: a completion joins a queue, and one task at a time sends
//! what is queued — one call of `complete.lua` per partition, all in one pipeline — while the
//! completions that arrive meanwhile queue up for the next round. Nothing waits for a batch to
//! fill: a lone completion goes at once; under load, many share a round trip and a script call.
//!
//! Clients' messages (`send.lua`) are coalesced differently (`sends.rs`): a round does not
//! wait for the one before it.

use super::{Redis, ScriptCall, backend_err, invoke_batch, lock};
use crate::error::Error;
use std::collections::BTreeMap;
use tokio::sync::oneshot;

/// The most completions one round sends.
const MAX_BATCH: usize = 512;

/// A completion waiting to be sent: its partition, its arguments to `complete.lua` (stream id,
/// instance, result message), and who waits for it to be sent.
pub(super) struct Queued {
    part: u32,
    args: [Vec<u8>; 3],
    done: oneshot::Sender<Result<(), Error>>,
}

/// The queue, and whether a task is sending it.
#[derive(Default)]
pub(super) struct Completions {
    queue: Vec<Queued>,
    sending: bool,
}

impl Redis {
    /// Complete activity item `args[0]` (a stream id) of partition `part`: deliver the result
    /// message `args[2]` to instance `args[1]` if the item is still pending (only the first
    /// completion counts).
    pub(super) async fn complete_batched(&self, part: u32, args: [Vec<u8>; 3]) -> Result<(), Error> {
        let (done, wait) = oneshot::channel();
        let start = {
            let mut c = lock(&self.inner.completions);
            c.queue.push(Queued { part, args, done });
            !std::mem::replace(&mut c.sending, true)
        };
        if start {
            // Spawned: a caller that stops waiting does not stop the round for the others. If
            // the task is dropped before the queue is empty (its runtime shuts down, even
            // before it first runs), the queue is freed for the next completion, and the
            // completions queued are answered, unsent.
            tokio::spawn(Self::send_completions(Stopped(Some(self.clone()))));
        }
        wait.await.unwrap_or_else(|_| Err(Error::Backend("redis: completing an activity: the sender stopped".into())))
    }

    /// Send what is queued, round after round, until the queue is empty.
    async fn send_completions(mut stopped: Stopped) {
        let Some(this) = stopped.0.clone() else { return };
        loop {
            let batch: Vec<Queued> = {
                let mut c = lock(&this.inner.completions);
                if c.queue.is_empty() {
                    c.sending = false;
                    stopped.0 = None;
                    return;
                }
                let n = c.queue.len().min(MAX_BATCH);
                c.queue.drain(..n).collect()
            };
            let mut by_part: BTreeMap<u32, Vec<Queued>> = BTreeMap::new();
            for q in batch {
                by_part.entry(q.part).or_default().push(q);
            }
            let calls: Vec<ScriptCall> = by_part
                .iter()
                .map(|(p, qs)| {
                    let t = this.tag(*p);
                    let mut args = Vec::with_capacity(1 + 3 * qs.len());
                    args.push(t.clone().into_bytes());
                    for q in qs {
                        args.extend(q.args.iter().cloned());
                    }
                    (vec![format!("{t}:lease").into_bytes()], args)
                })
                .collect();
            let replies = invoke_batch(&this, &this.inner.scripts.complete, &calls).await;
            for (k, qs) in by_part.into_values().enumerate() {
                let failed = match &replies {
                    Ok(r) => r[k].as_ref().err().map(|e| e.to_string()),
                    Err(e) => Some(e.to_string()),
                };
                for q in qs {
                    let outcome = match &failed {
                        None => Ok(()),
                        Some(e) => Err(backend_err("completing an activity", e)),
                    };
                    let _ = q.done.send(outcome);
                }
            }
        }
    }
}

/// Armed while a task sends the queue: if it is dropped before the queue is empty, the queue
/// is marked free again and what is queued is answered (not sent).
struct Stopped(Option<Redis>);

impl Drop for Stopped {
    fn drop(&mut self) {
        let Some(r) = self.0.take() else { return };
        let queued: Vec<Queued> = {
            let mut c = lock(&r.inner.completions);
            c.sending = false;
            c.queue.drain(..).collect()
        };
        for q in queued {
            let _ = q.done.send(Err(Error::Backend(
                "redis: completing an activity: not sent: the task sending completions stopped (its runtime shut down)"
                    .into(),
            )));
        }
    }
}
