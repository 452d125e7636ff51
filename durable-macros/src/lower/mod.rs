//! The orchestrator compiler: an `async fn` body becomes a control-flow graph whose blocks are
//! split at `.await`s; `emit` then computes liveness and writes the state machine.
//!
//! Code without `.await` stays verbatim (with `return`, `?` and jumps out of it rewritten), so
//! the user's tokens, macros and format strings are untouched and errors land on them.

pub mod emit;
mod verbatim;

use crate::ctxt::Ctxt;
use crate::syntax::{self, PatBinding, contains_await, macro_args, pat_bindings};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Stmt};
pub use verbatim::Operand;

pub type Bid = usize;
pub type BlockId = usize;

#[derive(Clone, PartialEq)]
pub enum BindingKind {
    User,
    Temp,
    /// The orchestration context parameter: bound once, never saved.
    Ctx,
    /// The decoded input, typed from the signature.
    Input,
}

pub struct Binding {
    pub ident: syn::Ident,
    pub mutable: bool,
    pub kind: BindingKind,
}

/// A jump out of verbatim code (a `break`/`continue` to a loop that spans an `.await`), left as
/// a marker identifier and filled in once liveness is known.
#[derive(Clone)]
pub struct Jump {
    pub marker: syn::Ident,
    pub target: BlockId,
    /// The break value's temporary, set right before jumping.
    pub value: Option<(Bid, TokenStream)>,
}

/// A `let` split in parts, for re-emitting it when it shadows a local that must be saved first.
pub struct LetParts {
    pub pat: TokenStream,
    pub init: TokenStream,
    pub diverge: Option<TokenStream>,
}

pub enum LStmt {
    Code {
        tokens: TokenStream,
        uses: Vec<Bid>,
        defs: Vec<Bid>,
        jumps: Vec<Jump>,
        let_parts: Option<Box<LetParts>>,
        /// Locals this statement assigns as a whole (`x = …;`): a definition, not a use.
        assigns: Vec<Bid>,
    },
    /// First statement of a resume block: poll the awaited task; suspend if not ready.
    Poll { task: Bid, result: Bid, span: Span },
}

pub struct MatchArm {
    pub pat: TokenStream,
    pub guard: Option<TokenStream>,
    pub defs: Vec<Bid>,
    pub target: BlockId,
}

pub enum Term {
    Goto(BlockId),
    If {
        cond: TokenStream,
        uses: Vec<Bid>,
        defs: Vec<Bid>,
        then: BlockId,
        els: BlockId,
    },
    Match {
        scrut: TokenStream,
        uses: Vec<Bid>,
        arms: Vec<MatchArm>,
    },
    Await {
        resume: BlockId,
    },
    Return {
        tokens: TokenStream,
        uses: Vec<Bid>,
        jumps: Vec<Jump>,
    },
    /// Not reachable (after a jump); no code.
    Dead,
}

pub struct Block {
    pub stmts: Vec<LStmt>,
    pub term: Term,
    /// Resume block of the await with this index.
    pub resume_of: Option<usize>,
}

#[derive(Clone)]
struct LoopCtx {
    label: Option<String>,
    /// `None` for a labeled block (only `break 'label` applies).
    head: Option<BlockId>,
    exit: BlockId,
    result: Option<Bid>,
}

pub struct Lowerer<'a> {
    pub cx: &'a Ctxt,
    pub blocks: Vec<Block>,
    pub bindings: Vec<Binding>,
    cur: BlockId,
    scopes: Vec<Vec<(String, Bid)>>,
    loops: Vec<LoopCtx>,
    pub awaits: usize,
    temp_counter: usize,
    marker_counter: usize,
    /// When each block was first entered: arms are emitted in this (source) order.
    pub order: std::collections::HashMap<BlockId, usize>,
    /// Items declared in the body (`fn`, `struct`, `const`, `use`, …): emitted once, before the
    /// state machine, so every arm sees them.
    pub items: Vec<TokenStream>,
}

impl<'a> Lowerer<'a> {
    pub fn new(cx: &'a Ctxt) -> Self {
        let mut l = Lowerer {
            cx,
            blocks: Vec::new(),
            bindings: Vec::new(),
            cur: 0,
            scopes: vec![Vec::new()],
            loops: Vec::new(),
            awaits: 0,
            temp_counter: 0,
            marker_counter: 0,
            order: std::collections::HashMap::new(),
            items: Vec::new(),
        };
        l.new_block();
        l.order.insert(0, 0);
        l
    }

    fn enter(&mut self, b: BlockId) {
        self.cur = b;
        let n = self.order.len();
        self.order.entry(b).or_insert(n);
    }

    fn new_block(&mut self) -> BlockId {
        self.blocks.push(Block { stmts: Vec::new(), term: Term::Dead, resume_of: None });
        self.blocks.len() - 1
    }

    pub fn declare(&mut self, ident: syn::Ident, mutable: bool, kind: BindingKind) -> Bid {
        let id = self.bindings.len();
        let name = ident.to_string();
        self.bindings.push(Binding { ident, mutable, kind });
        self.scopes.last_mut().expect("scope").push((name, id));
        id
    }

    fn declare_pat(&mut self, bs: &[PatBinding]) -> Vec<Bid> {
        bs.iter().map(|b| self.declare(b.ident.clone(), b.mutable, BindingKind::User)).collect()
    }

    fn temp(&mut self, prefix: &str, span: Span) -> Bid {
        self.temp_counter += 1;
        let ident = syn::Ident::new(&format!("__durable_{prefix}{}", self.temp_counter), span);
        let id = self.bindings.len();
        self.bindings.push(Binding { ident, mutable: true, kind: BindingKind::Temp });
        id
    }

    pub fn resolve(&self, name: &str) -> Option<Bid> {
        for scope in self.scopes.iter().rev() {
            if let Some((_, b)) = scope.iter().rev().find(|(n, _)| n == name) {
                return Some(*b);
            }
        }
        None
    }

    fn push_scope(&mut self) {
        self.scopes.push(Vec::new());
    }

    fn pop_scope(&mut self) {
        self.scopes.pop();
    }

    fn push(&mut self, s: LStmt) {
        let cur = self.cur;
        self.blocks[cur].stmts.push(s);
    }

    fn terminate(&mut self, t: Term) {
        let cur = self.cur;
        if matches!(self.blocks[cur].term, Term::Dead) {
            self.blocks[cur].term = t;
        }
    }

    /// End the current block with `t` and continue in a fresh, unreachable block.
    fn terminate_dead(&mut self, t: Term) {
        self.terminate(t);
        let b = self.new_block();
        self.enter(b);
    }

    fn ident_of(&self, b: Bid) -> &syn::Ident {
        &self.bindings[b].ident
    }

    fn next_marker(&mut self) -> syn::Ident {
        self.marker_counter += 1;
        format_ident!("__durable_jump_marker_{}", self.marker_counter)
    }

    fn push_code(&mut self, op: Operand, defs: Vec<Bid>) {
        self.push(LStmt::Code {
            tokens: op.tokens,
            uses: op.uses,
            defs,
            jumps: op.jumps,
            let_parts: None,
            assigns: Vec::new(),
        });
    }

    // ---------------------------------------------------------------- statements

    /// Lower the body: statements, then the tail expression is returned.
    pub fn lower_body(&mut self, block: &syn::Block) {
        let tail = self.lower_stmts(&block.stmts, true);
        let op = tail.unwrap_or_else(|| Operand::plain(quote!(())));
        let span = block.stmts.last().map(|s| s.span()).unwrap_or_else(Span::call_site);
        let tokens = op.tokens;
        self.terminate(Term::Return { tokens: quote_spanned!(span=> #tokens), uses: op.uses, jumps: op.jumps });
    }

    /// Lower statements; with `want_value`, a final expression without `;` is the block's value.
    fn lower_stmts(&mut self, stmts: &[Stmt], want_value: bool) -> Option<Operand> {
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

    fn lower_stmt(&mut self, stmt: &Stmt) {
        // Statements that always leave the block end it, so nothing after them is typed in.
        if let Stmt::Expr(e @ (Expr::Return(_) | Expr::Break(_) | Expr::Continue(_)), _) = stmt {
            self.lower_jump_stmt(e);
            return;
        }
        if let Stmt::Item(item) = stmt {
            self.items.push(quote!(#item));
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
    fn let_parts(&mut self, stmt: &Stmt) -> Option<Box<LetParts>> {
        let Stmt::Local(l) = stmt else { return None };
        let init = l.init.as_ref()?;
        let pat = &l.pat;
        let init_op = self.verbatim_expr(&init.expr);
        let diverge = init.diverge.as_ref().map(|(_, d)| self.verbatim_expr(d).tokens);
        Some(Box::new(LetParts { pat: quote!(#pat), init: init_op.tokens, diverge }))
    }

    /// `let PAT = v else { … .await … };` becomes a `match` whose first arm continues with the
    /// rest of the enclosing block (inlined there, with the pattern's bindings in scope).
    fn lower_let_else(&mut self, local: &syn::Local, value: Operand, diverge: &Expr) {
        let cont = self.new_block();
        let els = self.new_block();
        let binds = pat_bindings(&local.pat);
        let defs = self.declare_pat(&binds);
        let pat = &local.pat;
        let cur = self.cur;
        if !value.jumps.is_empty() {
            self.cx.error_spanned_by(&local.pat, "`break`/`continue` in a `let … else` initializer that awaits is not supported: compute the value first");
        }
        self.blocks[cur].term = Term::Match {
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
    fn plain_local(&self, e: &Expr) -> Option<Bid> {
        let Expr::Path(p) = e else { return None };
        if p.qself.is_some() || p.path.segments.len() != 1 || !p.path.segments[0].arguments.is_none() {
            return None;
        }
        let b = self.resolve(&p.path.segments[0].ident.to_string())?;
        matches!(self.bindings[b].kind, BindingKind::User).then_some(b)
    }

    /// `x = value;` as a definition of `x`.
    fn lower_assign_def(&mut self, a: &syn::ExprAssign, b: Bid) {
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

    fn lower_jump_stmt(&mut self, e: &Expr) {
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

    // ---------------------------------------------------------------- expressions

    /// Lower an expression that contains awaits; returns what to write where its value is used.
    fn lower_expr(&mut self, e: &Expr, want: bool) -> Operand {
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
                inner.map(|x| verbatim::try_tokens(x, span))
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
            Expr::Binary(b) if is_assign_op(&b.op) => {
                // `place op= value`: the place's own operands first, then the value.
                let mut c = b.clone();
                let mut acc = Operand::plain(TokenStream::new());
                if contains_await(&b.left) {
                    let lhs = self.lower_expr(&b.left, true);
                    *c.left = Expr::Verbatim(lhs.tokens.clone());
                    acc = acc.then(lhs);
                }
                let rhs = self.lower_expr(&b.right, true);
                *c.right = Expr::Verbatim(rhs.tokens.clone());
                let v = self.verbatim_expr(&Expr::Binary(c));
                acc.then(rhs).then(v)
            }
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

    fn lower_await(&mut self, a: &syn::ExprAwait) -> Operand {
        let base = self.lower_expr(&a.base, true);
        let span = a.base.span();
        let task = self.temp("task", span);
        let task_ident = self.ident_of(task).clone();
        let base_tokens = base.tokens.clone();
        let tokens = quote_spanned!(span=> let #task_ident = ::durable::__private::task(#base_tokens););
        self.push_code(Operand { tokens, ..base }, vec![task]);
        let resume = self.new_block();
        self.blocks[resume].resume_of = Some(self.awaits);
        self.awaits += 1;
        self.terminate(Term::Await { resume });
        self.enter(resume);
        let result = self.temp("await", a.await_token.span);
        self.push(LStmt::Poll { task, result, span: a.span() });
        let id = self.ident_of(result).clone();
        Operand { tokens: quote!(#id), uses: vec![result], jumps: Vec::new() }
    }

    /// If the value is wanted, keep it in a temporary so it can cross into the join block.
    fn spill_value(&mut self, v: Option<Operand>, span: Span, want: bool) -> Operand {
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
    fn assign_result(&mut self, result: Option<Bid>, v: Option<Operand>) {
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

    fn result_operand(&self, result: Option<Bid>) -> Operand {
        match result {
            Some(r) => {
                let id = self.ident_of(r).clone();
                Operand { tokens: quote!(#id), uses: vec![r], jumps: Vec::new() }
            }
            None => Operand::plain(quote!(())),
        }
    }

    /// A condition of `if`/`while`: lowered if it awaits; `let` chains stay verbatim and their
    /// bindings are returned (they are in scope in the `then` branch / loop body).
    fn lower_cond(&mut self, cond: &Expr) -> (Operand, Vec<PatBinding>) {
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

    fn lower_if(&mut self, i: &syn::ExprIf, want: bool) -> Operand {
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

    fn lower_if_into(&mut self, i: &syn::ExprIf, result: Option<Bid>) {
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
        let cur_block = self.cur;
        // The condition's own code goes first in the current block.
        if !cond.jumps.is_empty() {
            self.cx.error_spanned_by(&i.cond, "`break`/`continue` inside the condition of an `if` that awaits is not supported: compute the condition first");
        }
        self.blocks[cur_block].term = Term::If { cond: cond_tokens, uses: cond.uses, defs, then: then_b, els: else_b };
        self.enter(then_b);
        self.lower_branches(i, result, else_b, join);
    }

    /// `if let P = a && c && let Q = b { … }` whose conditions await: one test per conjunct,
    /// left to right, each failure jumping to the one `else`; the bindings of each `let` are in
    /// scope in the later conjuncts and in the branch.
    fn lower_if_chain(&mut self, i: &syn::ExprIf, result: Option<Bid>) {
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
            self.blocks[cur].term = Term::If { cond, uses, defs, then: next, els: fail };
            self.enter(fail);
            self.terminate(Term::Goto(else_b));
            self.enter(next);
        }
        self.lower_branches(i, result, else_b, join);
    }

    /// From inside the `then` branch (its scope pushed): lower it, close its scope, lower the
    /// `else` in `else_b`, and continue at `join`.
    fn lower_branches(&mut self, i: &syn::ExprIf, result: Option<Bid>, else_b: BlockId, join: BlockId) {
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
    fn lower_else(&mut self, i: &syn::ExprIf, result: Option<Bid>) {
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

    fn lower_match(&mut self, m: &syn::ExprMatch, want: bool) -> Operand {
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
        let cur = self.cur;
        self.blocks[cur].term = Term::Match { scrut: scrut.tokens, uses, arms };
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

    fn lower_loop(&mut self, l: &syn::ExprLoop, want: bool) -> Operand {
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

    fn lower_labeled_block(&mut self, b: &syn::ExprBlock, want: bool) -> Operand {
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

    fn lower_while(&mut self, w: &syn::ExprWhile) -> Operand {
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
        self.blocks[done].term = Term::Goto(exit);
        self.blocks[cur].term = Term::If { cond: cond.tokens, uses: cond.uses, defs, then: body, els: done };
        self.enter(body);
        self.loops.push(LoopCtx { label: label_name(&w.label), head: Some(head), exit, result: None });
        self.lower_stmts(&w.body.stmts, false);
        self.terminate(Term::Goto(head));
        self.loops.pop();
        self.pop_scope();
        self.enter(exit);
        Operand::plain(quote!(()))
    }

    fn lower_for(&mut self, f: &syn::ExprForLoop) -> Operand {
        let iter_expr = self.lower_expr(&f.expr, true);
        let span = f.expr.span();
        let it = self.temp("iter", span);
        let it_ident = self.ident_of(it).clone();
        let src = iter_expr.tokens.clone();
        let tokens = quote_spanned!(span=>
            let mut #it_ident = {
                #[allow(unused_imports)]
                use ::durable::__private::{IterSpecAny as _, IterSpecRange as _};
                (&mut &mut ::durable::__private::IterWrap(::core::option::Option::Some(#src))).__durable_iter()
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
        self.blocks[done].term = Term::Goto(exit);
        self.blocks[cur].term = Term::Match {
            scrut: quote_spanned!(span=> ::durable::__private::next(&mut #it_ident)),
            uses: vec![it],
            arms: vec![
                MatchArm { pat: quote!(::core::option::Option::Some(#pat)), guard: None, defs, target: body },
                MatchArm { pat: quote!(::core::option::Option::None), guard: None, defs: Vec::new(), target: done },
            ],
        };
        self.enter(body);
        self.loops.push(LoopCtx { label: label_name(&f.label), head: Some(head), exit, result: None });
        self.lower_stmts(&f.body.stmts, false);
        self.terminate(Term::Goto(head));
        self.loops.pop();
        self.pop_scope();
        self.enter(exit);
        Operand::plain(quote!(()))
    }

    fn find_loop(&self, label: &Option<syn::Lifetime>, is_continue: bool) -> Option<LoopCtx> {
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

    fn lower_break(&mut self, b: &syn::ExprBreak) -> Operand {
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

    fn lower_continue(&mut self, c: &syn::ExprContinue) -> Operand {
        match self.find_loop(&c.label, true).and_then(|l| l.head) {
            Some(head) => self.terminate_dead(Term::Goto(head)),
            None => self.cx.error_spanned_by(c, "`continue` outside of a loop"),
        }
        Operand::plain(quote!(::core::unreachable!()))
    }

    fn lower_lazy_bool(&mut self, b: &syn::ExprBinary) -> Operand {
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
        let cur = self.cur;
        self.blocks[cur].term = Term::If { cond: quote!(#id), uses: vec![t], defs: Vec::new(), then, els };
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
    fn lower_compound(&mut self, e: &Expr) -> Operand {
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
    fn lower_operands(&mut self, subs: &mut [&mut Expr]) -> Operand {
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

fn label_name(l: &Option<syn::Label>) -> Option<String> {
    l.as_ref().map(|l| l.name.ident.to_string())
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

fn is_place_or_literal(e: &Expr) -> bool {
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

fn flatten_and<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_)) => {
            flatten_and(&b.left, out);
            flatten_and(&b.right, out);
        }
        Expr::Paren(p) if has_let(&p.expr) => flatten_and(&p.expr, out),
        other => out.push(other),
    }
}

fn has_let(e: &Expr) -> bool {
    match e {
        Expr::Let(_) => true,
        Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_)) => has_let(&b.left) || has_let(&b.right),
        Expr::Paren(p) => has_let(&p.expr),
        _ => false,
    }
}

fn let_chain_bindings(e: &Expr, out: &mut Vec<PatBinding>) {
    match e {
        Expr::Let(l) => out.extend(pat_bindings(&l.pat)),
        Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_)) => {
            let_chain_bindings(&b.left, out);
            let_chain_bindings(&b.right, out);
        }
        _ => {}
    }
}

impl Lowerer<'_> {
    /// The entry block's first statement: bind the parameters from the decoded input.
    pub fn push_param_binding(&mut self, tokens: TokenStream, input: Bid, defs: Vec<Bid>) {
        self.push(LStmt::Code {
            tokens,
            uses: vec![input],
            defs,
            jumps: Vec::new(),
            let_parts: None,
            assigns: Vec::new(),
        });
    }
}
