//! Clients' messages (signals, events, terminations…), coalesced: a message joins a queue, and
//! a task sends what is queued — one call of `send.lua` per partition, all at once.
//!
//! A message sent while nothing else is on its way goes at once, by its caller, on its own (a
//! lone sender waits no longer than for its own call). Messages sent while some are on their
//! way are queued, and a spawned task sends what is queued once the callers that are ready to
//! run have run (it yields once first): messages sent at the same moment (the callers a burst
//! of replies woke) share one round trip and one script call. Nothing waits for a batch to
//! fill, nor for an earlier round to finish. (Rounds one after the other were measured to cost
//! more than they saved: each sender waited for a round and the one after it.)
//!
//! Each message is answered on its own (sent, or no such instance).

use super::{Redis, ScriptCall, backend_err, invoke_batch, lock, to_json};
use crate::backend::InstanceMessage;
use crate::error::Error;
use redis::Value;
use std::collections::BTreeMap;
use tokio::sync::oneshot;

/// The most messages one round takes, and about the most bytes: the rest go in the next round.
const MAX_BATCH: usize = 256;
const MAX_BATCH_BYTES: usize = 1 << 20;

/// A message waiting to be sent, and who waits for the answer: whether the instance exists.
struct Queued {
    part: u32,
    instance: String,
    message: String,
    done: oneshot::Sender<Result<bool, Error>>,
}

/// The queue, whether a task is scheduled to take it, and how many messages are being sent on
/// their own (by their callers, the queue being idle).
#[derive(Default)]
pub(super) struct Sends {
    queue: Vec<Queued>,
    scheduled: bool,
    alone: usize,
}

impl Redis {
    /// Put a message into an existing instance's inbox (an entity is created by its first).
    pub(super) async fn send(&self, instance_id: &str, message: InstanceMessage) -> Result<(), Error> {
        let message = to_json(&message)?;
        let (done, wait) = oneshot::channel();
        let queued = Queued { part: self.part_of(instance_id), instance: instance_id.to_string(), message, done };
        if tokio::runtime::Handle::try_current().is_err() {
            // (Checked before the message is queued: a round could not be spawned.)
            return Err(Error::Backend(
                "redis: sending a message: not inside a Tokio runtime (the Redis backend runs on Tokio)".into(),
            ));
        }
        enum Way {
            Alone(Queued),
            Queued { start: bool },
        }
        let way = {
            let mut s = lock(&self.inner.sends);
            if s.queue.is_empty() && !s.scheduled && s.alone == 0 {
                s.alone += 1;
                Way::Alone(queued)
            } else {
                s.queue.push(queued);
                Way::Queued { start: !std::mem::replace(&mut s.scheduled, true) }
            }
        };
        match way {
            // Nothing else on its way: this message goes at once, by its caller (no task to
            // wake, no round trip added). Messages sent meanwhile are queued for a round.
            Way::Alone(q) => {
                let _alone = Alone(self);
                self.send_batch(vec![q]).await;
            }
            Way::Queued { start: true } => self.spawn_round(),
            Way::Queued { start: false } => {}
        }
        match wait.await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(Error::InstanceNotFound(instance_id.to_string())),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Backend("redis: sending a message: the task sending it stopped".into())),
        }
    }

    /// Start a round. Spawned: a caller that stops waiting does not stop the round for the
    /// others. If the round is dropped before it takes the queue (its runtime shuts down, even
    /// before it first runs), the queued messages are answered, unsent, and the next message
    /// starts a round again.
    fn spawn_round(&self) {
        tokio::spawn(Self::send_queued(Unsent(Some(self.clone()))));
    }

    /// Send one round of what is queued.
    async fn send_queued(mut guard: Unsent) {
        // Let the callers that are ready to run queue their messages first.
        tokio::task::yield_now().await;
        let Some(r) = guard.0.take() else { return };
        let this = &r;
        let (batch, more): (Vec<Queued>, bool) = {
            let mut s = lock(&this.inner.sends);
            let mut bytes = 0;
            let mut n = 0;
            while n < s.queue.len() && n < MAX_BATCH && (n == 0 || bytes < MAX_BATCH_BYTES) {
                bytes += s.queue[n].instance.len() + s.queue[n].message.len();
                n += 1;
            }
            let batch = s.queue.drain(..n).collect();
            let more = !s.queue.is_empty();
            s.scheduled = more;
            (batch, more)
        };
        if more {
            // (Not under the lock: a round dropped at once, by a runtime shutting down, takes it.)
            this.spawn_round();
        }
        this.send_batch(batch).await;
    }

    /// Send `batch`, one call per partition, and answer each message. The calls are
    /// independent: on a Redis Cluster one master failing fails only the messages of its
    /// partitions. A call that fails fails the messages it carried, as their own calls would
    /// have (a call that fails half-way through, which only a Redis that cannot write any more
    /// does, keeps the messages queued before: its callers are told it failed).
    async fn send_batch(&self, batch: Vec<Queued>) {
        let mut by_part: BTreeMap<u32, Vec<Queued>> = BTreeMap::new();
        for q in batch {
            by_part.entry(q.part).or_default().push(q);
        }
        let calls = by_part.into_iter().map(|(p, mut qs)| async move {
            let t = self.tag(p);
            let mut args = Vec::with_capacity(1 + 2 * qs.len());
            args.push(t.clone().into_bytes());
            // (Moved, not copied: only `done` is used after.)
            for q in &mut qs {
                args.push(std::mem::take(&mut q.instance).into_bytes());
                args.push(std::mem::take(&mut q.message).into_bytes());
            }
            let call: ScriptCall = (vec![format!("{t}:lease").into_bytes()], args);
            let reply = invoke_batch(self, &self.inner.scripts.send, std::slice::from_ref(&call)).await;
            let answers: Result<Vec<bool>, String> = match reply.map(|mut r| r.pop()) {
                Ok(Some(Ok(Value::Array(a)))) if a.len() == qs.len() => {
                    Ok(a.iter().map(|v| matches!(v, Value::Int(1))).collect())
                }
                Ok(Some(Ok(v))) => Err(format!("unexpected reply {v:?} to {} messages", qs.len())),
                Ok(Some(Err(e))) | Err(e) => Err(e.to_string()),
                Ok(None) => Err("no reply".to_string()),
            };
            for (j, q) in qs.into_iter().enumerate() {
                let answer = match &answers {
                    Ok(a) => Ok(a[j]),
                    Err(e) => Err(backend_err("sending a message", e)),
                };
                let _ = q.done.send(answer);
            }
        });
        futures_util::future::join_all(calls).await;
    }
}

/// A message being sent by its caller: counted in `Sends::alone` until the call ends (or the
/// caller stops waiting).
struct Alone<'a>(&'a Redis);

impl Drop for Alone<'_> {
    fn drop(&mut self) {
        lock(&self.0.inner.sends).alone -= 1;
    }
}

/// Armed while a round has not taken the queue yet: if the round is dropped then, the queued
/// messages are answered (not sent) and the queue is free for the next round.
struct Unsent(Option<Redis>);

impl Drop for Unsent {
    fn drop(&mut self) {
        let Some(r) = self.0.take() else { return };
        let queued: Vec<Queued> = {
            let mut s = lock(&r.inner.sends);
            s.scheduled = false;
            s.queue.drain(..).collect()
        };
        for q in queued {
            let _ = q.done.send(Err(Error::Backend(
                "redis: sending a message: not sent: the task that was to send it stopped (its runtime shut down)"
                    .into(),
            )));
        }
    }
}
