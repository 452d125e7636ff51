//! How an instance is stored (see `record` in `lib.lua`): one string — a header (generation,
//! first inbox entry, runtime status, history length, the lengths of what follows), the status
//! as JSON with short field names, the history while it is short, and the snapshot. The
//! history is its events, each MessagePack (fields by position) after its length as a varint;
//! once it passes 2 KB it moves to a string of its own (`:h:<id>`) that commits append to.
//!
//! All of it is kept small so that a parked instance costs under 1 KB in Redis: a hash with a
//! field over 64 bytes, a list, or one more key costs a hundred bytes or more of bookkeeping
//! on its own. Records of releases before this one (a hash, and a list of JSON events) are
//! converted by the scripts the first time they read them; the status and event decoders here
//! also read the long forms those releases wrote.

use super::backend_err;
use crate::error::Error;
use crate::history::{HistoryEvent, ParentRef};
use crate::instance::{InstanceStatus, RuntimeStatus};
use crate::time::Millis;
use crate::trace::TraceContext;
use serde::{Deserialize, Serialize};

/// An instance's record as read from Redis.
#[derive(Clone, Debug)]
pub(super) struct Record {
    /// The generation: a new one each time an instance is created under this id.
    pub generation: String,
    /// The last control-stream entry number when it was created (older entries are stale).
    pub m0: u64,
    /// The number of events in its history.
    pub history_len: u64,
    /// The status, as `encode_status` wrote it.
    pub status: Vec<u8>,
    /// The history if it is kept in the record (events after their lengths); `None` if it is
    /// in `:h:<id>`, and in the copy an owner keeps (`to_keep`).
    pub history: Option<Vec<u8>>,
    /// The snapshot, if it has one.
    pub snapshot: Option<Vec<u8>>,
}

impl Record {
    /// Parse a record string.
    pub(super) fn parse(b: &[u8]) -> Result<Self, Error> {
        let bad = || Error::Backend(format!("redis: an instance record is not readable (it starts {:?})", head(b)));
        let nl = b.iter().position(|&c| c == b'\n').ok_or_else(bad)?;
        let header = std::str::from_utf8(&b[..nl]).map_err(|_| bad())?;
        let mut f = header.split(' ');
        let (Some(g), Some(m0), Some(_rs), Some(hn), Some(sl), Some(hl), None) =
            (f.next(), f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return Err(bad());
        };
        let m0: u64 = m0.parse().map_err(|_| bad())?;
        let history_len: u64 = hn.parse().map_err(|_| bad())?;
        let sl: usize = sl.parse().map_err(|_| bad())?;
        let hl: Option<usize> = if hl == "o" { None } else { Some(hl.parse().map_err(|_| bad())?) };
        let body = &b[nl + 1..];
        if body.len() < sl + hl.unwrap_or(0) {
            return Err(bad());
        }
        let (status, rest) = body.split_at(sl);
        let (history, snapshot) = rest.split_at(hl.unwrap_or(0));
        Ok(Self {
            generation: g.to_string(),
            m0,
            history_len,
            status: status.to_vec(),
            history: hl.map(|_| history.to_vec()),
            snapshot: (!snapshot.is_empty()).then(|| snapshot.to_vec()),
        })
    }
}

impl Record {
    /// What the owner keeps of it ([`RedisBuilder::record_cache`](super::RedisBuilder::record_cache)):
    /// all but its inline history, which steps do not read.
    pub(super) fn to_keep(&self) -> Record {
        Record { history: None, ..self.clone() }
    }

    /// About how much memory a kept record takes, with its instance id of `id_len` bytes.
    pub(super) fn kept_size(&self, id_len: usize) -> usize {
        96 + id_len + self.generation.len() + self.status.len() + self.snapshot.as_ref().map_or(0, Vec::len)
    }

    /// Follow a commit that Redis applied to the record, as `commit.lua` changes it: `status` is
    /// the new status as `encode_status` wrote it, if it changed. (The inline history is not
    /// followed: a kept record has none.)
    pub(super) fn follow(&mut self, commit: &crate::backend::StepCommit, status: Option<&[u8]>) {
        let base = if commit.reset_history { 0 } else { self.history_len };
        self.history_len = base + commit.new_events.len() as u64;
        if let Some(st) = status {
            self.status = st.to_vec();
        }
        use crate::backend::SnapshotChange;
        let snap = match &commit.snapshot {
            SnapshotChange::Keep => return,
            SnapshotChange::Set(s) => s,
            SnapshotChange::Split { rest, .. } => rest,
            SnapshotChange::Delete => {
                self.snapshot = None;
                return;
            }
        };
        self.snapshot = (!snap.is_empty()).then(|| snap.clone());
    }
}

fn head(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned()
}

/// The status as stored: short field names, no `null`s, no instance id (it is in the key).
/// The name comes first: the scripts filter by it (`has_name`).
#[derive(Serialize)]
struct StatusOut<'a> {
    n: &'a str,
    x: &'a str,
    s: RuntimeStatus,
    i: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    o: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cs: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    r: Option<&'a str>,
    c: Millis,
    u: Millis,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<&'a ParentRef>,
    v: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    b: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    t: Option<&'a TraceContext>,
}

/// The status as read: the short names, or the long ones of releases before this one.
#[derive(Deserialize)]
struct StatusIn {
    #[serde(rename = "n", alias = "name")]
    name: String,
    #[serde(rename = "x", alias = "execution_id")]
    execution_id: String,
    #[serde(rename = "s", alias = "runtime_status")]
    runtime_status: RuntimeStatus,
    #[serde(rename = "i", alias = "input")]
    input: String,
    #[serde(default, rename = "o", alias = "output")]
    output: Option<String>,
    #[serde(default, rename = "cs", alias = "custom_status")]
    custom_status: Option<String>,
    #[serde(default, rename = "e", alias = "error")]
    error: Option<String>,
    #[serde(default, rename = "r", alias = "reason")]
    reason: Option<String>,
    #[serde(rename = "c", alias = "created_ms")]
    created_ms: Millis,
    #[serde(rename = "u", alias = "updated_ms")]
    updated_ms: Millis,
    #[serde(default, rename = "p", alias = "parent")]
    parent: Option<ParentRef>,
    #[serde(default = "crate::ids::first_version", rename = "v", alias = "version")]
    version: u32,
    #[serde(default, rename = "b", alias = "blocked")]
    blocked: bool,
    #[serde(default, rename = "t", alias = "trace")]
    trace: Option<TraceContext>,
}

/// The stored form of a status.
pub(super) fn encode_status(s: &InstanceStatus) -> Result<Vec<u8>, Error> {
    let out = StatusOut {
        n: &s.name,
        x: &s.execution_id,
        s: s.runtime_status,
        i: &s.input,
        o: s.output.as_deref(),
        cs: s.custom_status.as_deref(),
        e: s.error.as_deref(),
        r: s.reason.as_deref(),
        c: s.created_ms,
        u: s.updated_ms,
        p: s.parent.as_ref(),
        v: s.version,
        b: s.blocked,
        t: s.trace.as_ref(),
    };
    serde_json::to_vec(&out).map_err(|e| Error::Backend(format!("redis: a status does not serialize: {e}")))
}

/// Read a stored status of instance `instance_id`.
pub(super) fn decode_status(b: &[u8], instance_id: &str) -> Result<InstanceStatus, Error> {
    let s: StatusIn = serde_json::from_slice(b).map_err(|e| {
        Error::Backend(format!("redis: the status of instance {instance_id:?} does not deserialize: {e}"))
    })?;
    Ok(InstanceStatus {
        name: s.name,
        instance_id: instance_id.to_string(),
        execution_id: s.execution_id,
        runtime_status: s.runtime_status,
        input: s.input,
        output: s.output,
        custom_status: s.custom_status,
        error: s.error,
        reason: s.reason,
        created_ms: s.created_ms,
        updated_ms: s.updated_ms,
        parent: s.parent,
        version: s.version,
        blocked: s.blocked,
        trace: s.trace,
    })
}

/// The kinds of history event by number: a stored event has its kind's number where
/// MessagePack would have its name (`"OrchestratorStarted"`: 20 bytes of a 30-byte event).
/// Only ever appended to: a kind not listed is stored by name.
const KINDS: &[&str] = &[
    "ExecutionStarted",
    "OrchestratorStarted",
    "TaskScheduled",
    "TaskCompleted",
    "TaskFailed",
    "TaskRetryScheduled",
    "TimerCreated",
    "TimerFired",
    "TimerCancelled",
    "EventRaised",
    "EventSent",
    "SubOrchestrationCreated",
    "SubOrchestrationCompleted",
    "SubOrchestrationFailed",
    "CustomStatusSet",
    "ExecutionSuspended",
    "ExecutionResumed",
    "ExecutionTerminated",
    "ExecutionCompleted",
    "ExecutionFailed",
    "ContinuedAsNew",
    "ExecutionRewound",
    "EntityCalled",
    "EntitySignaled",
    "EntityLockRequested",
    "EntityUnlocked",
    "EntityCompleted",
    "EntityFailed",
    "EntityLockAcquired",
];

/// Where the kind's name (or number) is in an event as MessagePack:
/// `[seq, timestamp, [kind, fields…]]`. `None` if `b` does not have that shape.
fn kind_at(b: &[u8]) -> Option<usize> {
    fn uint(b: &[u8], i: usize) -> Option<usize> {
        Some(match *b.get(i)? {
            0x00..=0x7f => i + 1,
            0xcc => i + 2,
            0xcd => i + 3,
            0xce => i + 5,
            0xcf => i + 9,
            _ => return None,
        })
    }
    if *b.first()? != 0x93 {
        return None;
    }
    let i = uint(b, uint(b, 1)?)?;
    Some(match *b.get(i)? {
        0x91..=0x9f => i + 1,
        0xdc => i + 3,
        0xdd => i + 5,
        _ => return None,
    })
}

/// A history event as the commit script appends it: its length (a varint), then the event
/// (MessagePack, its kind by number).
pub(super) fn encode_event(e: &HistoryEvent) -> Result<Vec<u8>, Error> {
    let mut body = rmp_serde::to_vec(e)
        .map_err(|err| Error::Backend(format!("redis: a history event does not serialize: {err}")))?;
    if let Some(k) = kind_at(&body)
        && let Some(&tag) = body.get(k)
        && (0xa0..=0xbf).contains(&tag)
    {
        let end = k + 1 + (tag & 0x1f) as usize;
        if let Some(code) = body.get(k + 1..end).and_then(|name| KINDS.iter().position(|n| n.as_bytes() == name)) {
            body.splice(k..end, [code as u8]);
        }
    }
    let mut out = Vec::with_capacity(body.len() + 3);
    let mut n = body.len();
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(&body);
    Ok(out)
}

/// A stored event (MessagePack) with its kind's name back in place of its number.
fn decode_event(e: &[u8]) -> Result<HistoryEvent, String> {
    if let Some(k) = kind_at(e)
        && let Some(&code) = e.get(k)
        && code < 0x80
    {
        let name = KINDS.get(code as usize).ok_or_else(|| format!("unknown event kind number {code}"))?;
        let mut full = Vec::with_capacity(e.len() + name.len());
        full.extend_from_slice(&e[..k]);
        full.push(0xa0 | name.len() as u8);
        full.extend_from_slice(name.as_bytes());
        full.extend_from_slice(&e[k + 1..]);
        return rmp_serde::from_slice(&full).map_err(|err| err.to_string());
    }
    rmp_serde::from_slice(e).map_err(|err| err.to_string())
}

/// Read a history string: MessagePack events, or JSON ones (those of releases before this
/// one, converted by the scripts), each preceded by its length.
pub(super) fn decode_history(mut b: &[u8], instance_id: &str) -> Result<Vec<HistoryEvent>, Error> {
    let bad = |what: String| {
        Error::Backend(format!("redis: the history of instance {instance_id:?} is not readable: {what}"))
    };
    let mut events = Vec::new();
    while !b.is_empty() {
        let mut n: usize = 0;
        let mut shift = 0;
        loop {
            let Some((&c, rest)) = b.split_first() else { return Err(bad("it ends inside a length".into())) };
            b = rest;
            if shift > 56 {
                return Err(bad("a length is too long".into()));
            }
            n |= ((c & 0x7f) as usize) << shift;
            shift += 7;
            if c & 0x80 == 0 {
                break;
            }
        }
        if b.len() < n {
            return Err(bad(format!("event {} is cut short", events.len())));
        }
        let (e, rest) = b.split_at(n);
        b = rest;
        let event = if e.first() == Some(&b'{') {
            serde_json::from_slice(e).map_err(|err| bad(format!("event {}: {err}", events.len())))?
        } else {
            decode_event(e).map_err(|err| bad(format!("event {}: {err}", events.len())))?
        };
        events.push(event);
    }
    Ok(events)
}

/// The reply to a `GET` of a record in a pipeline with errors kept: the bytes, `None` if
/// there is no such key, or `Err(())` if the key still has the layout of a release before this
/// one (a hash: `WRONGTYPE`).
fn got(reply: redis::RedisResult<redis::Value>, what: &str) -> Result<Result<Option<Vec<u8>>, ()>, Error> {
    match reply {
        Ok(redis::Value::Nil) => Ok(Ok(None)),
        Ok(v) => Ok(Ok(super::keys::bytes(&v))),
        Err(e) if e.code() == Some("WRONGTYPE") => Ok(Err(())),
        Err(e) => Err(backend_err(what, e)),
    }
}

impl super::Redis {
    /// The records of these instances (partition, id), in one round trip; `None` for those that
    /// do not exist. Records of releases before this one are converted first (`migrate.lua`).
    pub(super) async fn records(&self, ids: &[(u32, &str)]) -> Result<Vec<Option<Record>>, Error> {
        let mut out: Vec<Option<Record>> = Vec::with_capacity(ids.len());
        let mut again = Vec::new();
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for (p, id) in ids {
            pipe.cmd("GET").arg(format!("{}:i:{id}", self.tag(*p)));
        }
        let replies: Vec<redis::RedisResult<redis::Value>> =
            pipe.query_async(&mut self.conn()).await.map_err(|e| backend_err("loading instances", e))?;
        if replies.len() != ids.len() {
            return Err(Error::Backend(format!(
                "redis: {} replies to {} reads of instances",
                replies.len(),
                ids.len()
            )));
        }
        for (k, reply) in replies.into_iter().enumerate() {
            match got(reply, "loading instances")? {
                Ok(b) => out.push(b.map(|b| Record::parse(&b)).transpose()?),
                Err(_) => {
                    again.push(k);
                    out.push(None);
                }
            }
        }
        for k in again {
            let (p, id) = ids[k];
            self.migrate(p, id).await?;
            let b: Option<Vec<u8>> = redis::cmd("GET")
                .arg(format!("{}:i:{id}", self.tag(p)))
                .query_async(&mut self.conn())
                .await
                .map_err(|e| backend_err("loading an instance", e))?;
            out[k] = b.map(|b| Record::parse(&b)).transpose()?;
        }
        Ok(out)
    }

    /// Convert instance `id` from the layout of releases before this one, if it has it.
    pub(super) async fn migrate(&self, p: u32, id: &str) -> Result<(), Error> {
        let _: i64 = self
            .inner
            .scripts
            .migrate
            .key(format!("{}:lease", self.tag(p)))
            .arg(self.tag(p))
            .arg(id)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| backend_err("converting an instance record of an earlier release", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventKind;

    #[test]
    fn events_round_trip_in_both_forms() {
        let events = vec![
            HistoryEvent {
                seq: 0,
                timestamp_ms: 1_796_156_423_253,
                kind: EventKind::ExecutionStarted {
                    name: "hello".into(),
                    input: "[\"Tokyo\"]".into(),
                    parent: Some(ParentRef { instance_id: "p".into(), execution_id: "e".into(), task_id: 3 }),
                    trace: None,
                },
            },
            HistoryEvent { seq: 1, timestamp_ms: 1_796_156_423_254, kind: EventKind::OrchestratorStarted },
        ];
        let mut stored = Vec::new();
        for e in &events {
            stored.extend(encode_event(e).unwrap());
        }
        // A history converted from a release before this one: JSON events, length-prefixed.
        let json = serde_json::to_vec(&events[1]).unwrap();
        stored.push(json.len() as u8);
        stored.extend(&json);
        let read = decode_history(&stored, "i").unwrap();
        assert_eq!(read[..2], events[..]);
        assert_eq!(read[2], events[1]);
        // The kind is stored by number: 1 byte where the name took 17.
        assert!(stored.len() - json.len() - 1 < 60, "{} bytes", stored.len() - json.len() - 1);
        let err = decode_history(&stored[..stored.len() - 1], "i").unwrap_err().to_string();
        assert!(err.contains("event 2 is cut short"), "{err}");
    }

    #[test]
    fn every_kind_of_event_is_stored_by_number() {
        use crate::history::EventKind as K;
        let kinds = [
            K::OrchestratorStarted,
            K::TaskScheduled { id: 1, name: "a".into(), input: "2".into(), attempt: 1 },
            K::TimerFired { id: 300 },
            K::EventRaised { name: "go".into(), data: "\"x\"".into() },
            K::ExecutionCompleted { output: "null".into() },
        ];
        for (seq, kind) in kinds.into_iter().enumerate() {
            let e = HistoryEvent { seq: seq as u64 * 1000, timestamp_ms: 1_796_156_423_253, kind };
            let b = encode_event(&e).unwrap();
            let name = serde_json::to_value(&e.kind).unwrap()["type"].as_str().unwrap().to_string();
            assert!(!b.windows(name.len()).any(|w| w == name.as_bytes()), "{name} is stored by name");
            assert_eq!(decode_history(&b, "i").unwrap(), vec![e]);
        }
        for name in KINDS {
            assert!(name.len() < 32);
        }
    }

    #[test]
    fn a_long_event_has_a_multi_byte_length() {
        let e = HistoryEvent {
            seq: 7,
            timestamp_ms: 5,
            kind: EventKind::ExecutionStarted {
                name: "n".into(),
                input: "x".repeat(70_000),
                parent: None,
                trace: None,
            },
        };
        let b = encode_event(&e).unwrap();
        assert!(b[0] & 0x80 != 0 && b[1] & 0x80 != 0);
        assert_eq!(decode_history(&b, "i").unwrap(), vec![e]);
    }

    #[test]
    fn statuses_are_short_and_read_in_both_forms() {
        let s = InstanceStatus {
            name: "parked".into(),
            instance_id: "0123".into(),
            execution_id: "e1".into(),
            runtime_status: RuntimeStatus::Running,
            input: "7".into(),
            output: None,
            custom_status: Some("\"half\"".into()),
            error: None,
            reason: None,
            created_ms: 10,
            updated_ms: 11,
            parent: None,
            version: 2,
            blocked: false,
            trace: None,
        };
        let b = encode_status(&s).unwrap();
        let text = String::from_utf8(b.clone()).unwrap();
        assert!(text.starts_with("{\"n\":\"parked\","), "{text}");
        assert!(!text.contains("null") && !text.contains("0123"), "{text}");
        assert_eq!(decode_status(&b, "0123").unwrap(), s);
        // As releases before this one wrote it.
        let long = serde_json::to_vec(&s).unwrap();
        assert_eq!(decode_status(&long, "0123").unwrap(), s);
    }

    #[test]
    fn records_parse() {
        let mut b = b"17 4 Running 5 3 2\n{}xAB".to_vec();
        b.extend([0x92, 0x01]);
        let r = Record::parse(&b).unwrap();
        assert_eq!((r.generation.as_str(), r.m0, r.history_len), ("17", 4, 5));
        assert_eq!(r.status, b"{}x");
        assert_eq!(r.history.as_deref(), Some(&b"AB"[..]));
        assert_eq!(r.snapshot.as_deref(), Some(&[0x92, 0x01][..]));
        assert!(Record::parse(b"17 4 Running 5 3 2\n{}x").is_err());
        let r = Record::parse(b"1 0 Pending 0 2 0\n{}").unwrap();
        assert!(r.snapshot.is_none());
        assert_eq!(r.history.as_deref(), Some(&b""[..]));
        let r = Record::parse(b"1 0 Running 90 2 o\n{}S").unwrap();
        assert!(r.history.is_none());
        assert_eq!(r.snapshot.as_deref(), Some(&b"S"[..]));
    }
}
