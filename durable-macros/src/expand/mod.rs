//! Expand: generate the code of the three macros from their checked AST (and, for an
//! orchestrator, its lowered body). The skeleton shared by all three is here: the fallback
//! emitted when there are errors, and the debug print of an expansion. Generated code names the
//! runtime through [`crate::parse::RuntimePath`] only (`::durable` or the `crate = "…"` path),
//! names its own items `__durable_…`, and wraps helper impls in `const _: () = { … };`.

pub(crate) mod activity;
pub(crate) mod entity;
mod fingerprint;
pub(crate) mod orchestrator;
mod state_machine;

use proc_macro2::TokenStream;
use quote::quote;

/// The item to emit with the errors, plus the errors, so IDEs and the rest of the crate stay
/// quiet.
pub(crate) fn with_errors(item: TokenStream, err: syn::Error) -> TokenStream {
    let errs = err.to_compile_error();
    quote! { #item #errs }
}

/// What an `#[orchestrator]` or `#[activity]` fn leaves when there are errors: its name as a
/// unit struct, so uses elsewhere (`ctx.call_activity(name, …)`, registrations) resolve.
pub(crate) fn fallback_unit_struct(vis: &syn::Visibility, name: &syn::Ident) -> TokenStream {
    quote! {
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default)]
        #vis struct #name;
    }
}

/// Print an expansion to stderr while building if `DURABLE_MACROS_DEBUG` is `1` or the item's
/// name.
pub(crate) fn debug_print(macro_name: &str, item_name: &str, out: &TokenStream) {
    if std::env::var("DURABLE_MACROS_DEBUG").is_ok_and(|v| v == "1" || v == item_name) {
        eprintln!("// ---- #[{macro_name}] {item_name} ----\n{out}"); // print: allowed
    }
}
