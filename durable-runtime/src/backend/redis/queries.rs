//! Queries: an instance's status, snapshot and history, listing instances, and queue depths.

use super::{Redis, backend_err, from_json};
use crate::error::Error;
use crate::history::HistoryEvent;
use crate::instance::{InstancePage, InstanceQuery, InstanceStatus};
use crate::metrics::QueueDepths;
use crate::time::Millis;

impl Redis {
    /// An instance's status, if it exists.
    pub(super) async fn load_status(&self, instance_id: &str) -> Result<Option<InstanceStatus>, Error> {
        let p = self.part_of(instance_id);
        let st: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(format!("{}:i:{instance_id}", self.tag(p)))
            .arg("st")
            .query_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("HGET", e))?;
        st.map(|b| from_json(&b, "an instance status")).transpose()
    }

    /// An instance's snapshot, if it has one.
    pub(super) async fn load_snapshot(&self, instance_id: &str) -> Result<Option<Vec<u8>>, Error> {
        let p = self.part_of(instance_id);
        let bytes: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(format!("{}:i:{instance_id}", self.tag(p)))
            .arg("snap")
            .query_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("HGET", e))?;
        Ok(bytes)
    }

    /// An instance's history, if the instance exists.
    pub(super) async fn load_history(&self, instance_id: &str) -> Result<Option<Vec<HistoryEvent>>, Error> {
        let t = self.tag(self.part_of(instance_id));
        let (exists, events): (bool, Vec<Vec<u8>>) = redis::pipe()
            .cmd("EXISTS")
            .arg(format!("{t}:i:{instance_id}"))
            .cmd("LRANGE")
            .arg(format!("{t}:h:{instance_id}"))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("LRANGE", e))?;
        if !exists {
            return Ok(None);
        }
        events.iter().map(|e| from_json(e, "a history event")).collect::<Result<Vec<_>, _>>().map(Some)
    }

    /// One page of instances matching `query`, by creation time, from all partitions.
    pub(super) async fn list_page(&self, query: InstanceQuery) -> Result<InstancePage, Error> {
        let after = match &query.continuation {
            None => None,
            Some(c) => Some(
                c.split_once(':').and_then(|(ms, id)| Some((ms.parse::<Millis>().ok()?, id.to_string()))).ok_or_else(
                    || Error::Backend(format!("invalid continuation {c:?}: pass the one a page returned")),
                )?,
            ),
        };
        let mut c = self.conn();
        let mut pipe = redis::pipe();
        for p in 0..self.inner.cfg.partitions {
            let min = after.as_ref().map(|(ms, _)| ms.to_string()).unwrap_or_else(|| "-inf".into());
            pipe.cmd("ZRANGEBYSCORE").arg(format!("{}:idx", self.tag(p))).arg(min).arg("+inf").arg("WITHSCORES");
        }
        let per_part: Vec<Vec<(String, f64)>> =
            pipe.query_async(&mut c).await.map_err(|e| backend_err("ZRANGEBYSCORE", e))?;
        let mut all: Vec<(Millis, String)> = per_part
            .into_iter()
            .flatten()
            .map(|(id, ms)| (ms as Millis, id))
            .filter(|k| after.as_ref().is_none_or(|a| k > a))
            .collect();
        all.sort();
        let limit = query.limit.unwrap_or(100).max(1);
        let mut instances = Vec::new();
        let mut more = false;
        for chunk in all.chunks(256) {
            let mut pipe = redis::pipe();
            for (_, id) in chunk {
                pipe.cmd("HGET").arg(format!("{}:i:{id}", self.tag(self.part_of(id)))).arg("st");
            }
            let sts: Vec<Option<Vec<u8>>> = pipe.query_async(&mut c).await.map_err(|e| backend_err("HGET", e))?;
            for st in sts.into_iter().flatten() {
                let s: InstanceStatus = from_json(&st, "an instance status")?;
                if query.matches(&s) {
                    if instances.len() == limit {
                        more = true;
                        break;
                    }
                    instances.push(s);
                }
            }
            if more {
                break;
            }
        }
        let continuation =
            if more { instances.last().map(|s| format!("{}:{}", s.created_ms, s.instance_id)) } else { None };
        Ok(InstancePage { instances, continuation })
    }

    /// Activity items, armed timers and inbox entries, summed over the partitions.
    pub(super) async fn depths(&self) -> Result<Option<QueueDepths>, Error> {
        let mut pipe = redis::pipe();
        for p in 0..self.inner.cfg.partitions {
            let t = self.tag(p);
            pipe.cmd("XLEN").arg(format!("{t}:act"));
            pipe.cmd("ZCARD").arg(format!("{t}:tm"));
            pipe.cmd("XLEN").arg(format!("{t}:ctl"));
        }
        let v: Vec<u64> = pipe.query_async(&mut self.conn()).await.map_err(|e| backend_err("queue depths", e))?;
        let mut d = QueueDepths::default();
        for c in v.chunks(3) {
            d.activities += c[0];
            d.timers += c[1];
            d.messages += c[2];
        }
        Ok(Some(d))
    }
}
