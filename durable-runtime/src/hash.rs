//! The one hash function of the runtime: 64-bit FNV-1a. Stable across builds and platforms, so
//! partition numbers and deterministic UUIDs never change; `const`, so generated code can hash
//! at compile time.

/// The FNV-1a offset basis.
pub const FNV_OFFSET: u64 = 0xcbf29ce484222325;

/// 64-bit FNV-1a of `bytes`, starting from `basis` ([`FNV_OFFSET`] for the reference function).
pub const fn fnv1a_from(basis: u64, bytes: &[u8]) -> u64 {
    let mut h = basis;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x100000001b3);
        i += 1;
    }
    h
}

/// 64-bit FNV-1a of `bytes` (the reference function).
pub const fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_from(FNV_OFFSET, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_is_the_reference_function() {
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x85944171f73967e8);
    }
}
