//! Activity concurrency and rate limits, kept in Redis so that they hold across every worker:
//! per activity, a sorted set of slot holders that expire with the activity visibility timeout
//! unless renewed (`slot.lua`), and per activity and key a sliding log of start times
//! (`rate.lua`), each with a line of waiters let in in the order they first asked. Both read
//! Redis's clock (`TIME`). The three keys of one limit share a hash tag, `{P:slot:<name>}` or
//! `{P:rate:<name>}`, so a script touches one Redis Cluster slot.

use super::{Redis, backend_err};
use crate::error::Error;
use std::time::Duration;

/// How long a waiter that stopped asking keeps its place in line.
const WAITER_STALE_MS: u64 = 2_000;

impl Redis {
    fn flow_keys(&self, kind: &str, name: &str) -> [String; 3] {
        let tag = format!("{{{}:{kind}:{name}}}", self.inner.cfg.prefix);
        [format!("{tag}:h"), format!("{tag}:w"), format!("{tag}:s")]
    }

    pub(super) async fn slot_op(&self, op: &str, name: &str, max: u32, holder: &str) -> Result<bool, Error> {
        let [h, w, s] = self.flow_keys("slot", name);
        let lease = self.inner.cfg.visibility.as_millis().max(1) as u64;
        let r: i64 = self
            .inner
            .scripts
            .slot
            .key(h)
            .key_more(w)
            .key_more(s)
            .arg(op)
            .arg(holder)
            .arg(max)
            .arg(lease)
            .arg(WAITER_STALE_MS)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("an activity concurrency slot", e))?;
        Ok(r == 1)
    }

    pub(super) async fn rate_op(
        &self,
        name: &str,
        max: u32,
        period: Duration,
        holder: &str,
    ) -> Result<Option<Duration>, Error> {
        let [h, w, s] = self.flow_keys("rate", name);
        let r: i64 = self
            .inner
            .scripts
            .rate
            .key(h)
            .key_more(w)
            .key_more(s)
            .arg(holder)
            .arg(max)
            .arg(period.as_millis().max(1) as u64)
            .arg(WAITER_STALE_MS)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("an activity rate limit", e))?;
        Ok((r > 0).then(|| Duration::from_millis(r as u64)))
    }
}
