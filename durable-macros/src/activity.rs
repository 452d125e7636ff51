//! `#[activity]`: the function's name becomes a typed value `ctx.call_activity` accepts.

use crate::ctxt::{Ctxt, parse_name_option, with_errors};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType};

pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            return syn::Error::new(Span::call_site(), "`#[activity]` goes on an `async fn(input: I) -> Result<O, E>`")
                .to_compile_error();
        }
    };
    let cx = Ctxt::new();
    let name_override = parse_name_option(&cx, attr, "activity", "the registered name");
    let out = expand_fn(&cx, &func, name_override);
    match cx.check() {
        Ok(()) => out,
        Err(e) => {
            let vis = &func.vis;
            let name = &func.sig.ident;
            with_errors(
                quote!(#[allow(non_camel_case_types)] #[derive(Clone, Copy, Debug, Default)] #vis struct #name;),
                e,
            )
        }
    }
}

fn is_activity_context(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "ActivityContext"),
        _ => false,
    }
}

fn expand_fn(cx: &Ctxt, func: &ItemFn, name_override: Option<String>) -> TokenStream {
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        cx.error_spanned_by(sig.fn_token, "an activity must be an `async fn`: add `async`");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_spanned_by(&sig.generics, "an activity cannot be generic: it is registered and called by name, so its input and output types must be fixed");
    }
    let ret = match &sig.output {
        ReturnType::Type(_, t) => (**t).clone(),
        ReturnType::Default => {
            cx.error_spanned_by(
                &sig.ident,
                "an activity must return `Result<T, E>`, e.g. `-> Result<String, ActivityError>`",
            );
            return TokenStream::new();
        }
    };
    let mut has_ctx = false;
    let mut params = Vec::new();
    for (i, a) in sig.inputs.iter().enumerate() {
        match a {
            FnArg::Receiver(r) => {
                cx.error_spanned_by(r, "an activity is a free `async fn`, not a method: remove `self`")
            }
            FnArg::Typed(pt) => {
                if is_activity_context(&pt.ty) {
                    if i != 0 {
                        cx.error_spanned_by(&pt.ty, "the `ActivityContext` parameter must come first");
                    }
                    has_ctx = true;
                } else {
                    if let syn::Type::Reference(r) = &*pt.ty {
                        cx.error_spanned_by(r, "an activity's input must be owned (it is deserialized from the task's input): take `String` instead of `&str`, `Vec<T>` instead of `&[T]`");
                    }
                    params.push((*pt.ty).clone());
                }
            }
        }
    }
    if cx.has_errors() {
        return TokenStream::new();
    }
    let vis = &func.vis;
    let name = &sig.ident;
    let name_str = name_override.unwrap_or_else(|| name.to_string());
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
    let outcome = quote_spanned!(ret_span=> <#ret as ::durable::__private::ActivityOutcome>);
    let into_outcome = quote_spanned!(ret_span=> ::durable::__private::ActivityOutcome::into_outcome(__durable_r));
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
            impl ::durable::__private::Activity for #name {
                type Input = #input_ty;
                type Output = #outcome::Ok;
                const NAME: &'static str = #name_str;
                fn __run(
                    __durable_ctx: ::durable::ActivityContext,
                    __durable_input: Self::Input,
                ) -> ::durable::__private::BoxFuture<'static, ::core::result::Result<Self::Output, ::durable::ActivityError>> {
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
