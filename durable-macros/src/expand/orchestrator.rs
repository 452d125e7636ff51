//! `#[orchestrator]`: parse the fn, check its signature and body, lower the body, and emit a
//! unit struct named like the fn with an `Orchestrator` impl whose step function is the state
//! machine.

use super::fingerprint::fingerprint_text;
use super::state_machine::{StepParams, step_body};
use super::{debug_print, fallback_unit_struct, with_errors};
use crate::check;
use crate::ctxt::Ctxt;
use crate::lower::lower_orchestrator;
use crate::parse::{self, MacroKind, OrchestratorFn, parse_args};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ItemFn;
use syn::spanned::Spanned;

/// Expand `#[orchestrator(attr)] item`.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match parse::item(item, parse::ORCHESTRATOR_GOES_ON) {
        Ok(f) => f,
        Err(e) => return e.to_compile_error(),
    };
    let cx = Ctxt::new();
    let args = parse_args(&cx, MacroKind::Orchestrator, attr);
    let f = OrchestratorFn::from_item(&func, args);
    check::signature::orchestrator(&cx, &f);
    check::check_body(&cx, &func.block);
    let out = if cx.has_errors() { None } else { generate(&cx, &f) };
    match cx.check() {
        Ok(()) => {
            let out = out.unwrap_or_default();
            debug_print("orchestrator", &func.sig.ident.to_string(), &out);
            out
        }
        Err(e) => with_errors(fallback_unit_struct(&func.vis, &func.sig.ident), e),
    }
}

/// The expansion of a checked orchestrator; `None` if lowering or emitting found errors (in
/// `cx`).
fn generate(cx: &Ctxt, f: &OrchestratorFn<'_>) -> Option<TokenStream> {
    let func = f.item;
    let sig = &func.sig;
    let ret = f.ret?;
    let lowered = match lower_orchestrator(f) {
        Ok(l) => l,
        Err(e) => {
            cx.push(e);
            return None;
        }
    };
    let rt = &f.args.runtime;
    let name = &sig.ident;
    let name_str = f.args.name.clone().unwrap_or_else(|| name.to_string());
    let (input_ty, input_pat) = (f.input_ty(), f.input_pat());
    let fingerprint_text = fingerprint_text(sig, &func.block);
    let version = f.args.version.unwrap_or(1);
    let step = StepParams { input_ty: &input_ty, name: &name_str, ctx_pat: f.ctx_pat(), rt };
    let body = match step_body(&lowered, &step) {
        Ok(b) => b,
        Err(e) => {
            cx.push(e);
            return None;
        }
    };
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
    let ret_private = rt.private(ret_span);
    let outcome = quote_spanned!(ret_span=> <#ret as #ret_private::OrchestrationOutcome>::Ok);
    let root = rt.root(Span::call_site());
    let p = rt.private(Span::call_site());
    let direct = if f.args.differential {
        let block = &func.block;
        let ctx_p = match f.ctx_pat() {
            Some(p) => quote!(#p),
            None => quote!(_),
        };
        quote! {
            impl #name {
                /// The orchestrator's body as plain async Rust (for differential tests).
                #[doc(hidden)]
                #[allow(clippy::all, unused_mut)]
                pub async fn __durable_direct(#ctx_p: #root::OrchestrationContext, __durable_input: #input_ty) -> #ret {
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
            const __DURABLE_FINGERPRINT: u64 = #p::fingerprint(#fingerprint_text);

            impl #p::Orchestrator for #name {
                type Input = #input_ty;
                type Output = #outcome;
                const NAME: &'static str = #name_str;
                const VERSION: u32 = #version;
                const FINGERPRINT: u64 = __DURABLE_FINGERPRINT;
                fn __step(
                    __durable_ctx: &#p::OrchestrationContext,
                    __durable_input: #p::StepInput<'_>,
                ) -> #p::StepResult {
                    #p::finish(__durable_run(__durable_ctx, __durable_input))
                }
            }

            #(#lint_attrs)*
            #[allow(unused_mut, unused_assignments, unreachable_code, unused_braces, clippy::all)]
            fn __durable_run(
                __durable_ctx: &#p::OrchestrationContext,
                __durable_input: #p::StepInput<'_>,
            ) -> #p::Step<#ret> {
                #body
            }
        };
    })
}
