//! The fingerprint of an orchestrator's code, stored with every saved state: a state written
//! by the very same body resumes at its program counter directly; one written by another body
//! resumes by its suspension point's key (see `state_machine`).

/// The text the fingerprint hashes: the tokens of the signature and the body. Generated code
/// hashes it at compile time with the runtime's one hash function (`__private::fingerprint`).
pub(super) fn fingerprint_text(sig: &syn::Signature, block: &syn::Block) -> syn::LitStr {
    syn::LitStr::new(&quote::quote!(#sig #block).to_string(), proc_macro2::Span::call_site())
}
