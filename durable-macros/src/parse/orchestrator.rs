//! The AST of an `#[orchestrator]` fn: the context parameter, the input parameters and the
//! return type, read from the signature without judging it (that is `check::signature`).

use super::args::Args;
use proc_macro2::TokenStream;
use quote::quote;
use syn::{FnArg, ItemFn, Pat, Receiver, ReturnType, Type};

/// An orchestrator `async fn(ctx: OrchestrationContext, input: I, …) -> Result<O, E>`.
pub(crate) struct OrchestratorFn<'a> {
    /// The user's item, for spans and the body.
    pub item: &'a ItemFn,
    pub args: Args,
    /// The first parameter.
    pub ctx: CtxParam<'a>,
    /// The typed parameters after the context: together they are the orchestration's input.
    pub params: Vec<(&'a Pat, &'a Type)>,
    /// The declared return type; `None` if there is none (an error).
    pub ret: Option<&'a Type>,
}

/// The first parameter of an orchestrator, which should be the context.
pub(crate) enum CtxParam<'a> {
    /// `ctx: OrchestrationContext`: a plain name, bound in the generated step function.
    Named(&'a Pat),
    /// `_: OrchestrationContext`.
    Wild,
    /// Any other pattern (an error).
    Unsupported(&'a Pat),
    /// `self` (an error).
    Receiver(&'a Receiver),
    /// No parameter at all (an error).
    Missing,
}

impl<'a> OrchestratorFn<'a> {
    /// Read the signature of `item`.
    pub(crate) fn from_item(item: &'a ItemFn, args: Args) -> Self {
        let sig = &item.sig;
        let mut inputs = sig.inputs.iter();
        let ctx = match inputs.next() {
            Some(FnArg::Typed(pt)) => match &*pt.pat {
                Pat::Wild(_) => CtxParam::Wild,
                p @ Pat::Ident(_) => CtxParam::Named(p),
                other => CtxParam::Unsupported(other),
            },
            Some(FnArg::Receiver(r)) => CtxParam::Receiver(r),
            None => CtxParam::Missing,
        };
        let params = inputs
            .filter_map(|a| match a {
                FnArg::Typed(pt) => Some((&*pt.pat, &*pt.ty)),
                FnArg::Receiver(_) => None,
            })
            .collect();
        let ret = match &sig.output {
            ReturnType::Type(_, t) => Some(&**t),
            ReturnType::Default => None,
        };
        OrchestratorFn { item, args, ctx, params, ret }
    }

    /// The context parameter's pattern, if it is a plain name.
    pub(crate) fn ctx_pat(&self) -> Option<&'a Pat> {
        match self.ctx {
            CtxParam::Named(p) => Some(p),
            _ => None,
        }
    }

    /// The input type: `()`, the one parameter's type, or a tuple of the parameters' types.
    pub(crate) fn input_ty(&self) -> TokenStream {
        match self.params.as_slice() {
            [] => quote!(()),
            [(_, t)] => quote!(#t),
            ps => {
                let ts = ps.iter().map(|(_, t)| t);
                quote!((#(#ts,)*))
            }
        }
    }

    /// The pattern that binds the parameters from the input value, matching [`Self::input_ty`].
    pub(crate) fn input_pat(&self) -> TokenStream {
        match self.params.as_slice() {
            [] => quote!(()),
            [(p, _)] => quote!(#p),
            ps => {
                let ps = ps.iter().map(|(p, _)| p);
                quote!((#(#ps,)*))
            }
        }
    }
}
