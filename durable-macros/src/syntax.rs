//! Syntax queries shared by the checks and the lowering: where `.await`s are, the arguments of
//! well-known expression macros (`format!`, `vec!`, `assert!`, …), and the identifiers raw
//! tokens and format strings may use.

use proc_macro2::{TokenStream, TokenTree};
use syn::punctuated::Punctuated;
use syn::visit::Visit;
use syn::{Expr, Macro, Token};

/// Whether an expression contains an `.await` that belongs to the orchestrator itself (not one
/// inside a closure, `async` block or nested item; those are reported by the checks).
pub(crate) fn contains_await(e: &Expr) -> bool {
    let mut f = AwaitFinder(false);
    f.visit_expr(e);
    f.0
}

/// Whether a block contains an `.await` of the orchestrator itself (see [`contains_await`]).
pub(crate) fn block_contains_await(b: &syn::Block) -> bool {
    let mut f = AwaitFinder(false);
    f.visit_block(b);
    f.0
}

/// Whether a statement contains an `.await` of the orchestrator itself (see [`contains_await`]).
pub(crate) fn stmt_contains_await(s: &syn::Stmt) -> bool {
    let mut f = AwaitFinder(false);
    f.visit_stmt(s);
    f.0
}

struct AwaitFinder(bool);

impl<'ast> Visit<'ast> for AwaitFinder {
    fn visit_expr_await(&mut self, _: &'ast syn::ExprAwait) {
        self.0 = true;
    }
    fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
    fn visit_expr_async(&mut self, _: &'ast syn::ExprAsync) {}
    fn visit_item(&mut self, _: &'ast syn::Item) {}
    fn visit_macro(&mut self, m: &'ast Macro) {
        if let Some(args) = macro_args(m) {
            for a in args.exprs() {
                self.visit_expr(a);
            }
        } else if tokens_contain_await(&m.tokens) {
            self.0 = true;
        }
    }
}

/// Whether raw tokens contain `. await`.
pub(crate) fn tokens_contain_await(ts: &TokenStream) -> bool {
    let mut prev_dot = false;
    for tt in ts.clone() {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == '.' => {
                prev_dot = true;
                continue;
            }
            TokenTree::Ident(i) if prev_dot && i == "await" => return true,
            TokenTree::Group(g) if tokens_contain_await(&g.stream()) => {
                return true;
            }
            _ => {}
        }
        prev_dot = false;
    }
    false
}

/// The arguments of a macro whose input is a comma-separated list of expressions (`format!`,
/// `vec!`, `println!`, `assert_eq!`, …) or `vec![x; n]`.
#[allow(clippy::large_enum_variant)]
pub(crate) enum MacroArgs {
    List(Punctuated<Expr, Token![,]>),
    Repeat(Expr, Expr),
}

impl MacroArgs {
    /// The argument expressions, in order.
    pub(crate) fn exprs(&self) -> Vec<&Expr> {
        match self {
            MacroArgs::List(l) => l.iter().collect(),
            MacroArgs::Repeat(a, b) => vec![a, b],
        }
    }
}

const EXPR_MACROS: &[&str] = &[
    "format",
    "print",
    "println",
    "eprint",
    "eprintln",
    "write",
    "writeln",
    "panic",
    "assert",
    "assert_eq",
    "assert_ne",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "vec",
    "format_args",
    "unreachable",
    "todo",
    "unimplemented",
    "dbg",
    "info",
    "warn",
    "error",
    "debug",
    "trace",
    "matches",
];

/// Parse a known expression-list macro's arguments.
pub(crate) fn macro_args(m: &Macro) -> Option<MacroArgs> {
    let name = m.path.segments.last()?.ident.to_string();
    if !EXPR_MACROS.contains(&name.as_str()) || name == "matches" {
        return None;
    }
    if name == "vec"
        && let Ok(r) = m.parse_body_with(|input: syn::parse::ParseStream| {
            let a: Expr = input.parse()?;
            let _: Token![;] = input.parse()?;
            let b: Expr = input.parse()?;
            Ok((a, b))
        })
    {
        return Some(MacroArgs::Repeat(r.0, r.1));
    }
    m.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated).ok().map(MacroArgs::List)
}

/// Rebuild a macro invocation from (rewritten) argument expressions.
pub(crate) fn rebuild_macro(m: &Macro, args: &MacroArgs) -> Macro {
    let tokens = match args {
        MacroArgs::List(l) => quote::quote!(#l),
        MacroArgs::Repeat(a, b) => quote::quote!(#a ; #b),
    };
    Macro { path: m.path.clone(), bang_token: m.bang_token, delimiter: m.delimiter.clone(), tokens }
}

/// Identifiers a raw token stream may use as variables: every identifier not preceded by `.`
/// or `::` (fields, methods and paths), plus `{name}` captures in string literals.
pub(crate) fn token_idents(ts: &TokenStream, out: &mut Vec<syn::Ident>) {
    let mut prev_sep = false;
    let mut prev_colon = false;
    for tt in ts.clone() {
        match &tt {
            TokenTree::Ident(i) => {
                if !prev_sep {
                    out.push(i.clone());
                }
                prev_sep = false;
                prev_colon = false;
            }
            TokenTree::Punct(p) => {
                let c = p.as_char();
                prev_sep = c == '.' || (c == ':' && prev_colon);
                prev_colon = c == ':';
            }
            TokenTree::Group(g) => {
                token_idents(&g.stream(), out);
                prev_sep = false;
                prev_colon = false;
            }
            TokenTree::Literal(l) => {
                format_captures(l, out);
                prev_sep = false;
                prev_colon = false;
            }
        }
    }
}

/// `{name}` / `{name:?}` captures in a string literal token, and `name$` width or precision
/// arguments in format specs (`{:w$}`, `{:.p$}`).
pub(crate) fn format_captures(lit: &proc_macro2::Literal, out: &mut Vec<syn::Ident>) {
    let s = lit.to_string();
    if !s.starts_with('"') && !s.starts_with("r\"") && !s.starts_with("r#") {
        return;
    }
    let chars: Vec<char> = s.chars().collect();
    let ident_at = |mut j: usize| -> (String, usize) {
        let mut name = String::new();
        while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
            name.push(chars[j]);
            j += 1;
        }
        (name, j)
    };
    let push = |name: &str, out: &mut Vec<syn::Ident>| {
        if !name.is_empty()
            && !name.chars().next().is_some_and(|c| c.is_ascii_digit())
            && let Ok(id) = syn::parse_str::<syn::Ident>(name)
        {
            out.push(syn::Ident::new(&id.to_string(), lit.span()));
        }
    };
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '{' {
            i += 1;
            continue;
        }
        if i + 1 < chars.len() && chars[i + 1] == '{' {
            i += 2;
            continue;
        }
        let (name, j) = ident_at(i + 1);
        if j < chars.len() && (chars[j] == '}' || chars[j] == ':') {
            push(&name, out);
        }
        // The spec, up to `}`: identifiers followed by `$` are captured too.
        let mut k = j;
        while k < chars.len() && chars[k] != '}' {
            if chars[k].is_alphabetic() || chars[k] == '_' {
                let (n, e) = ident_at(k);
                if e < chars.len() && chars[e] == '$' {
                    push(&n, out);
                }
                k = e.max(k + 1);
            } else {
                k += 1;
            }
        }
        i = k;
    }
}
