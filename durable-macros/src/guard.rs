//! The panic guard around every expansion: an internal panic becomes a compile error on the
//! item (never a crash of the compiler).

use proc_macro::TokenStream;

/// An expansion: the attribute's arguments and the item, to the output.
pub(crate) type Expand = fn(proc_macro2::TokenStream, proc_macro2::TokenStream) -> proc_macro2::TokenStream;

/// Run `#[which]`'s expansion `f`; a panic in it becomes a compile error on the item's first
/// token that asks for a bug report.
pub(crate) fn guarded(which: &str, attr: TokenStream, item: TokenStream, f: Expand) -> TokenStream {
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
