//! Expressions that contain `.await`: the await itself (a schedule block, then a resume block
//! that polls the task), `?`, blocks, assignments (`place op= value` in `op_assign`), `&&`/`||`
//! (jumps plus a result temporary), and every other expression by spilling the operands
//! evaluated before the last await into temporaries, left to right, so evaluation order is
//! Rust's.

use super::Lowerer;
use super::ir::{BindingId, LStmt, Term};
use super::verbatim::{self, Operand};
use crate::syntax::{self, contains_await, macro_args};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::Expr;
use syn::spanned::Spanned;

impl Lowerer<'_> {
    /// Lower an expression that contains awaits; returns what to write where its value is used.
    pub(super) fn lower_expr(&mut self, e: &Expr, want: bool) -> Operand {
        if !want
            && let Expr::Assign(a) = e
            && let Some(b) = self.plain_local(&a.left)
        {
            self.lower_assign_def(a, b);
            return Operand::plain(quote!(()));
        }
        if !contains_await(e) {
            return self.verbatim_expr(e);
        }
        match e {
            Expr::Await(a) => self.lower_await(a),
            Expr::Paren(p) => {
                let inner = self.lower_expr(&p.expr, true);
                inner.map(|t| quote!((#t)))
            }
            Expr::Group(g) => self.lower_expr(&g.expr, want),
            Expr::Try(t) => {
                let inner = self.lower_expr(&t.expr, true);
                let span = t.question_token.span;
                inner.map(|x| verbatim::try_tokens(self.rt, x, span))
            }
            Expr::Block(b) if b.label.is_none() => {
                self.push_scope();
                let v = self.lower_stmts(&b.block.stmts, true);
                self.pop_scope();
                self.spill_value(v, b.span(), want)
            }
            Expr::Block(b) => self.lower_labeled_block(b, want),
            Expr::If(i) => self.lower_if(i, want),
            Expr::Match(m) => self.lower_match(m, want),
            Expr::Loop(l) => self.lower_loop(l, want),
            Expr::While(w) => self.lower_while(w),
            Expr::ForLoop(f) => self.lower_for(f),
            Expr::Break(b) => self.lower_break(b),
            Expr::Continue(c) => self.lower_continue(c),
            Expr::Return(r) => {
                let op = match &r.expr {
                    Some(v) => self.lower_expr(v, true),
                    None => Operand::plain(quote!(())),
                };
                self.terminate_dead(Term::Return { tokens: op.tokens, uses: op.uses, jumps: op.jumps });
                Operand::plain(quote!(::core::unreachable!()))
            }
            Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_) | syn::BinOp::Or(_)) => self.lower_lazy_bool(b),
            Expr::Binary(b) if is_assign_op(&b.op) => self.lower_op_assign(b),
            Expr::Assign(a) => {
                // `place = value`: Rust evaluates the value, then the place.
                let mut c = a.clone();
                let mut rhs = self.lower_expr(&a.right, true);
                if contains_await(&a.left) {
                    if !is_place_or_literal(&a.right) && !rhs.is_single_use() {
                        let span = a.right.span();
                        let t = self.temp("value", span);
                        let id = self.ident_of(t).clone();
                        let tokens = rhs.tokens.clone();
                        self.push_code(Operand { tokens: quote_spanned!(span=> let #id = #tokens;), ..rhs }, vec![t]);
                        rhs = Operand { tokens: quote!(#id), uses: vec![t], jumps: Vec::new() };
                    }
                    let lhs = self.lower_expr(&a.left, true);
                    *c.left = Expr::Verbatim(lhs.tokens.clone());
                    rhs.uses.extend(lhs.uses);
                    rhs.jumps.extend(lhs.jumps);
                }
                *c.right = Expr::Verbatim(rhs.tokens.clone());
                let v = self.verbatim_expr(&Expr::Assign(c));
                rhs.then(v)
            }
            Expr::Let(l) => {
                self.cx
                    .error_spanned_by(l, "`let` with an `.await` can only stand as the condition of `if` or `while`");
                Operand::plain(quote!(false))
            }
            _ => self.lower_compound(e),
        }
    }

    pub(super) fn lower_await(&mut self, a: &syn::ExprAwait) -> Operand {
        let base = self.lower_expr(&a.base, true);
        let span = a.base.span();
        let task = self.temp("task", span);
        let task_ident = self.ident_of(task).clone();
        let base_tokens = base.tokens.clone();
        let p = self.private(span);
        let tokens = quote_spanned!(span=> let #task_ident = #p::task(#base_tokens););
        self.push_code(Operand { tokens, ..base }, vec![task]);
        let resume = self.new_block();
        self.cfg[resume].resume_of = Some(self.next_await);
        self.next_await = self.next_await.next();
        self.terminate(Term::Await { resume });
        self.enter(resume);
        let result = self.temp("await", a.await_token.span);
        self.push(LStmt::Poll { task, result, span: a.span(), key: super::await_key(&a.base) });
        let id = self.ident_of(result).clone();
        Operand { tokens: quote!(#id), uses: vec![result], jumps: Vec::new() }
    }

    /// If the value is wanted, keep it in a temporary so it can cross into the join block.
    pub(super) fn spill_value(&mut self, v: Option<Operand>, span: Span, want: bool) -> Operand {
        match v {
            Some(op) if want => {
                if op.is_single_use() {
                    return op;
                }
                let t = self.temp("value", span);
                let id = self.ident_of(t).clone();
                let tokens = op.tokens.clone();
                self.push_code(Operand { tokens: quote!(let #id = #tokens;), ..op }, vec![t]);
                Operand { tokens: quote!(#id), uses: vec![t], jumps: Vec::new() }
            }
            Some(op) => {
                if !op.is_trivial() {
                    let tokens = op.tokens.clone();
                    self.push_code(Operand { tokens: quote!(#tokens;), ..op }, Vec::new());
                }
                Operand::plain(quote!(()))
            }
            None => Operand::plain(quote!(())),
        }
    }

    /// Assign a branch's value to the shared result temporary.
    pub(super) fn assign_result(&mut self, result: Option<BindingId>, v: Option<Operand>) {
        match (result, v) {
            (Some(r), Some(op)) => {
                let id = self.ident_of(r).clone();
                let tokens = op.tokens.clone();
                self.push_code(Operand { tokens: quote!(let #id = #tokens;), ..op }, vec![r]);
            }
            (Some(r), None) => {
                let id = self.ident_of(r).clone();
                self.push_code(Operand::plain(quote!(let #id = ();)), vec![r]);
            }
            (None, Some(op)) => {
                if !op.is_trivial() {
                    let tokens = op.tokens.clone();
                    self.push_code(Operand { tokens: quote!(#tokens;), ..op }, Vec::new());
                }
            }
            (None, None) => {}
        }
    }

    pub(super) fn result_operand(&self, result: Option<BindingId>) -> Operand {
        match result {
            Some(r) => {
                let id = self.ident_of(r).clone();
                Operand { tokens: quote!(#id), uses: vec![r], jumps: Vec::new() }
            }
            None => Operand::plain(quote!(())),
        }
    }

    pub(super) fn lower_lazy_bool(&mut self, b: &syn::ExprBinary) -> Operand {
        let left = self.lower_expr(&b.left, true);
        let t = self.temp("bool", b.op.span());
        let id = self.ident_of(t).clone();
        let lt = left.tokens.clone();
        self.push_code(Operand { tokens: quote!(let #id: bool = #lt;), ..left }, vec![t]);
        let rhs_b = self.new_block();
        let skip_b = self.new_block();
        let join = self.new_block();
        let is_and = matches!(b.op, syn::BinOp::And(_));
        let (then, els) = if is_and { (rhs_b, skip_b) } else { (skip_b, rhs_b) };
        self.set_term(Term::If { cond: quote!(#id), uses: vec![t], defs: Vec::new(), then, els });
        self.enter(rhs_b);
        let right = self.lower_expr(&b.right, true);
        let rt = right.tokens.clone();
        self.push_code(Operand { tokens: quote!(let #id: bool = #rt;), ..right }, vec![t]);
        self.terminate(Term::Goto(join));
        self.enter(skip_b);
        self.push_code(Operand { tokens: quote!(let #id: bool = #id;), uses: vec![t], jumps: Vec::new() }, vec![t]);
        self.terminate(Term::Goto(join));
        self.enter(join);
        Operand { tokens: quote!(#id), uses: vec![t], jumps: Vec::new() }
    }

    /// Any other expression: evaluate its operands left to right; those evaluated before the
    /// last one that awaits are kept in temporaries (unless they are plain places or literals).
    pub(super) fn lower_compound(&mut self, e: &Expr) -> Operand {
        let mut e = e.clone();
        let collected;
        {
            let mut subs: Vec<&mut Expr> = Vec::new();
            let mut mac_args: Option<(syn::Macro, syntax::MacroArgs)> = None;
            match &mut e {
                Expr::Array(a) => subs.extend(a.elems.iter_mut()),
                Expr::Tuple(t) => subs.extend(t.elems.iter_mut()),
                Expr::Call(c) => {
                    subs.push(&mut c.func);
                    subs.extend(c.args.iter_mut());
                }
                Expr::MethodCall(m) => {
                    subs.push(&mut m.receiver);
                    subs.extend(m.args.iter_mut());
                }
                Expr::Binary(b) => {
                    subs.push(&mut b.left);
                    subs.push(&mut b.right);
                }
                Expr::Unary(u) => subs.push(&mut u.expr),
                Expr::Reference(r) => subs.push(&mut r.expr),
                Expr::Cast(c) => subs.push(&mut c.expr),
                Expr::Field(f) => subs.push(&mut f.base),
                Expr::Index(i) => {
                    subs.push(&mut i.expr);
                    subs.push(&mut i.index);
                }
                Expr::Range(r) => {
                    if let Some(s) = &mut r.start {
                        subs.push(s);
                    }
                    if let Some(s) = &mut r.end {
                        subs.push(s);
                    }
                }
                Expr::Repeat(r) => subs.push(&mut r.expr),
                Expr::Struct(s) => {
                    for f in s.fields.iter_mut() {
                        subs.push(&mut f.expr);
                    }
                    if let Some(r) = &mut s.rest {
                        subs.push(r);
                    }
                }
                Expr::Macro(m) => {
                    if let Some(args) = macro_args(&m.mac) {
                        mac_args = Some((m.mac.clone(), args));
                    }
                }
                _ => {}
            }
            if let Some((orig, mut args)) = mac_args {
                let mut acc;
                {
                    // `name = value` (a named format argument): only the value is evaluated.
                    let mut subs: Vec<&mut Expr> = match &mut args {
                        syntax::MacroArgs::List(l) => l
                            .iter_mut()
                            .map(|e| {
                                let named =
                                    matches!(e, Expr::Assign(a) if matches!(&*a.left, Expr::Path(p) if p.path.get_ident().is_some()));
                                if !named {
                                    return e;
                                }
                                match e {
                                    Expr::Assign(a) => &mut *a.right,
                                    other => other,
                                }
                            })
                            .collect(),
                        syntax::MacroArgs::Repeat(a, b) => vec![a, b],
                    };
                    acc = self.lower_operands(&mut subs);
                    // The rest is rewritten here, once: the rebuilt macro is not rewritten again.
                    for sub in subs.iter_mut() {
                        if !matches!(sub, Expr::Verbatim(_)) {
                            let op = self.verbatim_expr(sub);
                            acc.uses.extend(op.uses);
                            acc.jumps.extend(op.jumps);
                            **sub = Expr::Verbatim(op.tokens);
                        }
                    }
                }
                // Names used by the macro outside its arguments (`{name}` in a format string).
                for u in self.format_capture_uses(&orig) {
                    if !acc.uses.contains(&u) {
                        acc.uses.push(u);
                    }
                }
                if let Expr::Macro(m) = &mut e {
                    m.mac = syntax::rebuild_macro(&orig, &args);
                }
                return Operand { tokens: quote!(#e), uses: acc.uses, jumps: acc.jumps };
            } else if subs.is_empty() {
                if let Expr::Macro(_) = &e {
                    // Reported by the checks: an unknown macro with `.await` inside.
                    return Operand::plain(quote!(::core::unreachable!()));
                }
                self.cx.error_spanned_by(
                    &e,
                    "this kind of expression cannot contain `.await` in an orchestrator: bind the awaited value first with `let v = … .await;`",
                );
                return Operand::plain(quote!(()));
            } else {
                collected = self.lower_operands(&mut subs);
            }
        }
        let v = self.verbatim_expr(&e);
        collected.then(v)
    }

    /// Lower operands in place (replacing them with `Expr::Verbatim`); returns the collected
    /// uses and jumps of the lowered parts.
    pub(super) fn lower_operands(&mut self, subs: &mut [&mut Expr]) -> Operand {
        let last = subs.iter().rposition(|e| contains_await(e));
        let mut acc = Operand::plain(TokenStream::new());
        let Some(last) = last else { return acc };
        for (i, sub) in subs.iter_mut().enumerate() {
            if i < last {
                if is_place_or_literal(sub) {
                    continue;
                }
                let op = self.lower_expr(sub, true);
                let span = sub.span();
                let t = self.temp("arg", span);
                let id = self.ident_of(t).clone();
                let tokens = op.tokens.clone();
                self.push_code(Operand { tokens: quote_spanned!(span=> let mut #id = #tokens;), ..op }, vec![t]);
                **sub = Expr::Verbatim(quote!(#id));
                acc.uses.push(t);
            } else if i == last {
                let op = self.lower_expr(sub, true);
                **sub = Expr::Verbatim(op.tokens.clone());
                acc.uses.extend(op.uses);
                acc.jumps.extend(op.jumps);
            }
        }
        acc
    }
}

fn is_assign_op(op: &syn::BinOp) -> bool {
    use syn::BinOp::*;
    matches!(
        op,
        AddAssign(_)
            | SubAssign(_)
            | MulAssign(_)
            | DivAssign(_)
            | RemAssign(_)
            | BitXorAssign(_)
            | BitAndAssign(_)
            | BitOrAssign(_)
            | ShlAssign(_)
            | ShrAssign(_)
    )
}

pub(super) fn is_place_or_literal(e: &Expr) -> bool {
    match e {
        // A closure is a value with no side effects to create: create it where it is used.
        Expr::Lit(_) | Expr::Path(_) | Expr::Closure(_) => true,
        Expr::Reference(r) => is_place_or_literal(&r.expr),
        Expr::Field(f) => is_place_or_literal(&f.base),
        Expr::Paren(p) => is_place_or_literal(&p.expr),
        Expr::Group(g) => is_place_or_literal(&g.expr),
        Expr::Verbatim(_) => true,
        _ => false,
    }
}
