//! The fingerprint of an orchestrator's code, stored with every saved state so a changed
//! orchestrator does not resume a state it cannot read.

/// FNV-1a (64 bits) over the token text of the signature and the body.
pub(super) fn fingerprint(sig: &syn::Signature, block: &syn::Block) -> u64 {
    let text = quote::quote!(#sig #block).to_string();
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}
