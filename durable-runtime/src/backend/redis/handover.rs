//! Activity results handed over in memory. When the worker that ran an activity owns the
//! partition of the instance waiting for it, the result goes straight into that instance's
//! inbox instead of through `complete.lua` and the control stream: the step that consumes it
//! acknowledges the activity's entry in the same commit (`commit.lua`), which checks first that
//! the entry is still pending — a result another worker delivered for it first wins, and the
//! step is refused and runs again without this one. Until then the entry stays pending under
//! this worker, which keeps claiming it as it does for a running activity; a result whose
//! partition this worker stops holding (lease lost, handed back, shutdown) is sent the usual
//! way, through `complete.lua`. One round trip and one script call per activity fewer.

use super::activities::Acts;
use super::lease::Owner;
use super::{Redis, keys, lock, to_json};
use crate::backend::{InstanceMessage, PendingMessage};
use keys::stream_id;

/// The bit that marks a message id as an activity result handed over in memory: the rest is
/// the number of the activity's entry in its partition's activity stream. Entry numbers of a
/// partition's streams come from one counter (microseconds, under 2^53), so they never meet
/// control entries' numbers, and the bit is never set in those.
pub(super) const HANDED: u64 = 1 << 63;

/// A handed-over result whose partition this worker stopped holding: to send through
/// `complete.lua` (partition, entry number, instance, result).
pub(super) type Orphan = (u32, u64, String, InstanceMessage);

impl Owner {
    /// Put activity entry `n`'s result into the inbox of `instance` (partition `p`) if this
    /// worker steps the partition and is not handing it back; else give the message back.
    pub(super) fn hand_over(
        &mut self,
        p: u32,
        n: u64,
        instance: &str,
        message: InstanceMessage,
    ) -> Option<InstanceMessage> {
        if !self.active {
            return Some(message);
        }
        let Some(part) = self.parts.get_mut(&p).filter(|part| !part.draining) else { return Some(message) };
        let st = part.insts.entry(instance.to_string()).or_default();
        st.inbox.push(PendingMessage { id: HANDED | n, message });
        if !st.has_new {
            st.has_new = true;
            if st.locked.is_none() {
                part.ready.push_back(instance.to_string());
            }
        }
        None
    }
}

/// The handed-over results among `inbox`, taken out of it.
pub(super) fn orphans_of(p: u32, instance: &str, inbox: Vec<PendingMessage>, out: &mut Vec<Orphan>) {
    for m in inbox {
        if m.id & HANDED != 0 {
            out.push((p, m.id & !HANDED, instance.to_string(), m.message));
        }
    }
}

impl Acts {
    /// Forget that this worker holds the results of these entries of partition `p` in memory.
    pub(super) fn settled(&mut self, p: u32, entries: impl IntoIterator<Item = u64>) {
        for n in entries {
            self.handed.remove(&keys::work_id(n, p));
        }
    }
}

impl Redis {
    /// Complete activity entry `n` of partition `p` by handing its result to the instance's
    /// inbox in this process, if this worker owns the partition; else give the message back
    /// (`None`: handed over).
    pub(super) fn try_hand_over(
        &self,
        p: u32,
        n: u64,
        instance: &str,
        message: InstanceMessage,
    ) -> Option<InstanceMessage> {
        // Noted as held first, so that a commit of it (which forgets it) cannot come before.
        let work_id = keys::work_id(n, p);
        if !lock(&self.inner.acts).handed.insert(work_id) {
            // A result of this entry already waits here (the entry was claimed and run again
            // here in between): only the first counts.
            return None;
        }
        let back = lock(&self.inner.owner).hand_over(p, n, instance, message);
        match &back {
            None => self.inner.ready.notify_waiters(),
            Some(_) => {
                lock(&self.inner.acts).handed.remove(&work_id);
            }
        }
        back
    }

    /// Send the results of partitions this worker stopped holding through `complete.lua`, so
    /// that their next owner gets them. One that cannot be sent stays pending in Redis and is
    /// claimed again after the visibility timeout, and its activity runs again.
    pub(super) async fn send_orphans(&self) {
        let orphans = std::mem::take(&mut lock(&self.inner.owner).orphans);
        if orphans.is_empty() {
            return;
        }
        let sends = orphans.into_iter().map(|(p, n, instance, message)| async move {
            let sent = match to_json(&message) {
                Ok(m) => self.complete_batched(p, [stream_id(n).into_bytes(), instance.into_bytes(), m.into_bytes()]).await,
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                tracing::warn!(partition = p, entry = %stream_id(n), error = %e, "an activity result held for a partition this worker no longer holds could not be sent; the activity runs again after the visibility timeout");
            }
            lock(&self.inner.acts).settled(p, [n]);
        });
        futures_util::future::join_all(sends).await;
    }
}
