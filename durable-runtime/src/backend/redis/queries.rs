//! Queries: an instance's status, snapshot and history, listing instances, and queue depths.

use super::{Redis, backend_err, from_json, keys};
use crate::engine::store::DeadLetter;
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

    /// The newest `limit` dead letters of all partitions, newest first.
    pub(super) async fn load_dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for p in 0..self.inner.cfg.partitions {
            pipe.cmd("XREVRANGE").arg(format!("{}:dead", self.tag(p))).arg("+").arg("-").arg("COUNT").arg(limit);
        }
        let per_part: Vec<redis::Value> =
            pipe.query_async(&mut self.conn()).await.map_err(|e| backend_err("XREVRANGE", e))?;
        let mut all = Vec::new();
        for v in &per_part {
            for (id, fields) in keys::parse_entries_raw(v) {
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                let mut d = DeadLetter {
                    id: text(&id),
                    stream: String::new(),
                    entry_id: String::new(),
                    partition: 0,
                    reason: String::new(),
                    time_ms: 0,
                    fields: Default::default(),
                };
                for (k, v) in fields {
                    match k.as_slice() {
                        b"stream" => d.stream = text(&v),
                        b"id" => d.entry_id = text(&v),
                        b"partition" => d.partition = text(&v).parse().unwrap_or(0),
                        b"reason" => d.reason = text(&v),
                        b"time" => d.time_ms = text(&v).parse().unwrap_or(0),
                        k => {
                            if let Some(name) = k.strip_prefix(b"f:") {
                                d.fields.insert(text(name), text(&v));
                            }
                        }
                    }
                }
                all.push(d);
            }
        }
        all.sort_by(|a, b| (b.time_ms, &b.id).cmp(&(a.time_ms, &a.id)));
        all.truncate(limit);
        Ok(all)
    }
}
