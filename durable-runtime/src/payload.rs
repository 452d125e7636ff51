//! Encoding of payloads (inputs, outputs, results: JSON) and snapshots (MessagePack with field
//! names, so NaN and any map key survive and tools can still show them).

use serde::{Serialize, de::DeserializeOwned};

/// Encode a payload as JSON text.
pub fn to_json<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("{what} does not serialize to JSON: {e}"))
}

/// Decode a JSON payload into `T`, naming what was being decoded and the expected type on error.
pub fn from_json<T: DeserializeOwned>(json: &str, what: &str) -> Result<T, String> {
    serde_json::from_str(json).map_err(|e| {
        format!(
            "{what} does not deserialize into `{}`: {e} (got {})",
            std::any::type_name::<T>(),
            abbreviate(json)
        )
    })
}

/// Encode a snapshot (MessagePack, with field names).
pub fn to_state<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec_named(value).map_err(|e| format!("orchestration state does not serialize: {e}"))
}

/// Decode a snapshot.
pub fn from_state<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    rmp_serde::from_slice(bytes).map_err(|e| format!("orchestration state does not deserialize: {e}"))
}

/// Render a snapshot as JSON for people and tools, without the user's types.
pub fn state_to_json(bytes: &[u8]) -> serde_json::Value {
    rmp_serde::from_slice::<serde_json::Value>(bytes)
        .unwrap_or_else(|e| serde_json::Value::String(format!("<undecodable state: {e}>")))
}

pub(crate) fn abbreviate(s: &str) -> String {
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
