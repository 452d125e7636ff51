//! Key layout, partitioning and the small codecs of the Redis backend.

use redis::Value;

use crate::hash::fnv1a;

/// The partition of an instance.
pub(crate) fn partition_of(instance_id: &str, partitions: u32) -> u32 {
    (fnv1a(instance_id.as_bytes()) % u64::from(partitions)) as u32
}

/// The hash tag of partition `p`: every key of the partition starts with it, so all of them
/// live in one Redis Cluster slot.
pub(crate) fn tag(prefix: &str, p: u32) -> String {
    format!("{{{prefix}:p{p}}}")
}

/// The stream id of entry number `n` (`n-0`: the backend numbers entries itself, from one
/// counter per partition).
pub(crate) fn stream_id(n: u64) -> String {
    format!("{n}-0")
}

/// The number of a stream id `n-0`.
pub(crate) fn parse_stream_id(id: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(id).ok()?;
    let (n, _) = s.split_once('-')?;
    n.parse().ok()
}

/// Bits of an activity work id that hold the partition.
pub(crate) const PARTITION_BITS: u32 = 10;
/// At most this many partitions.
pub(crate) const MAX_PARTITIONS: u32 = 1 << PARTITION_BITS;

/// An activity work id: the entry number and the partition.
pub(crate) fn work_id(n: u64, p: u32) -> u64 {
    (n << PARTITION_BITS) | u64::from(p)
}

/// The entry number and partition of an activity work id.
pub(crate) fn split_work_id(id: u64) -> (u64, u32) {
    (id >> PARTITION_BITS, (id & u64::from(MAX_PARTITIONS - 1)) as u32)
}

/// One stream entry: its number and its fields.
pub(crate) struct Entry {
    pub n: u64,
    pub fields: Fields,
}

impl Entry {
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields.iter().find(|(k, _)| k == name.as_bytes()).map(|(_, v)| v.as_slice())
    }
    pub fn get_str(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

pub(crate) fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        Value::Okay => Some(b"OK".to_vec()),
        _ => None,
    }
}

/// Entries of an entry list: `[[id, [field, value, …]], …]`. Deleted entries (`nil` fields, as
/// `XAUTOCLAIM` may return) are skipped. (The reply is taken, not borrowed: its bytes become
/// the entries' without a copy.)
pub(crate) fn parse_entries(v: Value) -> Vec<Entry> {
    parse_entries_raw(v)
        .into_iter()
        .filter_map(|(id, fields)| Some(Entry { n: parse_stream_id(&id)?, fields }))
        .collect()
}

/// An entry's fields, names and values as they are.
pub(crate) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// `v`'s bytes, moved out of it.
fn into_bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        Value::Okay => Some(b"OK".to_vec()),
        _ => None,
    }
}

/// The elements of an array (or set) reply, moved out of it; none for anything else.
fn into_items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        _ => Vec::new(),
    }
}

/// Text of a reply's bytes (lossy where they are not UTF-8).
fn into_text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Entries of an entry list with their ids as they are (ids Redis made, `<ms>-<seq>`, as well).
pub(crate) fn parse_entries_raw(v: Value) -> Vec<(Vec<u8>, Fields)> {
    let entries = into_items(v);
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let mut parts = into_items(e).into_iter();
        let (Some(id), Some(fields)) = (parts.next().and_then(into_bytes), parts.next()) else {
            continue;
        };
        let flat = into_items(fields);
        if flat.is_empty() {
            continue;
        }
        let mut fields = Vec::with_capacity(flat.len() / 2);
        let mut flat = flat.into_iter();
        while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
            if let (Some(k), Some(v)) = (into_bytes(k), into_bytes(v)) {
                fields.push((k, v));
            }
        }
        out.push((id, fields));
    }
    out
}

/// The reply of `XREAD`/`XREADGROUP`: `[[stream, entries], …]` (or a map, or nil).
pub(crate) fn parse_read(v: Value) -> Vec<(String, Vec<Entry>)> {
    match v {
        Value::Map(m) => {
            m.into_iter().filter_map(|(k, e)| Some((into_text(into_bytes(k)?), parse_entries(e)))).collect()
        }
        v => into_items(v)
            .into_iter()
            .filter_map(|s| {
                let mut parts = into_items(s).into_iter();
                let key = into_text(into_bytes(parts.next()?)?);
                Some((key, parse_entries(parts.next()?)))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        assert_eq!(parse_stream_id(stream_id(42).as_bytes()), Some(42));
        assert_eq!(split_work_id(work_id(12345, 7)), (12345, 7));
        assert_eq!(tag("durable", 3), "{durable:p3}");
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    /// `[[stream, [[id, [field, value, …]], …]], …]`, as RESP2 gives it; RESP3 gives a map.
    fn read_reply(map: bool) -> Value {
        let entries = Value::Array(vec![
            Value::Array(vec![bulk("7-0"), Value::Array(vec![bulk("i"), bulk("a"), bulk("m"), bulk("{}")])]),
            // Deleted (as `XAUTOCLAIM` answers): skipped.
            Value::Array(vec![bulk("8-0"), Value::Nil]),
            // A field without a value is dropped, the entry kept.
            Value::Array(vec![bulk("9-0"), Value::Array(vec![bulk("i"), bulk("b"), bulk("m")])]),
        ]);
        if map {
            Value::Map(vec![(bulk("{d:p1}:ctl"), entries)])
        } else {
            Value::Array(vec![Value::Array(vec![bulk("{d:p1}:ctl"), entries])])
        }
    }

    #[test]
    fn read_replies_parse_into_entries() {
        for map in [false, true] {
            let read = parse_read(read_reply(map));
            assert_eq!(read.len(), 1);
            let (stream, entries) = &read[0];
            assert_eq!(stream, "{d:p1}:ctl");
            let got: Vec<(u64, Option<String>, Option<String>)> =
                entries.iter().map(|e| (e.n, e.get_str("i"), e.get_str("m"))).collect();
            assert_eq!(got, [(7, Some("a".into()), Some("{}".into())), (9, Some("b".into()), None)], "map: {map}");
        }
        assert!(parse_read(Value::Nil).is_empty());
    }
}
