//! `#[activity]`: the fn's name becomes a unit struct, a typed value `ctx.call_activity`
//! accepts, with the body as its `run` method and an `Activity` impl that decodes the input.

use super::{debug_print, fallback_unit_struct, with_errors};
use crate::check;
use crate::ctxt::Ctxt;
use crate::parse::{self, ActivityFn, MacroKind, parse_args};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ItemFn;
use syn::spanned::Spanned;

/// Expand `#[activity(attr)] item`.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match parse::item(item, parse::ACTIVITY_GOES_ON) {
        Ok(f) => f,
        Err(e) => return e.to_compile_error(),
    };
    let cx = Ctxt::new();
    let args = parse_args(&cx, MacroKind::Activity, attr);
    let f = ActivityFn::from_item(&func, args);
    check::signature::activity(&cx, &f);
    let out = if cx.has_errors() { TokenStream::new() } else { generate(&f) };
    match cx.check() {
        Ok(()) => {
            debug_print("activity", &func.sig.ident.to_string(), &out);
            out
        }
        Err(e) => with_errors(fallback_unit_struct(&func.vis, &func.sig.ident), e),
    }
}

/// The expansion of a checked activity.
fn generate(f: &ActivityFn<'_>) -> TokenStream {
    let func = f.item;
    let sig = &func.sig;
    let Some(ret) = f.ret else { return TokenStream::new() };
    let rt = &f.args.runtime;
    let params = f.value_types();
    let has_ctx = f.takes_ctx();
    let vis = &func.vis;
    let name = &sig.ident;
    let name_str = f.args.name.clone().unwrap_or_else(|| name.to_string());
    let attrs = &func.attrs;
    let inputs = &sig.inputs;
    let block = &func.block;
    let arg_names: Vec<syn::Ident> = (0..params.len()).map(|i| format_ident!("__durable_arg{}", i)).collect();
    let (input_ty, destructure) = match params.len() {
        0 => (quote!(()), quote!(let () = __durable_input;)),
        1 => {
            let t = &params[0];
            let a = &arg_names[0];
            (quote!(#t), quote!(let #a = __durable_input;))
        }
        _ => (quote!((#(#params,)*)), quote!(let (#(#arg_names,)*) = __durable_input;)),
    };
    let ctx_arg = if has_ctx { quote!(__durable_ctx,) } else { quote!() };
    let unused_ctx = if has_ctx { quote!() } else { quote!(let _ = __durable_ctx;) };
    let ret_span = ret.span();
    let ret_private = rt.private(ret_span);
    let outcome = quote_spanned!(ret_span=> <#ret as #ret_private::ActivityOutcome>);
    let into_outcome = quote_spanned!(ret_span=> #ret_private::ActivityOutcome::into_outcome(__durable_r));
    let root = rt.root(Span::call_site());
    let p = rt.private(Span::call_site());
    quote! {
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default)]
        #vis struct #name;

        impl #name {
            /// Run the activity's body directly, e.g. in a unit test.
            #(#attrs)*
            #vis async fn run(#inputs) -> #ret #block
        }

        const _: () = {
            impl #p::Activity for #name {
                type Input = #input_ty;
                type Output = #outcome::Ok;
                const NAME: &'static str = #name_str;
                fn __run(
                    __durable_ctx: #root::ActivityContext,
                    __durable_input: Self::Input,
                ) -> #p::BoxFuture<'static, ::core::result::Result<Self::Output, #root::ActivityError>> {
                    #unused_ctx
                    #destructure
                    ::std::boxed::Box::pin(async move {
                        let __durable_r = #name::run(#ctx_arg #(#arg_names),*).await;
                        #into_outcome
                    })
                }
            }
        };
    }
}
