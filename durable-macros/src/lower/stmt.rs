//! Statements: the body's statement list, `let` (with `else`), assignments that define a local,
//! items, and `return`/`break`/`continue` at statement level.

use super::Lowerer;
use super::ir::{BindingId, BindingKind, LStmt, LetParts, MatchArm, Term};
use super::pattern::pat_bindings;
use super::verbatim::Operand;
use crate::syntax::{self, contains_await};
use proc_macro2::Span;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Stmt};

impl Lowerer<'_> {
    /// Lower the body: statements, then the tail expression is returned.
    pub(super) fn lower_body(&mut self, block: &syn::Block) {
        let tail = self.lower_stmts(&block.stmts, true);
        let op = tail.unwrap_or_else(|| Operand::plain(quote!(())));
        let span = block.stmts.last().map(|s| s.span()).unwrap_or_else(Span::call_site);
        let tokens = op.tokens;
        self.terminate(Term::Return { tokens: quote_spanned!(span=> #tokens), uses: op.uses, jumps: op.jumps });
    }

    /// Lower statements; with `want_value`, a final expression without `;` is the block's value.
    pub(super) fn lower_stmts(&mut self, stmts: &[Stmt], want_value: bool) -> Option<Operand> {
        let n = stmts.len();
        for (i, stmt) in stmts.iter().enumerate() {
            let last = i + 1 == n;
            match stmt {
                Stmt::Expr(e, None) if last && want_value => {
                    return Some(self.lower_expr(e, true));
                }
                _ => self.lower_stmt(stmt),
            }
        }
        None
    }

    pub(super) fn lower_stmt(&mut self, stmt: &Stmt) {
        // Statements that always leave the block end it, so nothing after them is typed in.
        if let Stmt::Expr(e @ (Expr::Return(_) | Expr::Break(_) | Expr::Continue(_)), _) = stmt {
            self.lower_jump_stmt(e);
            return;
        }
        if let Stmt::Item(item) = stmt {
            self.cfg.items.push(quote!(#item));
            return;
        }
        // `x = value;` on a plain local defines it (it may have been declared with `let x;`).
        if let Stmt::Expr(Expr::Assign(a), _) = stmt
            && let Some(b) = self.plain_local(&a.left)
        {
            self.lower_assign_def(a, b);
            return;
        }
        if !syntax::stmt_contains_await(stmt) {
            let (op, defs) = self.verbatim_stmt(stmt);
            let defs = self.declare_pat(&defs);
            let parts = self.let_parts(stmt);
            self.push(LStmt::Code {
                tokens: op.tokens,
                uses: op.uses,
                defs,
                jumps: op.jumps,
                let_parts: parts,
                assigns: Vec::new(),
            });
            return;
        }
        match stmt {
            Stmt::Local(local) => {
                let init = local.init.as_ref().expect("a `let` with an await has an initializer");
                let op = self.lower_expr(&init.expr, true);
                if let Some((_, diverge)) = init.diverge.as_ref().filter(|(_, d)| contains_await(d)) {
                    self.lower_let_else(local, op, diverge);
                    return;
                }
                let mut l = local.clone();
                if let Some(i) = &mut l.init {
                    *i.expr = Expr::Verbatim(op.tokens.clone());
                }
                let stmt = Stmt::Local(l);
                let (v, defs) = self.verbatim_stmt(&stmt);
                let defs = self.declare_pat(&defs);
                let parts = self.let_parts(&stmt);
                let op = op.then(v);
                self.push(LStmt::Code {
                    tokens: op.tokens,
                    uses: op.uses,
                    defs,
                    jumps: op.jumps,
                    let_parts: parts,
                    assigns: Vec::new(),
                });
            }
            Stmt::Expr(e, _) => {
                let op = self.lower_expr(e, false);
                if !op.is_trivial() {
                    let tokens = op.tokens.clone();
                    self.push_code(Operand { tokens: quote!(#tokens;), ..op }, Vec::new());
                }
            }
            Stmt::Macro(m) => {
                let e = Expr::Macro(syn::ExprMacro { attrs: m.attrs.clone(), mac: m.mac.clone() });
                let op = self.lower_expr(&e, false);
                let tokens = op.tokens.clone();
                self.push_code(Operand { tokens: quote!(#tokens;), ..op }, Vec::new());
            }
            Stmt::Item(_) => {}
        }
    }

    /// The parts of a verbatim `let` (already rewritten), for shadowing fix-ups.
    pub(super) fn let_parts(&mut self, stmt: &Stmt) -> Option<Box<LetParts>> {
        let Stmt::Local(l) = stmt else { return None };
        let init = l.init.as_ref()?;
        let pat = &l.pat;
        let init_op = self.verbatim_expr(&init.expr);
        let diverge = init.diverge.as_ref().map(|(_, d)| self.verbatim_expr(d).tokens);
        Some(Box::new(LetParts { pat: quote!(#pat), init: init_op.tokens, diverge }))
    }

    /// `let PAT = v else { … .await … };` becomes a `match` whose first arm continues with the
    /// rest of the enclosing block (inlined there, with the pattern's bindings in scope).
    pub(super) fn lower_let_else(&mut self, local: &syn::Local, value: Operand, diverge: &Expr) {
        let cont = self.new_block();
        let els = self.new_block();
        let binds = pat_bindings(&local.pat);
        let defs = self.declare_pat(&binds);
        let pat = &local.pat;
        let cur = self.cur;
        if !value.jumps.is_empty() {
            self.cx.error_spanned_by(&local.pat, "`break`/`continue` in a `let … else` initializer that awaits is not supported: compute the value first");
        }
        self.cfg[cur].term = Term::Match {
            scrut: value.tokens,
            uses: value.uses,
            arms: vec![
                MatchArm { pat: quote!(#pat), guard: None, defs, target: cont },
                MatchArm { pat: quote!(_), guard: None, defs: Vec::new(), target: els },
            ],
        };
        self.enter(els);
        let v = self.lower_expr(diverge, false);
        if !v.is_trivial() {
            let t = v.tokens.clone();
            self.push_code(Operand { tokens: quote!(#t;), ..v }, Vec::new());
        }
        // The `else` block diverges; if it falls through, rustc reports it on the user's code.
        self.terminate(Term::Dead);
        self.enter(cont);
    }

    /// A local named by a plain path (`x`), if it is one this lowering tracks.
    pub(super) fn plain_local(&self, e: &Expr) -> Option<BindingId> {
        let Expr::Path(p) = e else { return None };
        if p.qself.is_some() || p.path.segments.len() != 1 || !p.path.segments[0].arguments.is_none() {
            return None;
        }
        let b = self.resolve(&p.path.segments[0].ident.to_string())?;
        matches!(self.bindings[b].kind, BindingKind::User).then_some(b)
    }

    /// `x = value;` as a definition of `x`.
    pub(super) fn lower_assign_def(&mut self, a: &syn::ExprAssign, b: BindingId) {
        let rhs = self.lower_expr(&a.right, true);
        let left = &a.left;
        let (eq, rt) = (&a.eq_token, rhs.tokens.clone());
        self.push(LStmt::Code {
            tokens: quote!(#left #eq #rt;),
            uses: rhs.uses,
            defs: Vec::new(),
            jumps: rhs.jumps,
            let_parts: None,
            assigns: vec![b],
        });
    }

    pub(super) fn lower_jump_stmt(&mut self, e: &Expr) {
        let op = match e {
            Expr::Return(r) => {
                let op = match &r.expr {
                    Some(v) => self.lower_expr(v, true),
                    None => Operand::plain(quote!(())),
                };
                let span = r.return_token.span;
                let t = op.tokens;
                self.terminate_dead(Term::Return { tokens: quote_spanned!(span=> #t), uses: op.uses, jumps: op.jumps });
                return;
            }
            Expr::Break(b) => self.lower_break(b),
            Expr::Continue(c) => self.lower_continue(c),
            _ => unreachable!(),
        };
        let _ = op;
    }
}
