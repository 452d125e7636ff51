//! Control flow that spans an `.await`: `if` (with `let` chains), `match`, `loop`, `while`,
//! `for`, labeled blocks, `break` and `continue`. A construct whose only await is in its
//! condition or scrutinee keeps its body verbatim.

use super::ir::{BindingId, BlockId, MatchArm, Term};
use super::pattern::{PatBinding, flatten_and, has_let, let_chain_bindings, pat_bindings};
use super::verbatim::Operand;
use super::{LoopCtx, Lowerer};
use crate::syntax::{self, contains_await};
use quote::{quote, quote_spanned};
use syn::Expr;
use syn::spanned::Spanned;

impl Lowerer<'_> {
    /// A condition of `if`/`while`: lowered if it awaits; `let` chains stay verbatim and their
    /// bindings are returned (they are in scope in the `then` branch / loop body).
    pub(super) fn lower_cond(&mut self, cond: &Expr) -> (Operand, Vec<PatBinding>) {
        if let Expr::Let(l) = cond {
            let scrut = self.lower_expr(&l.expr, true);
            let mut c = l.clone();
            *c.expr = Expr::Verbatim(scrut.tokens.clone());
            let v = self.verbatim_expr(&Expr::Let(c));
            return (scrut.then(v), pat_bindings(&l.pat));
        }
        if has_let(cond) {
            if contains_await(cond) {
                self.cx.error_spanned_by(
                    cond,
                    "an `.await` inside a `while let … &&` chain is not supported in an orchestrator: bind the awaited value first with `let` inside a `loop`",
                );
            }
            let v = self.verbatim_expr(cond);
            let mut bs = Vec::new();
            let_chain_bindings(cond, &mut bs);
            return (v, bs);
        }
        (self.lower_expr(cond, true), Vec::new())
    }

    pub(super) fn lower_if(&mut self, i: &syn::ExprIf, want: bool) -> Operand {
        let branches_await = syntax::block_contains_await(&i.then_branch)
            || i.else_branch.as_ref().is_some_and(|(_, e)| contains_await(e));
        let awaiting_chain = has_let(&i.cond) && contains_await(&i.cond) && matches!(&*i.cond, Expr::Binary(_));
        if !branches_await && !awaiting_chain {
            // Only the condition awaits: lower it, keep the rest verbatim.
            let (cond, _) = self.lower_cond(&i.cond);
            let mut c = i.clone();
            *c.cond = Expr::Verbatim(cond.tokens.clone());
            let v = self.verbatim_expr(&Expr::If(c));
            return cond.then(v);
        }
        let result = if want { Some(self.temp("value", i.if_token.span)) } else { None };
        self.lower_if_into(i, result);
        self.result_operand(result)
    }

    pub(super) fn lower_if_into(&mut self, i: &syn::ExprIf, result: Option<BindingId>) {
        if has_let(&i.cond) && contains_await(&i.cond) && matches!(&*i.cond, Expr::Binary(_)) {
            self.lower_if_chain(i, result);
            return;
        }
        let (cond, binds) = self.lower_cond(&i.cond);
        let then_b = self.new_block();
        let else_b = self.new_block();
        let join = self.new_block();
        // Bindings of `if let` are declared in the then-branch's scope.
        self.push_scope();
        let defs = self.declare_pat(&binds);
        let cond_tokens = cond.tokens.clone();
        // The condition's own code goes first in the current block.
        if !cond.jumps.is_empty() {
            self.cx.error_spanned_by(&i.cond, "`break`/`continue` inside the condition of an `if` that awaits is not supported: compute the condition first");
        }
        self.set_term(Term::If { cond: cond_tokens, uses: cond.uses, defs, then: then_b, els: else_b });
        self.enter(then_b);
        self.lower_branches(i, result, else_b, join);
    }

    /// `if let P = a && c && let Q = b { … }` whose conditions await: one test per conjunct,
    /// left to right, each failure jumping to the one `else`; the bindings of each `let` are in
    /// scope in the later conjuncts and in the branch.
    pub(super) fn lower_if_chain(&mut self, i: &syn::ExprIf, result: Option<BindingId>) {
        let mut conjuncts = Vec::new();
        flatten_and(&i.cond, &mut conjuncts);
        let else_b = self.new_block();
        let join = self.new_block();
        self.push_scope();
        for c in conjuncts {
            let next = self.new_block();
            let fail = self.new_block();
            let (cond, uses, defs) = match c {
                Expr::Let(l) => {
                    let op = self.lower_expr(&l.expr, true);
                    let binds = pat_bindings(&l.pat);
                    let defs = self.declare_pat(&binds);
                    let pat = &l.pat;
                    let t = op.tokens;
                    (quote!(let #pat = #t), op.uses, defs)
                }
                other => {
                    let op = self.lower_expr(other, true);
                    (op.tokens, op.uses, Vec::new())
                }
            };
            let cur = self.cur;
            self.cfg[cur].term = Term::If { cond, uses, defs, then: next, els: fail };
            self.enter(fail);
            self.terminate(Term::Goto(else_b));
            self.enter(next);
        }
        self.lower_branches(i, result, else_b, join);
    }

    /// From inside the `then` branch (its scope pushed): lower it, close its scope, lower the
    /// `else` in `else_b`, and continue at `join`.
    pub(super) fn lower_branches(
        &mut self,
        i: &syn::ExprIf,
        result: Option<BindingId>,
        else_b: BlockId,
        join: BlockId,
    ) {
        let v = self.lower_stmts(&i.then_branch.stmts, result.is_some());
        self.assign_result(result, v);
        self.terminate(Term::Goto(join));
        self.pop_scope();
        self.enter(else_b);
        self.lower_else(i, result);
        self.terminate(Term::Goto(join));
        self.enter(join);
    }

    /// The `else` part of an `if` that awaits, in the current block.
    pub(super) fn lower_else(&mut self, i: &syn::ExprIf, result: Option<BindingId>) {
        match &i.else_branch {
            Some((_, e)) => match &**e {
                Expr::If(inner) => {
                    if contains_await(e) {
                        self.lower_if_into(inner, result);
                    } else {
                        let v = self.verbatim_expr(e);
                        self.assign_result(result, Some(v));
                    }
                }
                Expr::Block(b) => {
                    self.push_scope();
                    let v = self.lower_stmts(&b.block.stmts, result.is_some());
                    self.pop_scope();
                    self.assign_result(result, v);
                }
                other => {
                    let v = self.lower_expr(other, result.is_some());
                    self.assign_result(result, Some(v));
                }
            },
            None => self.assign_result(result, None),
        }
    }

    pub(super) fn lower_match(&mut self, m: &syn::ExprMatch, want: bool) -> Operand {
        let scrut = self.lower_expr(&m.expr, true);
        let arms_await = m.arms.iter().any(|a| contains_await(&a.body));
        if !arms_await {
            let mut c = m.clone();
            *c.expr = Expr::Verbatim(scrut.tokens.clone());
            let v = self.verbatim_expr(&Expr::Match(c));
            return scrut.then(v);
        }
        let result = if want { Some(self.temp("value", m.match_token.span)) } else { None };
        let join = self.new_block();
        let mut arms = Vec::new();
        let mut uses = scrut.uses.clone();
        let mut bodies = Vec::new();
        for arm in &m.arms {
            let target = self.new_block();
            self.push_scope();
            let (pat, guard) = match &arm.pat {
                syn::Pat::Guard(g) => (&*g.pat, Some(&*g.guard)),
                p => (p, None),
            };
            let binds = pat_bindings(pat);
            let defs = self.declare_pat(&binds);
            let guard = guard.map(|g| {
                let op = self.verbatim_expr(g);
                uses.extend(op.uses.iter().copied().filter(|u| !defs.contains(u)));
                op.tokens
            });
            arms.push(MatchArm { pat: quote!(#pat), guard, defs, target });
            // Keep the arm's scope for lowering its body below.
            bodies.push((target, self.scopes.pop().expect("scope")));
        }
        if !scrut.jumps.is_empty() {
            self.cx.error_spanned_by(
                &m.expr,
                "`break`/`continue` inside a `match` scrutinee that awaits is not supported: compute the value first",
            );
        }
        self.set_term(Term::Match { scrut: scrut.tokens, uses, arms });
        for ((target, scope), arm) in bodies.into_iter().zip(&m.arms) {
            self.enter(target);
            self.scopes.push(scope);
            let v = match &*arm.body {
                Expr::Block(b) if b.label.is_none() && contains_await(&arm.body) => {
                    self.push_scope();
                    let v = self.lower_stmts(&b.block.stmts, result.is_some());
                    self.pop_scope();
                    v
                }
                body => Some(self.lower_expr(body, result.is_some())),
            };
            self.assign_result(result, v);
            self.terminate(Term::Goto(join));
            self.pop_scope();
        }
        self.enter(join);
        self.result_operand(result)
    }

    pub(super) fn lower_loop(&mut self, l: &syn::ExprLoop, want: bool) -> Operand {
        let head = self.new_block();
        let exit = self.new_block();
        let result = if want { Some(self.temp("value", l.loop_token.span)) } else { None };
        self.terminate(Term::Goto(head));
        self.enter(head);
        self.loops.push(LoopCtx { label: label_name(&l.label), head: Some(head), exit, result });
        self.push_scope();
        self.lower_stmts(&l.body.stmts, false);
        self.pop_scope();
        self.terminate(Term::Goto(head));
        self.loops.pop();
        self.enter(exit);
        self.result_operand(result)
    }

    pub(super) fn lower_labeled_block(&mut self, b: &syn::ExprBlock, want: bool) -> Operand {
        let exit = self.new_block();
        let result = if want { Some(self.temp("value", b.span())) } else { None };
        self.loops.push(LoopCtx { label: label_name(&b.label), head: None, exit, result });
        self.push_scope();
        let v = self.lower_stmts(&b.block.stmts, want);
        self.pop_scope();
        self.assign_result(result, v);
        self.terminate(Term::Goto(exit));
        self.loops.pop();
        self.enter(exit);
        self.result_operand(result)
    }

    pub(super) fn lower_while(&mut self, w: &syn::ExprWhile) -> Operand {
        let head = self.new_block();
        let exit = self.new_block();
        let body = self.new_block();
        self.terminate(Term::Goto(head));
        self.enter(head);
        self.push_scope();
        let (cond, binds) = self.lower_cond(&w.cond);
        let defs = self.declare_pat(&binds);
        let cur = self.cur;
        let done = self.new_block();
        self.cfg[done].term = Term::Goto(exit);
        self.cfg[cur].term = Term::If { cond: cond.tokens, uses: cond.uses, defs, then: body, els: done };
        self.loop_body(&w.label, head, exit, body, &w.body.stmts)
    }

    pub(super) fn lower_for(&mut self, f: &syn::ExprForLoop) -> Operand {
        let iter_expr = self.lower_expr(&f.expr, true);
        let span = f.expr.span();
        let it = self.temp("iter", span);
        let it_ident = self.ident_of(it).clone();
        let src = iter_expr.tokens.clone();
        let p = self.private(span);
        let tokens = quote_spanned!(span=>
            let mut #it_ident = {
                #[allow(unused_imports)]
                use #p::{IterSpecAny as _, IterSpecRange as _};
                (&mut &mut #p::IterWrap(::core::option::Option::Some(#src))).__durable_iter()
            };
        );
        self.push_code(Operand { tokens, ..iter_expr }, vec![it]);
        let head = self.new_block();
        let exit = self.new_block();
        let body = self.new_block();
        self.terminate(Term::Goto(head));
        self.enter(head);
        self.push_scope();
        let binds = pat_bindings(&f.pat);
        let defs = self.declare_pat(&binds);
        let pat = &f.pat;
        let cur = self.cur;
        // The exit is reached by a jump, so it is its own arm, after the body in source order
        // (rustc infers types in that order).
        let done = self.new_block();
        self.cfg[done].term = Term::Goto(exit);
        self.cfg[cur].term = Term::Match {
            scrut: quote_spanned!(span=> #p::next(&mut #it_ident)),
            uses: vec![it],
            arms: vec![
                MatchArm { pat: quote!(::core::option::Option::Some(#pat)), guard: None, defs, target: body },
                MatchArm { pat: quote!(::core::option::Option::None), guard: None, defs: Vec::new(), target: done },
            ],
        };
        self.loop_body(&f.label, head, exit, body, &f.body.stmts)
    }

    /// The body of a `while` or `for` whose head is lowered: run `stmts` in `body`, jump back to
    /// `head`, and go on at `exit` (with the loop's scope, opened at the head, closed).
    fn loop_body(
        &mut self,
        label: &Option<syn::Label>,
        head: BlockId,
        exit: BlockId,
        body: BlockId,
        stmts: &[syn::Stmt],
    ) -> Operand {
        self.enter(body);
        self.loops.push(LoopCtx { label: label_name(label), head: Some(head), exit, result: None });
        self.lower_stmts(stmts, false);
        self.terminate(Term::Goto(head));
        self.loops.pop();
        self.pop_scope();
        self.enter(exit);
        Operand::plain(quote!(()))
    }

    pub(super) fn find_loop(&self, label: &Option<syn::Lifetime>, is_continue: bool) -> Option<LoopCtx> {
        match label {
            Some(l) => {
                let name = l.ident.to_string();
                self.loops
                    .iter()
                    .rev()
                    .find(|c| c.label.as_deref() == Some(name.as_str()))
                    .filter(|c| !is_continue || c.head.is_some())
                    .cloned()
            }
            None => self.loops.iter().rev().find(|c| c.head.is_some()).cloned(),
        }
    }

    pub(super) fn lower_break(&mut self, b: &syn::ExprBreak) -> Operand {
        let Some(ctx) = self.find_loop(&b.label, false) else {
            self.cx.error_spanned_by(b, "`break` outside of a loop");
            return Operand::plain(quote!(()));
        };
        if let Some(v) = &b.expr {
            let op = self.lower_expr(v, true);
            match ctx.result {
                Some(r) => {
                    let id = self.ident_of(r).clone();
                    let tokens = op.tokens.clone();
                    self.push_code(Operand { tokens: quote!(let #id = #tokens;), ..op }, vec![r]);
                }
                None => {
                    if !op.is_trivial() {
                        let tokens = op.tokens.clone();
                        self.push_code(Operand { tokens: quote!(#tokens;), ..op }, Vec::new());
                    }
                }
            }
        }
        self.terminate_dead(Term::Goto(ctx.exit));
        Operand::plain(quote!(::core::unreachable!()))
    }

    pub(super) fn lower_continue(&mut self, c: &syn::ExprContinue) -> Operand {
        match self.find_loop(&c.label, true).and_then(|l| l.head) {
            Some(head) => self.terminate_dead(Term::Goto(head)),
            None => self.cx.error_spanned_by(c, "`continue` outside of a loop"),
        }
        Operand::plain(quote!(::core::unreachable!()))
    }
}

fn label_name(l: &Option<syn::Label>) -> Option<String> {
    l.as_ref().map(|l| l.name.ident.to_string())
}
