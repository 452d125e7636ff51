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

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        _ => &[],
    }
}

/// Entries of an entry list: `[[id, [field, value, …]], …]`. Deleted entries (`nil` fields, as
/// `XAUTOCLAIM` may return) are skipped.
pub(crate) fn parse_entries(v: &Value) -> Vec<Entry> {
    parse_entries_raw(v)
        .into_iter()
        .filter_map(|(id, fields)| Some(Entry { n: parse_stream_id(&id)?, fields }))
        .collect()
}

/// An entry's fields, names and values as they are.
pub(crate) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Entries of an entry list with their ids as they are (ids Redis made, `<ms>-<seq>`, as well).
pub(crate) fn parse_entries_raw(v: &Value) -> Vec<(Vec<u8>, Fields)> {
    let mut out = Vec::new();
    for e in items(v) {
        let parts = items(e);
        let (Some(id), Some(fields)) = (parts.first().and_then(bytes), parts.get(1)) else {
            continue;
        };
        let flat = items(fields);
        if flat.is_empty() {
            continue;
        }
        let fields = flat.chunks(2).filter_map(|c| Some((bytes(c.first()?)?, bytes(c.get(1)?)?))).collect();
        out.push((id, fields));
    }
    out
}

/// The reply of `XREAD`/`XREADGROUP`: `[[stream, entries], …]` (or a map, or nil).
pub(crate) fn parse_read(v: &Value) -> Vec<(String, Vec<Entry>)> {
    match v {
        Value::Map(m) => m
            .iter()
            .filter_map(|(k, e)| Some((String::from_utf8_lossy(&bytes(k)?).into_owned(), parse_entries(e))))
            .collect(),
        _ => items(v)
            .iter()
            .filter_map(|s| {
                let parts = items(s);
                let key = String::from_utf8_lossy(&bytes(parts.first()?)?).into_owned();
                Some((key, parse_entries(parts.get(1)?)))
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
}
