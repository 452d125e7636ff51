//! The attribute arguments of `#[orchestrator(…)]`, `#[activity(…)]` and `#[entity(…)]`, read
//! by one parser, and the path of the runtime crate that generated code names.
//!
//! | option           | macros       | meaning                                               |
//! |------------------|--------------|-------------------------------------------------------|
//! | `name = "…"`     | all three    | the registered name (default: the fn or type name)    |
//! | `crate = "…"`    | all three    | the runtime crate's path (default: `::durable`)       |
//! | `version = N`    | orchestrator | the version (default 1); versions run side by side    |
//! | `differential`   | orchestrator | also emit the body as plain async Rust (for tests)    |
//!
//! `crate` and `differential` are for macro authors and our own tests, so the hint on an
//! unknown option names only `name`.

use crate::ctxt::Ctxt;
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote_spanned};

/// Which macro the arguments belong to: decides the options it takes and the error wording.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum MacroKind {
    Orchestrator,
    Activity,
    Entity,
}

impl MacroKind {
    /// The error on an option the macro does not take (checked by `tests/ui`: keep the wording).
    fn unknown_option(self) -> &'static str {
        match self {
            MacroKind::Orchestrator => {
                "unknown `#[orchestrator]` option; the options are `name = \"…\"` (the registered name) and `version = N` (the version, from 1)"
            }
            MacroKind::Activity => "unknown `#[activity]` option; the option is `name = \"…\"` (the registered name)",
            MacroKind::Entity => "unknown `#[entity]` option; the option is `name = \"…\"` (the entity name)",
        }
    }
}

/// The parsed options of one macro invocation.
#[derive(Default)]
pub(crate) struct Args {
    /// `name = "…"`: the registered name.
    pub name: Option<String>,
    /// `version = N` (orchestrator only): the version, from 1.
    pub version: Option<u32>,
    /// `differential` (orchestrator only): also emit `__durable_direct`, the plain async body.
    pub differential: bool,
    /// `crate = "…"`: where generated code finds the runtime.
    pub runtime: RuntimePath,
}

/// Parse a macro's arguments; errors go to `cx` and the options read so far are kept.
pub(crate) fn parse_args(cx: &Ctxt, kind: MacroKind, attr: TokenStream) -> Args {
    let mut args = Args::default();
    if attr.is_empty() {
        return args;
    }
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            let s: syn::LitStr = meta.value()?.parse()?;
            args.name = Some(s.value());
            Ok(())
        } else if kind == MacroKind::Orchestrator && meta.path.is_ident("version") {
            if !meta.input.peek(syn::Token![=]) {
                return Err(meta.error("`version` needs a value: `version = 2` (a whole number from 1)"));
            }
            args.version = Some(parse_version(meta.value()?)?);
            Ok(())
        } else if meta.path.is_ident("version") {
            Err(meta.error(
                "only orchestrators have versions (`#[orchestrator(version = N)]`): an activity or entity keeps its name; \
                 to change what it takes or returns, register the new one under a new `name = \"…\"`",
            ))
        } else if kind == MacroKind::Orchestrator && meta.path.is_ident("differential") {
            args.differential = true;
            Ok(())
        } else if meta.path.is_ident("crate") {
            args.runtime = RuntimePath::parse_value(meta.value()?)?;
            Ok(())
        } else {
            Err(meta.error(kind.unknown_option()))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, attr) {
        cx.push(e);
    }
    args
}

/// The value of `version = N`: a whole number from 1.
fn parse_version(input: syn::parse::ParseStream<'_>) -> syn::Result<u32> {
    let value: syn::Expr = input.parse()?;
    let hint =
        "`version` takes a whole number from 1, e.g. `version = 2`; an orchestrator without `version` is version 1";
    let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(int), .. }) = &value else {
        return Err(syn::Error::new_spanned(&value, hint));
    };
    if !int.suffix().is_empty() {
        return Err(syn::Error::new_spanned(int, format!("write the version without a type suffix: {hint}")));
    }
    match int.base10_parse::<u32>() {
        Ok(0) => Err(syn::Error::new_spanned(
            int,
            "versions start at 1 (an orchestrator without `version` is version 1): write `version = 1` or higher",
        )),
        Ok(v) => Ok(v),
        Err(_) => Err(syn::Error::new_spanned(int, format!("this version is too large: {hint}"))),
    }
}

/// The root path of the runtime crate in generated code: `::durable` unless the macro was given
/// `crate = "…"` (as serde's `#[serde(crate = "…")]`), e.g. `crate = "durable_runtime"` for code
/// that depends on the runtime crate directly. Every runtime path the macros write starts with
/// [`RuntimePath::root`], so there is one place that decides it.
///
/// It lives with the parser, the lowest layer, because the lowering writes runtime calls too
/// (`?`, `return`, `.await`, `for`), not only the expanders.
#[derive(Default)]
pub(crate) struct RuntimePath {
    /// `None`: `::durable`.
    path: Option<syn::Path>,
}

impl RuntimePath {
    /// The value of `crate = "…"`: a string literal holding a path. A plain path gets a leading
    /// `::` (so a local item of the same name cannot shadow the crate); a path that starts with
    /// `::`, `crate`, `self` or `super` is used as written.
    fn parse_value(input: syn::parse::ParseStream<'_>) -> syn::Result<RuntimePath> {
        let value: syn::Expr = input.parse()?;
        let lit = match &value {
            syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => s,
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "`crate` takes the path of the runtime crate as a string, e.g. `crate = \"durable_runtime\"`",
                ));
            }
        };
        let path = lit.parse_with(syn::Path::parse_mod_style).map_err(|_| {
            syn::Error::new(
                lit.span(),
                format!(
                    "`crate = {:?}` is not a path: give the path of the runtime crate, e.g. `crate = \"durable_runtime\"`",
                    lit.value()
                ),
            )
        })?;
        Ok(RuntimePath { path: Some(path) })
    }

    /// The runtime crate's root path (`::durable`), every token spanned at `span`: `Span::call_site()`
    /// in plain `quote!` code, the user's tokens in `quote_spanned!` code (so errors land there).
    pub(crate) fn root(&self, span: Span) -> TokenStream {
        let Some(path) = &self.path else { return quote_spanned!(span=> ::durable) };
        let relative = path.leading_colon.is_none()
            && path.segments.first().is_some_and(|s| s.ident == "crate" || s.ident == "self" || s.ident == "super");
        let tokens = if path.leading_colon.is_some() || relative {
            path.to_token_stream()
        } else {
            quote_spanned!(span=> :: #path)
        };
        respan(tokens, span)
    }

    /// `<root>::__private`, the runtime's support module for generated code.
    pub(crate) fn private(&self, span: Span) -> TokenStream {
        let root = self.root(span);
        quote_spanned!(span=> #root::__private)
    }
}

fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tt| {
            if let TokenTree::Group(g) = &tt {
                let mut ng = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                ng.set_span(span);
                tt = TokenTree::Group(ng);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}
