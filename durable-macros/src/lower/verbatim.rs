//! Code that does not await stays as the user wrote it, with three rewrites: `return e` returns
//! through the step function, `e?` becomes a match that does the same, and `break`/`continue`
//! to a loop that spans an `.await` becomes a jump marker. Uses of locals are collected.

use super::Lowerer;
use super::ir::{BindingId, BindingKind, Jump, JumpValue};
use super::pattern::{PatBinding, pat_bindings};
use crate::parse::RuntimePath;
use crate::syntax::{MacroArgs, format_captures, macro_args, rebuild_macro, token_idents};
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{Expr, Stmt};

/// Code to put where a value is used, with the locals it uses and the jumps inside it.
#[derive(Clone)]
pub(super) struct Operand {
    pub tokens: TokenStream,
    pub uses: Vec<BindingId>,
    pub jumps: Vec<Jump>,
}

impl Operand {
    pub(super) fn plain(tokens: TokenStream) -> Self {
        Operand { tokens, uses: Vec::new(), jumps: Vec::new() }
    }
    pub(super) fn map(self, f: impl FnOnce(TokenStream) -> TokenStream) -> Self {
        Operand { tokens: f(self.tokens), ..self }
    }
    /// `next`'s tokens (which embed this operand's), with the uses and jumps of both.
    pub(super) fn then(mut self, next: Operand) -> Operand {
        self.uses.extend(next.uses);
        self.jumps.extend(next.jumps);
        Operand { tokens: next.tokens, uses: dedup(self.uses), jumps: self.jumps }
    }
    pub(super) fn is_trivial(&self) -> bool {
        let s = self.tokens.to_string();
        s.is_empty() || s == "()" || s == ":: core :: unreachable ! ()"
    }
    /// A single identifier (a temporary): no need to copy it into another one.
    pub(super) fn is_single_use(&self) -> bool {
        let v: Vec<TokenTree> = self.tokens.clone().into_iter().collect();
        v.len() == 1 && matches!(v[0], TokenTree::Ident(_))
    }
}

fn dedup(v: Vec<BindingId>) -> Vec<BindingId> {
    let mut out = Vec::with_capacity(v.len());
    for b in v {
        if !out.contains(&b) {
            out.push(b);
        }
    }
    out
}

/// `inner?`: a match that returns the residual, converted, through the step function.
pub(super) fn try_tokens(rt: &RuntimePath, inner: TokenStream, span: Span) -> TokenStream {
    let p = rt.private(span);
    quote_spanned! {span=>
        match #p::Branch::branch(#inner) {
            ::core::ops::ControlFlow::Continue(__durable_ok) => __durable_ok,
            ::core::ops::ControlFlow::Break(__durable_residual) => {
                return #p::Step::Done(
                    #p::FromResidual::from_residual(__durable_residual),
                );
            }
        }
    }
}

impl Lowerer<'_> {
    pub(super) fn verbatim_expr(&mut self, e: &Expr) -> Operand {
        let uses = self.collect_uses(|c| c.visit_expr(e));
        let mut e = e.clone();
        let jumps = self.rewrite(|r| r.visit_expr_mut(&mut e));
        Operand { tokens: e.into_token_stream(), uses, jumps }
    }

    /// A statement without `.await`: its code, and the bindings a `let` introduces.
    pub(super) fn verbatim_stmt(&mut self, s: &Stmt) -> (Operand, Vec<PatBinding>) {
        let uses = self.collect_uses(|c| match s {
            Stmt::Local(l) => {
                if let Some(init) = &l.init {
                    c.visit_expr(&init.expr);
                    if let Some((_, d)) = &init.diverge {
                        c.visit_expr(d);
                    }
                }
            }
            Stmt::Item(_) => {}
            other => c.visit_stmt(other),
        });
        let defs = match s {
            Stmt::Local(l) => pat_bindings(&l.pat),
            _ => Vec::new(),
        };
        let mut s = s.clone();
        let jumps = self.rewrite(|r| match &mut s {
            Stmt::Item(_) => {}
            other => r.visit_stmt_mut(other),
        });
        (Operand { tokens: s.into_token_stream(), uses, jumps }, defs)
    }

    /// Locals named by `{name}` captures in a macro's string-literal arguments.
    pub(super) fn format_capture_uses(&self, m: &syn::Macro) -> Vec<BindingId> {
        let mut out = Vec::new();
        let Some(args) = macro_args(m) else { return out };
        for a in args.exprs() {
            if let Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) = a {
                let mut ids = Vec::new();
                format_captures(&s.token(), &mut ids);
                for i in ids {
                    if let Some(b) = self.resolve(&i.to_string())
                        && self.bindings[b].kind != BindingKind::Ctx
                        && !out.contains(&b)
                    {
                        out.push(b);
                    }
                }
            }
        }
        out
    }

    fn collect_uses(&self, f: impl FnOnce(&mut UseCollector<'_, '_>)) -> Vec<BindingId> {
        let mut c = UseCollector { lw: self, inner: vec![Vec::new()], uses: Vec::new() };
        f(&mut c);
        c.uses
    }

    fn rewrite(&mut self, f: impl FnOnce(&mut Rewriter<'_, '_>)) -> Vec<Jump> {
        let mut r = Rewriter { lw: self, inner_loops: Vec::new(), jumps: Vec::new() };
        f(&mut r);
        r.jumps
    }
}

struct UseCollector<'l, 'a> {
    lw: &'l Lowerer<'a>,
    inner: Vec<Vec<String>>,
    uses: Vec<BindingId>,
}

impl UseCollector<'_, '_> {
    fn use_name(&mut self, name: &str) {
        if self.inner.iter().any(|s| s.iter().any(|n| n == name)) {
            return;
        }
        if let Some(b) = self.lw.resolve(name)
            && self.lw.bindings[b].kind != BindingKind::Ctx
            && !self.uses.contains(&b)
        {
            self.uses.push(b);
        }
    }
    fn bind_pat(&mut self, p: &syn::Pat) {
        let names: Vec<String> = pat_bindings(p).into_iter().map(|b| b.ident.to_string()).collect();
        self.inner.last_mut().expect("scope").extend(names);
    }
    fn visit_cond(&mut self, e: &Expr) {
        match e {
            Expr::Let(l) => {
                self.visit_expr(&l.expr);
                self.bind_pat(&l.pat);
            }
            Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_)) => {
                self.visit_cond(&b.left);
                self.visit_cond(&b.right);
            }
            other => self.visit_expr(other),
        }
    }
}

impl<'ast> Visit<'ast> for UseCollector<'_, '_> {
    fn visit_block(&mut self, b: &'ast syn::Block) {
        self.inner.push(Vec::new());
        for s in &b.stmts {
            match s {
                Stmt::Local(l) => {
                    if let Some(init) = &l.init {
                        self.visit_expr(&init.expr);
                        if let Some((_, d)) = &init.diverge {
                            self.visit_expr(d);
                        }
                    }
                    self.bind_pat(&l.pat);
                }
                Stmt::Item(_) => {}
                other => self.visit_stmt(other),
            }
        }
        self.inner.pop();
    }
    fn visit_expr_closure(&mut self, c: &'ast syn::ExprClosure) {
        self.inner.push(Vec::new());
        for p in &c.inputs {
            self.bind_pat(p);
        }
        self.visit_expr(&c.body);
        self.inner.pop();
    }
    fn visit_arm(&mut self, a: &'ast syn::Arm) {
        self.inner.push(Vec::new());
        match &a.pat {
            syn::Pat::Guard(g) => {
                self.bind_pat(&g.pat);
                self.visit_expr(&g.guard);
            }
            p => self.bind_pat(p),
        }
        self.visit_expr(&a.body);
        self.inner.pop();
    }
    fn visit_expr_if(&mut self, i: &'ast syn::ExprIf) {
        self.inner.push(Vec::new());
        self.visit_cond(&i.cond);
        self.visit_block(&i.then_branch);
        self.inner.pop();
        if let Some((_, e)) = &i.else_branch {
            self.visit_expr(e);
        }
    }
    fn visit_expr_while(&mut self, w: &'ast syn::ExprWhile) {
        self.inner.push(Vec::new());
        self.visit_cond(&w.cond);
        self.visit_block(&w.body);
        self.inner.pop();
    }
    fn visit_expr_let(&mut self, l: &'ast syn::ExprLet) {
        // A `let` outside an `if`/`while` condition (e.g. in `matches!`-like positions).
        self.visit_expr(&l.expr);
    }
    fn visit_expr_for_loop(&mut self, f: &'ast syn::ExprForLoop) {
        self.visit_expr(&f.expr);
        self.inner.push(Vec::new());
        self.bind_pat(&f.pat);
        self.visit_block(&f.body);
        self.inner.pop();
    }
    fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
        if p.qself.is_none() && p.path.leading_colon.is_none() && p.path.segments.len() == 1 {
            let seg = &p.path.segments[0];
            if seg.arguments.is_none() {
                self.use_name(&seg.ident.to_string());
            }
        }
    }
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        if let Some(args) = macro_args(m) {
            for a in args.exprs() {
                if let Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) = a {
                    let mut ids = Vec::new();
                    format_captures(&s.token(), &mut ids);
                    for i in ids {
                        self.use_name(&i.to_string());
                    }
                }
                self.visit_expr(a);
            }
        } else {
            let mut ids = Vec::new();
            token_idents(&m.tokens, &mut ids);
            for i in ids {
                self.use_name(&i.to_string());
            }
        }
    }
    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

struct Rewriter<'l, 'a> {
    lw: &'l mut Lowerer<'a>,
    /// Loops and labeled blocks inside the verbatim code: (label, is_loop).
    inner_loops: Vec<(Option<String>, bool)>,
    jumps: Vec<Jump>,
}

impl Rewriter<'_, '_> {
    /// Whether a `break`/`continue` with this label stays inside the verbatim code.
    fn is_inner(&self, label: &Option<syn::Lifetime>) -> bool {
        match label {
            Some(l) => {
                let n = l.ident.to_string();
                self.inner_loops.iter().any(|(lab, _)| lab.as_deref() == Some(n.as_str()))
            }
            None => self.inner_loops.iter().any(|(_, is_loop)| *is_loop),
        }
    }

    fn outer_target(&self, label: &Option<syn::Lifetime>, is_continue: bool) -> Option<super::LoopCtx> {
        match label {
            Some(l) => {
                let n = l.ident.to_string();
                self.lw.loops.iter().rev().find(|c| c.label.as_deref() == Some(n.as_str())).cloned()
            }
            None => self.lw.loops.iter().rev().find(|c| c.head.is_some()).cloned(),
        }
        .filter(|c| !is_continue || c.head.is_some())
    }
}

impl VisitMut for Rewriter<'_, '_> {
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        match e {
            Expr::Closure(_) | Expr::Async(_) | Expr::Const(_) | Expr::Verbatim(_) => {}
            Expr::Return(r) => {
                if let Some(v) = &mut r.expr {
                    self.visit_expr_mut(v);
                }
                let span = r.return_token.span;
                let v = match &r.expr {
                    Some(v) => v.to_token_stream(),
                    None => quote!(()),
                };
                let p = self.lw.private(span);
                *e = Expr::Verbatim(quote_spanned!(span=> return #p::Step::Done(#v)));
            }
            Expr::Try(t) => {
                self.visit_expr_mut(&mut t.expr);
                let inner = t.expr.to_token_stream();
                *e = Expr::Verbatim(try_tokens(self.lw.rt, inner, t.question_token.span));
            }
            Expr::Loop(l) => {
                self.inner_loops.push((l.label.as_ref().map(|l| l.name.ident.to_string()), true));
                self.visit_block_mut(&mut l.body);
                self.inner_loops.pop();
            }
            Expr::While(w) => {
                self.visit_expr_mut(&mut w.cond);
                self.inner_loops.push((w.label.as_ref().map(|l| l.name.ident.to_string()), true));
                self.visit_block_mut(&mut w.body);
                self.inner_loops.pop();
            }
            Expr::ForLoop(f) => {
                self.visit_expr_mut(&mut f.expr);
                self.inner_loops.push((f.label.as_ref().map(|l| l.name.ident.to_string()), true));
                self.visit_block_mut(&mut f.body);
                self.inner_loops.pop();
            }
            Expr::Block(b) if b.label.is_some() => {
                self.inner_loops.push((b.label.as_ref().map(|l| l.name.ident.to_string()), false));
                self.visit_block_mut(&mut b.block);
                self.inner_loops.pop();
            }
            Expr::Break(b) => {
                if let Some(v) = &mut b.expr {
                    self.visit_expr_mut(v);
                }
                if self.is_inner(&b.label) {
                    return;
                }
                let Some(target) = self.outer_target(&b.label, false) else { return };
                let marker = self.lw.next_marker();
                let value = b.expr.as_ref().map(|v| v.to_token_stream());
                self.jumps.push(Jump {
                    marker: marker.clone(),
                    target: target.exit,
                    value: value.map(|tokens| JumpValue { result: target.result, tokens }),
                });
                *e = Expr::Verbatim(quote!(#marker));
            }
            Expr::Continue(c) => {
                if self.is_inner(&c.label) {
                    return;
                }
                let Some(target) = self.outer_target(&c.label, true) else { return };
                let marker = self.lw.next_marker();
                self.jumps.push(Jump { marker: marker.clone(), target: target.head.expect("loop head"), value: None });
                *e = Expr::Verbatim(quote!(#marker));
            }
            Expr::Macro(m) => {
                if needs_rewrite(&m.mac.tokens)
                    && let Some(mut args) = macro_args(&m.mac)
                {
                    {
                        let subs: Vec<&mut Expr> = match &mut args {
                            MacroArgs::List(l) => l.iter_mut().collect(),
                            MacroArgs::Repeat(a, b) => vec![a, b],
                        };
                        for s in subs {
                            self.visit_expr_mut(s);
                        }
                    }
                    m.mac = rebuild_macro(&m.mac, &args);
                }
            }
            _ => syn::visit_mut::visit_expr_mut(self, e),
        }
    }

    fn visit_stmt_macro_mut(&mut self, s: &mut syn::StmtMacro) {
        if needs_rewrite(&s.mac.tokens)
            && let Some(mut args) = macro_args(&s.mac)
        {
            {
                let subs: Vec<&mut Expr> = match &mut args {
                    MacroArgs::List(l) => l.iter_mut().collect(),
                    MacroArgs::Repeat(a, b) => vec![a, b],
                };
                for s in subs {
                    self.visit_expr_mut(s);
                }
            }
            s.mac = rebuild_macro(&s.mac, &args);
        }
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}

/// Whether macro tokens contain something the rewriter must see (`return`, `?`, jumps).
fn needs_rewrite(ts: &TokenStream) -> bool {
    ts.clone().into_iter().any(|tt| match tt {
        TokenTree::Ident(i) => i == "return" || i == "break" || i == "continue",
        TokenTree::Punct(p) => p.as_char() == '?',
        TokenTree::Group(g) => needs_rewrite(&g.stream()),
        TokenTree::Literal(_) => false,
    })
}
