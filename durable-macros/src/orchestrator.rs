//! `#[orchestrator]`: parse the signature, check the body, lower it, emit the impl.

use crate::ctxt::{Ctxt, with_errors};
use crate::lower::{BindingKind, Lowerer, emit::Emitter};
use crate::syntax::pat_bindings;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat, ReturnType};

#[derive(Default)]
struct Args {
    name: Option<String>,
    differential: bool,
}

fn parse_args(cx: &Ctxt, attr: TokenStream) -> Args {
    let mut args = Args::default();
    if attr.is_empty() {
        return args;
    }
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            let s: syn::LitStr = meta.value()?.parse()?;
            args.name = Some(s.value());
            Ok(())
        } else if meta.path.is_ident("differential") {
            args.differential = true;
            Ok(())
        } else {
            Err(meta.error("unknown `#[orchestrator]` option; the options are `name = \"…\"` (the registered name)"))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, attr) {
        cx.push(e);
    }
    args
}

pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            return syn::Error::new(
                Span::call_site(),
                "`#[orchestrator]` goes on an `async fn(ctx: OrchestrationContext, input: I) -> Result<O, E>`",
            )
            .to_compile_error();
        }
    };
    let cx = Ctxt::new();
    let args = parse_args(&cx, attr);
    let out = expand_fn(&cx, &args, &func);
    match cx.check() {
        Ok(()) => {
            let out = out.unwrap_or_default();
            if std::env::var("DURABLE_MACROS_DEBUG").is_ok_and(|v| v == "1" || func.sig.ident == v) {
                eprintln!("// ---- #[orchestrator] {} ----\n{}", func.sig.ident, out);
            }
            out
        }
        Err(e) => with_errors(fallback(&func), e),
    }
}

/// What to emit when there are errors: the name as a unit struct so uses elsewhere resolve.
fn fallback(func: &ItemFn) -> TokenStream {
    let vis = &func.vis;
    let name = &func.sig.ident;
    quote! {
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default)]
        #vis struct #name;
    }
}

fn expand_fn(cx: &Ctxt, args: &Args, func: &ItemFn) -> Option<TokenStream> {
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        cx.error_spanned_by(sig.fn_token, "an orchestrator must be an `async fn`: add `async`");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_spanned_by(&sig.generics, "an orchestrator cannot be generic: it is registered and started by name, so its input and output types must be fixed");
    }
    if let Some(c) = &sig.constness {
        cx.error_spanned_by(c, "an orchestrator cannot be `const`");
    }
    if let syn::Safety::Unsafe(u) = &sig.safety {
        cx.error_spanned_by(u, "an orchestrator cannot be `unsafe`");
    }
    if let Some(v) = &sig.variadic {
        cx.error_spanned_by(v, "an orchestrator cannot be variadic");
    }
    let ret = match &sig.output {
        ReturnType::Type(_, t) => (**t).clone(),
        ReturnType::Default => {
            cx.error_spanned_by(
                &sig.ident,
                "an orchestrator must return `Result<T, E>`, e.g. `-> Result<String, OrchestrationError>`",
            );
            syn::parse_quote!(::core::result::Result<(), ::durable::OrchestrationError>)
        }
    };
    let mut inputs = sig.inputs.iter();
    let ctx_pat: Option<Pat> = match inputs.next() {
        Some(FnArg::Typed(pt)) => match &*pt.pat {
            Pat::Wild(_) => None,
            Pat::Ident(_) => Some((*pt.pat).clone()),
            other => {
                cx.error_spanned_by(
                    other,
                    "the context parameter must be a plain name, e.g. `ctx: OrchestrationContext`",
                );
                None
            }
        },
        Some(FnArg::Receiver(r)) => {
            cx.error_spanned_by(r, "an orchestrator is a free `async fn`, not a method: remove `self`");
            None
        }
        None => {
            cx.error_spanned_by(
                &sig.ident,
                "an orchestrator takes the context first: `async fn name(ctx: OrchestrationContext, input: I)`",
            );
            None
        }
    };
    let mut params = Vec::new();
    for a in inputs {
        match a {
            FnArg::Typed(pt) => params.push(((*pt.pat).clone(), (*pt.ty).clone())),
            FnArg::Receiver(r) => cx.error_spanned_by(r, "an orchestrator cannot take `self`"),
        }
    }
    let (input_ty, input_pat) = match params.len() {
        0 => (quote!(()), quote!(())),
        1 => {
            let (p, t) = &params[0];
            (quote!(#t), quote!(#p))
        }
        _ => {
            let ps = params.iter().map(|(p, _)| p);
            let ts = params.iter().map(|(_, t)| t);
            (quote!((#(#ts,)*)), quote!((#(#ps,)*)))
        }
    };

    crate::check::check_body(cx, &func.block);
    if cx.has_errors() {
        return None;
    }

    // Lower.
    let mut lw = Lowerer::new(cx);
    if let Some(Pat::Ident(pi)) = &ctx_pat {
        lw.declare(pi.ident.clone(), false, BindingKind::Ctx);
    }
    let input_id = lw.declare(syn::Ident::new("__durable_input_value", Span::call_site()), false, BindingKind::Input);
    // `let <params> = input;`
    let mut param_bids = Vec::new();
    for (p, _) in &params {
        for b in pat_bindings(p) {
            param_bids.push((b.ident.clone(), b.mutable));
        }
    }
    let input_ident = lw.bindings[input_id].ident.clone();
    let defs: Vec<usize> = param_bids.into_iter().map(|(i, m)| lw.declare(i, m, BindingKind::User)).collect();
    lw.push_param_binding(quote!(let #input_pat: #input_ty = #input_ident;), input_id, defs);
    lw.lower_body(&func.block);
    if cx.has_errors() {
        return None;
    }

    let fingerprint = {
        let block = &func.block;
        let text = quote!(#sig #block).to_string();
        fnv1a(text.as_bytes())
    };
    let name = &sig.ident;
    let name_str = args.name.clone().unwrap_or_else(|| name.to_string());
    let emitted = match Emitter::new(&lw, fingerprint).emit(&input_ty, &name_str, ctx_pat.as_ref()) {
        Ok(e) => e,
        Err(e) => {
            cx.push(e);
            return None;
        }
    };
    let body = emitted.body;
    let vis = &func.vis;
    let attrs = func
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc") || a.path().is_ident("allow") || a.path().is_ident("cfg"));
    let lint_attrs = func
        .attrs
        .iter()
        .filter(|a| ["allow", "expect", "warn", "deny", "forbid"].iter().any(|l| a.path().is_ident(l)));
    let ret_span = ret.span();
    let outcome = quote_spanned!(ret_span=> <#ret as ::durable::__private::OrchestrationOutcome>::Ok);
    let direct = if args.differential {
        let block = &func.block;
        let ctx_p = match &ctx_pat {
            Some(p) => quote!(#p),
            None => quote!(_),
        };
        quote! {
            impl #name {
                /// The orchestrator's body as plain async Rust (for differential tests).
                #[doc(hidden)]
                #[allow(clippy::all, unused_mut)]
                pub async fn __durable_direct(#ctx_p: ::durable::OrchestrationContext, __durable_input: #input_ty) -> #ret {
                    let #input_pat = __durable_input;
                    #block
                }
            }
        }
    } else {
        quote!()
    };
    Some(quote! {
        #(#attrs)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default)]
        #vis struct #name;

        #direct

        const _: () = {
            impl ::durable::__private::Orchestrator for #name {
                type Input = #input_ty;
                type Output = #outcome;
                const NAME: &'static str = #name_str;
                const FINGERPRINT: u64 = #fingerprint;
                fn __step(
                    __durable_ctx: &::durable::__private::OrchestrationContext,
                    __durable_input: ::durable::__private::StepInput<'_>,
                ) -> ::durable::__private::StepResult {
                    ::durable::__private::finish(__durable_run(__durable_ctx, __durable_input))
                }
            }

            #(#lint_attrs)*
            #[allow(unused_mut, unused_assignments, unreachable_code, unused_braces, clippy::all)]
            fn __durable_run(
                __durable_ctx: &::durable::__private::OrchestrationContext,
                __durable_input: ::durable::__private::StepInput<'_>,
            ) -> ::durable::__private::Step<#ret> {
                #body
            }
        };
    })
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}
