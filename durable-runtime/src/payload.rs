//! Encoding of payloads (inputs, outputs, results: JSON) and snapshots (MessagePack with field
//! names, so NaN and any map key survive and tools can still show them).

use serde::{Serialize, de::DeserializeOwned};

/// Encode a payload as JSON text.
pub fn to_json<T: Serialize + ?Sized>(value: &T, what: impl std::fmt::Display) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("{what} does not serialize to JSON: {e}"))
}

/// Decode a JSON payload into `T`, naming what was being decoded and the expected type on error.
pub fn from_json<T: DeserializeOwned>(json: &str, what: impl std::fmt::Display) -> Result<T, String> {
    serde_json::from_str(json).map_err(|e| {
        format!("{what} does not deserialize into `{}`: {e} (got {})", std::any::type_name::<T>(), abbreviate(json))
    })
}

/// Encode a snapshot (MessagePack, with field names).
pub fn to_state<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec_named(value).map_err(|e| format!("orchestration state does not serialize: {e}"))
}

/// Encode an orchestrator's saved state machine (`Snapshot`): fields by position, so that a
/// parked instance's state stays small. Its locals are each encoded with [`to_state`] (field
/// names kept, for tools). [`from_state`] reads either form.
pub fn to_state_compact(st: &Snapshot) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec(st).map_err(|e| format!("orchestration state does not serialize: {e}"))
}

/// Decode a snapshot.
pub fn from_state<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    rmp_serde::from_slice(bytes).map_err(|e| format!("orchestration state does not deserialize: {e}"))
}

/// An orchestrator's saved state machine: where it is suspended and the locals live there,
/// each encoded on its own (MessagePack with field names).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// Hash of the orchestrator body that wrote it: the same body resumes at `pc` directly.
    pub fingerprint: u64,
    /// The program counter (the resume point) in the body that wrote it.
    pub pc: u32,
    /// The suspension point's key, stable under edits elsewhere in the body: the awaited
    /// expression as written (`ctx.wait_for_event("go")`), with `#2` for its third occurrence,
    /// or `checkpoint("name")` for a task named with `.checkpoint("name")`. Other code resumes
    /// the snapshot when it has a suspension point with this key and the same live locals.
    pub at: String,
    /// The live locals, by source name.
    pub locals: Vec<(String, Blob)>,
    /// The Rust type of each local, in the order of `locals`: a local whose type changed is
    /// not resumed.
    #[serde(default)]
    pub types: Vec<String>,
    /// The source line of the suspension point in the body that wrote it.
    #[serde(default)]
    pub line: u32,
}

/// Bytes serialized as a MessagePack binary.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Blob(pub Vec<u8>);

impl serde::Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Blob, A::Error> {
                let mut v = Vec::new();
                while let Some(b) = a.next_element::<u8>()? {
                    v.push(b);
                }
                Ok(Blob(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// `#[serde(with = "crate::payload::bytes")]` on a `Vec<u8>`: written as a MessagePack binary
/// (one length and the bytes, not an array of numbers); reads either.
pub mod bytes {
    use super::Blob;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write `v` as bytes.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    /// Read bytes, or an array of numbers (as written before).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Blob::deserialize(d).map(|b| b.0)
    }
}

/// Render a snapshot as JSON for people and tools, without the user's types:
/// `{"at": "ctx.wait_for_event(\"go\")", "line": 12, "pc": 7, "locals": {"name": value, …}}`.
pub fn state_to_json(bytes: &[u8]) -> serde_json::Value {
    let st: Snapshot = match from_state(bytes) {
        Ok(st) => st,
        Err(e) => return serde_json::Value::String(format!("<undecodable state: {e}>")),
    };
    let mut locals = serde_json::Map::new();
    for (name, blob) in &st.locals {
        let v = rmp_serde::from_slice::<serde_json::Value>(&blob.0)
            .unwrap_or_else(|e| serde_json::Value::String(format!("<undecodable: {e}>")));
        locals.insert(name.clone(), v);
    }
    serde_json::json!({ "at": st.at, "line": st.line, "pc": st.pc, "locals": locals })
}

/// Shorten a payload for an error message.
pub fn abbreviate(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        s.to_string()
    } else {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes)", &s[..end], s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_machine_saved_with_field_names_reads_as_the_compact_one() {
        let st = Snapshot {
            fingerprint: 9,
            pc: 4,
            at: "ctx.wait_for_event(\"go\")".into(),
            locals: vec![("n".into(), Blob(to_state(&7u64).unwrap()))],
            types: vec!["u64".into()],
            line: 12,
        };
        let named = to_state(&st).unwrap();
        let compact = to_state_compact(&st).unwrap();
        assert_eq!(from_state::<Snapshot>(&named).unwrap(), st);
        assert_eq!(from_state::<Snapshot>(&compact).unwrap(), st);
        assert!(compact.len() + 30 < named.len(), "{} vs {} bytes", compact.len(), named.len());
        assert_eq!(state_to_json(&compact)["locals"]["n"], 7);
    }
}
