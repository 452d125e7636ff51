//! Attribute macros of `durable`. Use them through the `durable` crate:
//! `use durable::prelude::*;`.
//!
//! - `#[activity]` turns an `async fn` into a typed activity.
//! - `#[orchestrator]` compiles an `async fn` into an explicit, serializable state machine.
//!
//! Set `DURABLE_MACROS_DEBUG=1` (or to an orchestrator's name) while building to print the
//! generated code.

mod activity;
mod check;
mod ctxt;
mod entity;
mod lower;
mod orchestrator;
mod syntax;

use proc_macro::TokenStream;

/// Run an expansion; an internal panic becomes a compile error on the item (never a crash).
fn guarded(
    which: &str,
    attr: TokenStream,
    item: TokenStream,
    f: fn(proc_macro2::TokenStream, proc_macro2::TokenStream) -> proc_macro2::TokenStream,
) -> TokenStream {
    let (a, i): (proc_macro2::TokenStream, proc_macro2::TokenStream) = (attr.into(), item.into());
    let item_copy = i.clone();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(a, i))) {
        Ok(ts) => ts.into(),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let text = format!(
                "internal error in `#[{which}]` ({msg}): this is a bug in durable, please report it with this item's code; as a workaround, simplify the expression around the `.await`"
            );
            let span =
                item_copy.clone().into_iter().next().map(|t| t.span()).unwrap_or_else(proc_macro2::Span::call_site);
            let err = syn::Error::new(span, text).to_compile_error();
            quote::quote!(#err).into()
        }
    }
}

/// Compile an `async fn(ctx: OrchestrationContext, input: I) -> Result<O, E>` into a durable
/// state machine. See the `durable` crate's documentation.
#[proc_macro_attribute]
pub fn orchestrator(attr: TokenStream, item: TokenStream) -> TokenStream {
    guarded("orchestrator", attr, item, orchestrator::expand)
}

/// Make an `async fn(input: I) -> Result<O, E>` (optionally taking an `ActivityContext` first)
/// a typed activity. See the `durable` crate's documentation.
#[proc_macro_attribute]
pub fn activity(attr: TokenStream, item: TokenStream) -> TokenStream {
    guarded("activity", attr, item, activity::expand)
}

/// Make the methods of an `impl` block the operations of a durable entity: `&self` methods
/// read, `&mut self` methods update, an optional `ctx: &mut EntityContext` parameter comes
/// right after `self`. See the `durable` crate's documentation.
#[proc_macro_attribute]
pub fn entity(attr: TokenStream, item: TokenStream) -> TokenStream {
    guarded("entity", attr, item, entity::expand)
}
