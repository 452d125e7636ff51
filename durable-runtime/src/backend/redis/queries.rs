//! Queries: an instance's status, snapshot and history, listing instances, and queue depths.

use super::maintenance::{name_filter, opt_ms};
use super::{Redis, ScriptCall, backend_err, invoke_batch, keys, record, reply_int, reply_str};
use crate::engine::store::DeadLetter;
use crate::error::Error;
use crate::history::HistoryEvent;
use crate::instance::{InstancePage, InstanceQuery, InstanceStatus};
use crate::metrics::{PartitionDepths, QueueDepths};
use crate::state::Snapshot;
use crate::time::Millis;
use redis::Value;

/// A page looks at up to this many instances per partition (or the page size, if larger)
/// when a filter skips many.
const PAGE_SCAN: usize = 1000;

/// A hash's fields and values as read.
type HashFields = Vec<(String, Vec<u8>)>;

/// A task table's fields as entries by task id.
fn table_entries(instance_id: &str, pairs: HashFields) -> Result<Vec<(u64, Vec<u8>)>, Error> {
    pairs
        .into_iter()
        .map(|(id, entry)| {
            let id = id.parse().map_err(|_| {
                Error::Backend(format!(
                    "redis: the task table of instance {instance_id:?} has a field {id:?} that is not a task id"
                ))
            })?;
            Ok((id, entry))
        })
        .collect()
}

/// The (creation time, id) a continuation stands for.
fn parse_continuation(c: &str) -> Result<(Millis, String), Error> {
    c.split_once(':')
        .and_then(|(ms, id)| Some((ms.parse::<Millis>().ok()?, id.to_string())))
        .ok_or_else(|| Error::Backend(format!("invalid continuation {c:?}: pass the one a page returned")))
}

/// A sorted-set score (ms) as a script returns it (Redis formats scores as text).
fn score_ms(v: &Value) -> Millis {
    match v {
        Value::Int(i) => (*i).max(0) as Millis,
        other => reply_str(other).parse::<f64>().map_or(0, |f| f.max(0.0) as Millis),
    }
}

impl Redis {
    /// An instance's status, if it exists.
    pub(super) async fn load_status(&self, instance_id: &str) -> Result<Option<InstanceStatus>, Error> {
        let p = self.part_of(instance_id);
        let rec = self.records(&[(p, instance_id)]).await?.pop().flatten();
        rec.map(|r| record::decode_status(&r.status, instance_id)).transpose()
    }

    /// An instance's snapshot, if it has one.
    pub(super) async fn load_snapshot(&self, instance_id: &str) -> Result<Option<Vec<u8>>, Error> {
        let p = self.part_of(instance_id);
        let Some(bytes) = self.records(&[(p, instance_id)]).await?.pop().flatten().and_then(|r| r.snapshot) else {
            return Ok(None);
        };
        if !Snapshot::is_split(&bytes) {
            return Ok(Some(bytes));
        }
        // Its task table is kept apart: the record and the table read together (one script,
        // so that no step commits between the two), and the snapshot given whole.
        let (record, table): (Option<Vec<u8>>, HashFields) = self
            .inner
            .scripts
            .snapshot
            .key(format!("{}:lease", self.tag(p)))
            .arg(self.tag(p))
            .arg(instance_id)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("reading a snapshot", e))?;
        let Some(bytes) = record.map(|r| record::Record::parse(&r)).transpose()?.and_then(|r| r.snapshot) else {
            return Ok(None);
        };
        if !Snapshot::is_split(&bytes) {
            return Ok(Some(bytes));
        }
        let table = table_entries(instance_id, table)?;
        Snapshot::from_split(&bytes, &table)?.to_bytes().map(Some)
    }

    /// The task table a split snapshot of an instance keeps apart (`:t:<id>`), entries by
    /// task id; empty if it has none.
    pub(super) async fn load_table(&self, instance_id: &str) -> Result<Vec<(u64, Vec<u8>)>, Error> {
        let p = self.part_of(instance_id);
        let pairs: HashFields = redis::cmd("HGETALL")
            .arg(format!("{}:t:{instance_id}", self.tag(p)))
            .query_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("reading a task table", e))?;
        table_entries(instance_id, pairs)
    }

    /// An instance's history, if the instance exists.
    pub(super) async fn load_history(&self, instance_id: &str) -> Result<Option<Vec<HistoryEvent>>, Error> {
        let p = self.part_of(instance_id);
        let Some(rec) = self.records(&[(p, instance_id)]).await?.pop().flatten() else {
            return Ok(None);
        };
        let bytes = match rec.history {
            Some(b) => b,
            None => {
                let b: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(format!("{}:h:{instance_id}", self.tag(p)))
                    .query_async(&mut self.conn())
                    .await
                    .map_err(|e| backend_err("reading a history", e))?;
                b.unwrap_or_default()
            }
        };
        record::decode_history(&bytes, instance_id).map(Some)
    }

    /// One page of instances matching `query`, in (creation time, id) order, from all
    /// partitions.
    ///
    /// Each partition's `page.lua` walks its creation index from the continuation and returns
    /// its first `limit` matches, having looked at no more than `max(limit, 1000)` instances,
    /// with where it stopped. The partitions' matches are merged; a partition that stopped
    /// before the end of its index bounds the page: nothing after where it stopped is
    /// returned, since that partition may have matches before it. So a page costs
    /// O(partitions × (log² n + limit)) Redis work, one round trip, and never reads a whole
    /// index; a page may hold fewer than `limit` instances and still have a continuation when
    /// a filter skips many.
    pub(super) async fn list_page(&self, query: InstanceQuery) -> Result<InstancePage, Error> {
        let after = match &query.continuation {
            None => None,
            Some(c) => Some(parse_continuation(c)?),
        };
        let limit = query.limit.unwrap_or(100).max(1);
        let (from, to) = (opt_ms(query.created_from_ms), opt_ms(query.created_to_ms));
        let (name, prefix) = name_filter(query.name.as_deref())?;
        let (after_ms, after_id) = after.as_ref().map(|(ms, id)| (ms.to_string(), id.clone())).unwrap_or_default();
        let calls: Vec<ScriptCall> = (0..self.inner.cfg.partitions)
            .map(|p| {
                let t = self.tag(p);
                let keys = vec![format!("{t}:lease").into_bytes()];
                let mut args = vec![
                    t.into_bytes(),
                    after_ms.clone().into_bytes(),
                    after_id.clone().into_bytes(),
                    from.clone().into_bytes(),
                    to.clone().into_bytes(),
                    name.clone().into_bytes(),
                    prefix.clone().into_bytes(),
                    limit.to_string().into_bytes(),
                    limit.max(PAGE_SCAN).to_string().into_bytes(),
                    query.statuses.len().to_string().into_bytes(),
                ];
                args.extend(query.statuses.iter().map(|s| s.to_string().into_bytes()));
                args.push(query.instance_id_prefix.clone().unwrap_or_default().into_bytes());
                (keys, args)
            })
            .collect();
        let replies = invoke_batch(self, &self.inner.scripts.page, &calls)
            .await
            .map_err(|e| backend_err("listing instances", e))?;
        // Everything after the first place a partition stopped is left for the next page.
        let mut bound: Option<(Millis, String)> = None;
        let mut found: Vec<((Millis, String), InstanceStatus)> = Vec::new();
        for reply in replies {
            let reply = reply.map_err(|e| backend_err("listing instances", e))?;
            let Value::Array(parts) = reply else {
                return Err(Error::Backend(format!("redis: unexpected reply to a page of instances: {reply:?}")));
            };
            if parts.get(2).map_or(0, reply_int) == 1 {
                let stop = (score_ms(&parts[0]), reply_str(&parts[1]));
                if bound.as_ref().is_none_or(|b| stop < *b) {
                    bound = Some(stop);
                }
            }
            let matches = match parts.get(3) {
                Some(Value::Array(m)) => m.as_slice(),
                _ => &[],
            };
            for triple in matches.chunks(3) {
                let [score, id, st] = triple else { continue };
                let st = keys::bytes(st).unwrap_or_default();
                let s = record::decode_status(&st, &reply_str(id))?;
                // The scripts filter already; this also checks the creation times.
                if query.matches(&s) {
                    found.push(((score_ms(score), s.instance_id.clone()), s));
                }
            }
        }
        found.retain(|(k, _)| bound.as_ref().is_none_or(|b| k <= b));
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let continuation = if found.len() > limit {
            found.truncate(limit);
            found.last().map(|(k, _)| k.clone())
        } else {
            bound
        };
        Ok(InstancePage {
            instances: found.into_iter().map(|(_, s)| s).collect(),
            continuation: continuation.map(|(ms, id)| format!("{ms}:{id}")),
        })
    }

    /// Activity items, armed timers and inbox entries, summed over the partitions.
    pub(super) async fn depths(&self) -> Result<Option<QueueDepths>, Error> {
        let mut pipe = redis::pipe();
        for p in 0..self.inner.cfg.partitions {
            let t = self.tag(p);
            pipe.cmd("XLEN").arg(format!("{t}:act"));
            pipe.cmd("ZCARD").arg(format!("{t}:tm"));
            pipe.cmd("XLEN").arg(format!("{t}:ctl"));
            // The oldest control entry: its id says when it was written.
            pipe.cmd("XRANGE").arg(format!("{t}:ctl")).arg("-").arg("+").arg("COUNT").arg(1);
        }
        let v: Vec<redis::Value> =
            pipe.query_async(&mut self.conn()).await.map_err(|e| backend_err("queue depths", e))?;
        // Redis's clock (entry ids follow Redis's TIME), not a virtual one.
        let now = self.real_now();
        let int = |v: &redis::Value| match v {
            redis::Value::Int(n) => *n as u64,
            _ => 0,
        };
        let mut d = QueueDepths::default();
        for (p, c) in v.chunks(4).enumerate() {
            let oldest = keys::parse_entries_raw(c[3].clone()).first().and_then(|(id, fields)| {
                // Entries of releases before this one have a `t` field (ms); the id of any entry
                // is at least Redis's clock in microseconds when it was written (`next_id`), so
                // the age read from it may come out short, never long.
                let written = match fields.iter().find(|(k, _)| k == b"t") {
                    Some((_, t)) => std::str::from_utf8(t).ok()?.parse().ok()?,
                    None => keys::parse_stream_id(id)? / 1000,
                };
                Some(now.saturating_sub(written))
            });
            let part = PartitionDepths {
                partition: p as u32,
                activities: int(&c[0]),
                timers: int(&c[1]),
                messages: int(&c[2]),
                oldest_message_age_ms: oldest,
            };
            d.activities += part.activities;
            d.timers += part.timers;
            d.messages += part.messages;
            d.partitions.push(part);
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
        for v in per_part {
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
