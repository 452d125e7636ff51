//! The walk over an orchestrator body: applies the determinism rules (`determinism.rs`) to
//! every path, `use` and bare call, and checks where `.await` may stand (not in closures,
//! `async` blocks, match guards, `for` loops over borrows, `#[cfg]`'d statements, opaque macros
//! or arguments a macro evaluates only sometimes). Every error sits on the offending tokens and
//! says how to fix the code.

use super::determinism::{forbidden_call, forbidden_path, seg_names};
use crate::ctxt::Ctxt;
use crate::syntax::{macro_args, tokens_contain_await};
use syn::spanned::Spanned;
use syn::visit::Visit;

/// Check an orchestrator body; errors go to `cx`.
pub(crate) fn check_body(cx: &Ctxt, body: &syn::Block) {
    let mut aliases = Aliases::default();
    aliases.visit_block(body);
    let mut v = Checker { cx, closure_depth: 0, async_depth: 0, aliases: aliases.0 };
    v.visit_block(body);
}

struct Checker<'a> {
    cx: &'a Ctxt,
    closure_depth: usize,
    async_depth: usize,
    /// Names the body gives paths (`use std::time::SystemTime as Clock;`, `type C = …;`), so
    /// that `Clock::now()` is checked as `std::time::SystemTime::now()`. Names imported
    /// outside the function cannot be seen by the macro.
    aliases: Vec<(String, Vec<String>)>,
}

/// The aliases declared anywhere in a body.
#[derive(Default)]
struct Aliases(Vec<(String, Vec<String>)>);

impl Aliases {
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut segs = prefix.clone();
                segs.push(n.ident.to_string());
                self.0.push((n.ident.to_string(), segs));
            }
            syn::UseTree::Rename(r) => {
                let mut segs = prefix.clone();
                segs.push(r.ident.to_string());
                self.0.push((r.rename.to_string(), segs));
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
            syn::UseTree::Glob(_) => {}
        }
    }
}

impl<'ast> Visit<'ast> for Aliases {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        match item {
            syn::Item::Use(u) => self.use_tree(&mut Vec::new(), &u.tree),
            syn::Item::Type(t) => {
                if let syn::Type::Path(p) = &*t.ty {
                    self.0.push((t.ident.to_string(), seg_names(&p.path)));
                }
            }
            _ => {}
        }
    }
}

impl Checker<'_> {
    /// `segs` with a leading alias replaced by the path it names (once: no chains).
    fn resolve(&self, segs: Vec<String>) -> Vec<String> {
        match self.alias_of(&segs) {
            Some(target) => target.iter().cloned().chain(segs.into_iter().skip(1)).collect(),
            None => segs,
        }
    }

    fn alias_of(&self, segs: &[String]) -> Option<&Vec<String>> {
        let first = segs.first()?;
        self.aliases.iter().find(|(a, _)| a == first).map(|(_, target)| target)
    }

    fn check_path(&self, path: &syn::Path) {
        let segs = seg_names(path);
        // An alias of a forbidden path is reported where it is declared (`use … as nap;`), once.
        if self.alias_of(&segs).is_some_and(|target| forbidden_path(target).is_some()) {
            return;
        }
        if let Some(msg) = forbidden_path(&self.resolve(segs)) {
            self.cx.error_spanned_by(path, msg);
        }
    }

    fn check_use_tree(&self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.check_use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut segs = prefix.clone();
                segs.push(n.ident.to_string());
                if let Some(msg) = forbidden_path(&segs) {
                    self.cx.error_spanned_by(&n.ident, msg);
                }
            }
            syn::UseTree::Rename(r) => {
                let mut segs = prefix.clone();
                segs.push(r.ident.to_string());
                if let Some(msg) = forbidden_path(&segs) {
                    self.cx.error_spanned_by(&r.ident, msg);
                }
            }
            syn::UseTree::Glob(g) => {
                if let Some(msg) = forbidden_path(prefix) {
                    self.cx.error_spanned_by(g, msg);
                }
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.check_use_tree(prefix, t);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Checker<'_> {
    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        if let syn::Expr::Path(p) = &*call.func
            && p.qself.is_none()
            && p.path.segments.len() == 1
        {
            // A bare call of a forbidden function (an alias of one, `use … as nap;`, is
            // checked as the path it names, by `visit_path`).
            let name = p.path.segments[0].ident.to_string();
            if self.resolve(vec![name.clone()]).len() == 1
                && let Some(msg) = forbidden_call(&name)
            {
                self.cx.error_spanned_by(&p.path, msg);
            }
        }
        syn::visit::visit_expr_call(self, call);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.check_path(path);
        syn::visit::visit_path(self, path);
    }

    fn visit_item(&mut self, item: &'ast syn::Item) {
        match item {
            syn::Item::Use(u) => self.check_use_tree(&mut Vec::new(), &u.tree),
            syn::Item::Static(s) if matches!(s.mutability, syn::StaticMutability::Mut(_)) => {
                let (st, m) = (&s.static_token, &s.mutability);
                self.cx.error_spanned_by(
                    quote::quote!(#st #m),
                    "`static mut` is global mutable state, which is not saved with the instance nor replayed: keep state in locals (they are saved at every `.await`) or in a durable entity",
                );
            }
            _ => {}
        }
        // Nested items are not part of the orchestrator's body.
    }

    fn visit_expr_unsafe(&mut self, e: &'ast syn::ExprUnsafe) {
        self.cx.error_spanned_by(
            e.unsafe_token,
            "`unsafe` is not allowed in an orchestrator body: move the unsafe code into an `#[activity]` or a helper function",
        );
        syn::visit::visit_expr_unsafe(self, e);
    }

    fn visit_expr_closure(&mut self, e: &'ast syn::ExprClosure) {
        self.closure_depth += 1;
        syn::visit::visit_expr_closure(self, e);
        self.closure_depth -= 1;
    }

    fn visit_expr_async(&mut self, e: &'ast syn::ExprAsync) {
        self.async_depth += 1;
        syn::visit::visit_expr_async(self, e);
        self.async_depth -= 1;
    }

    fn visit_expr_await(&mut self, e: &'ast syn::ExprAwait) {
        let (dot, aw) = (&e.dot_token, &e.await_token);
        let span = quote::quote!(#dot #aw);
        if self.async_depth > 0 {
            self.cx.error_spanned_by(
                span,
                "`.await` inside an `async` block is not supported in an orchestrator: the block cannot be saved while suspended; await the durable task directly in the orchestrator body, and combine tasks with `ctx.when_all`, `ctx.when_any` or `ctx.select`",
            );
        } else if self.closure_depth > 0 {
            self.cx.error_spanned_by(
                span,
                "`.await` inside a closure is not supported in an orchestrator: the closure cannot be suspended; use a `for` loop, or collect the tasks and await `ctx.when_all(tasks)`",
            );
        }
        syn::visit::visit_expr_await(self, e);
    }

    fn visit_arm(&mut self, arm: &'ast syn::Arm) {
        if let syn::Pat::Guard(syn::PatGuard { guard, .. }) = &arm.pat
            && crate::syntax::contains_await(guard)
            && self.closure_depth == 0
            && self.async_depth == 0
        {
            self.cx.error_spanned_by(
                    guard,
                    "`.await` in a match guard is not supported in an orchestrator: await before the `match`, bind the result with `let`, and test the binding in the guard",
                );
        }
        syn::visit::visit_arm(self, arm);
    }

    fn visit_expr_for_loop(&mut self, e: &'ast syn::ExprForLoop) {
        if crate::syntax::block_contains_await(&e.body) && self.closure_depth == 0 && self.async_depth == 0 {
            if let syn::Expr::Reference(r) = &*e.expr {
                self.cx.error_spanned_by(
                    r,
                    "a `for` loop over a borrow cannot span an `.await` in an orchestrator: the loop's position is saved at each `.await`, and a borrow cannot be saved; iterate over an owned collection, e.g. `for x in v.clone()`",
                );
            } else if let Some((call, method)) = borrowing_iterator(&e.expr) {
                let recv = quote::ToTokens::to_token_stream(&*call.receiver).to_string().replace(' ', "");
                let fix = match method.as_str() {
                    "keys" | "values" | "values_mut" => {
                        format!("iterate over owned items: `{recv}.{method}().cloned()`")
                    }
                    "iter" | "iter_mut" | "as_slice" | "windows" | "chunks" | "chunks_exact" => format!(
                        "iterate over owned items, `{recv}.clone()` or `{recv}.iter().cloned()`, or over indices, `for i in 0..{recv}.len()`"
                    ),
                    _ => {
                        let args = if call.args.is_empty() { "" } else { "…" };
                        format!(
                            "collect owned pieces first, `let parts: Vec<String> = {recv}.{method}({args}).map(str::to_owned).collect();`, and loop over `parts`"
                        )
                    }
                };
                self.cx.error_spanned_by(
                    call,
                    format!(
                        "a `for` loop over `.{method}()` cannot span an `.await` in an orchestrator: it yields borrows, and the items still to come are saved at each `.await`, which a borrow cannot be; {fix}"
                    ),
                );
            }
        }
        syn::visit::visit_expr_for_loop(self, e);
    }

    fn visit_stmt(&mut self, s: &'ast syn::Stmt) {
        let attrs: &[syn::Attribute] = match s {
            syn::Stmt::Local(l) => &l.attrs,
            syn::Stmt::Expr(e, _) => expr_attrs(e),
            syn::Stmt::Macro(m) => &m.attrs,
            syn::Stmt::Item(_) => &[],
        };
        if let Some(cfg) = attrs.iter().find(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
            && crate::syntax::stmt_contains_await(s)
            && self.closure_depth == 0
            && self.async_depth == 0
        {
            self.cx.error_spanned_by(
                cfg,
                "`#[cfg]` on a statement that contains `.await` is not supported in an orchestrator (the macro cannot tell whether it is compiled in): use `if cfg!(…) { … }` instead",
            );
        }
        syn::visit::visit_stmt(self, s);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.check_path(&m.path);
        // Arguments a macro evaluates only sometimes cannot hold an `.await`: the macro would
        // run it always.
        let name = m.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
        let always = match name.as_str() {
            "assert" => Some(1),
            "assert_eq" | "assert_ne" => Some(2),
            "debug_assert" | "debug_assert_eq" | "debug_assert_ne" => Some(0),
            _ => None,
        };
        if let Some(always) = always
            && self.closure_depth == 0
            && self.async_depth == 0
            && let Some(args) = macro_args(m)
        {
            for (i, a) in args.exprs().into_iter().enumerate() {
                if i >= always && crate::syntax::contains_await(a) {
                    let why = if always == 0 {
                        format!("`{name}!` is compiled out of release builds")
                    } else {
                        format!("`{name}!` evaluates its message only when the assertion fails")
                    };
                    self.cx.error_spanned_by(
                        a,
                        format!("this `.await` cannot be compiled by `#[orchestrator]`: {why}; bind the value first: `let v = … .await;`, then use `v`"),
                    );
                }
            }
        }
        if let Some(args) = macro_args(m) {
            for a in args.exprs() {
                self.visit_expr(a);
            }
        } else if tokens_contain_await(&m.tokens) && self.closure_depth == 0 && self.async_depth == 0 {
            let name = m.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
            self.cx.error_at(
                m.path.span().join(m.bang_token.span).unwrap_or(m.path.span()),
                format!(
                    "`.await` inside `{name}!(…)` cannot be compiled by `#[orchestrator]`: the macro's tokens are opaque to it; bind the result first: `let v = … .await;`, then pass `v` to `{name}!`"
                ),
            );
        } else {
            // Determinism rules apply inside macros too, as far as the tokens parse.
            if let Ok(exprs) =
                m.parse_body_with(syn::punctuated::Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated)
            {
                for e in &exprs {
                    self.visit_expr(e);
                }
            }
        }
    }
}

fn expr_attrs(e: &syn::Expr) -> &[syn::Attribute] {
    use syn::Expr::*;
    match e {
        Block(x) => &x.attrs,
        If(x) => &x.attrs,
        Match(x) => &x.attrs,
        Loop(x) => &x.attrs,
        While(x) => &x.attrs,
        ForLoop(x) => &x.attrs,
        Call(x) => &x.attrs,
        MethodCall(x) => &x.attrs,
        Assign(x) => &x.attrs,
        Binary(x) => &x.attrs,
        Await(x) => &x.attrs,
        Try(x) => &x.attrs,
        Macro(x) => &x.attrs,
        Return(x) => &x.attrs,
        _ => &[],
    }
}

/// The call of a method that iterates by reference (`v.iter()`, `m.keys()`, `s.lines()`, …)
/// that a `for` loop's items come from, through adapters that keep the items as they are
/// (`.enumerate()`, `.rev()`, `.zip(..)`, …); `None` when the items are owned (`.cloned()`,
/// `.copied()`, `.map(..)`, `into_iter()`, …) or it cannot tell.
fn borrowing_iterator(e: &syn::Expr) -> Option<(&syn::ExprMethodCall, String)> {
    const BORROWING: &[&str] = &[
        "iter",
        "iter_mut",
        "keys",
        "values",
        "values_mut",
        "lines",
        "split",
        "split_whitespace",
        "split_terminator",
        "rsplit",
        "splitn",
        "windows",
        "chunks",
        "chunks_exact",
        "as_slice",
    ];
    const KEEPING: &[&str] = &[
        "enumerate",
        "rev",
        "skip",
        "take",
        "step_by",
        "peekable",
        "skip_while",
        "take_while",
        "filter",
        "chain",
        "zip",
        "cycle",
        "fuse",
        "inspect",
    ];
    let mut e = e;
    loop {
        match e {
            syn::Expr::MethodCall(call) => {
                let method = call.method.to_string();
                if BORROWING.contains(&method.as_str()) {
                    return Some((call, method));
                }
                if !KEEPING.contains(&method.as_str()) {
                    return None;
                }
                e = &call.receiver;
            }
            syn::Expr::Paren(p) => e = &p.expr,
            _ => return None,
        }
    }
}
