//! Lower: the orchestrator compiler. An `async fn` body becomes a control-flow graph whose
//! blocks are split at `.await`s (`ir`), with the liveness of every local (`liveness`); the
//! expander then lays it out as a state machine.
//!
//! Code without `.await` stays verbatim (with `return`, `?` and jumps out of it rewritten,
//! `verbatim`), so the user's tokens, macros and format strings are untouched and errors land
//! on them. The rest is lowered by syntax family: statements (`stmt`), expressions (`expr`),
//! compound assignments in Rust's type-dependent order (`op_assign`), `if`/`match`/loops
//! (`control`), and the bindings patterns introduce (`pattern`).
//!
//! The only entry point is [`lower_orchestrator`]; its result, [`Lowered`], is a finished value.

mod control;
mod expr;
pub(crate) mod ir;
pub(crate) mod liveness;
mod op_assign;
mod pattern;
mod stmt;
mod verbatim;

use crate::ctxt::Ctxt;
use crate::parse::{OrchestratorFn, RuntimePath};
use ir::{AwaitId, Binding, BindingId, BindingKind, Bindings, BlockId, Cfg, LStmt, Term};
use liveness::Liveness;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::Pat;
use verbatim::Operand;

/// A lowered orchestrator body.
pub(crate) struct Lowered {
    /// The blocks, starting at [`BlockId::ENTRY`], and the items declared in the body.
    pub cfg: Cfg,
    /// Every local: the context, the input, the parameters, the body's locals, temporaries.
    pub bindings: Bindings,
    /// Which locals are live where.
    pub liveness: Liveness,
}

/// Lower an orchestrator whose signature and body passed the checks. The entry block binds the
/// context parameter (never saved), then the parameters from the decoded input, then runs the
/// body.
pub(crate) fn lower_orchestrator(f: &OrchestratorFn<'_>) -> Result<Lowered, syn::Error> {
    let cx = Ctxt::new();
    let mut lw = Lowerer::new(&cx, &f.args.runtime);
    lw.bind_params(f);
    lw.lower_body(&f.item.block);
    let Lowerer { cfg, bindings, .. } = lw;
    cx.check()?;
    let liveness = Liveness::compute(&cfg);
    Ok(Lowered { cfg, bindings, liveness })
}

/// A loop or labeled block that spans an `.await`: where `break` and `continue` go.
#[derive(Clone)]
struct LoopCtx {
    label: Option<String>,
    /// `None` for a labeled block (only `break 'label` applies).
    head: Option<BlockId>,
    exit: BlockId,
    result: Option<BindingId>,
}

/// The lowering's working state.
struct Lowerer<'a> {
    cx: &'a Ctxt,
    rt: &'a RuntimePath,
    cfg: Cfg,
    bindings: Bindings,
    /// The block statements are appended to.
    cur: BlockId,
    /// Names in scope, innermost last.
    scopes: Vec<Vec<(String, BindingId)>>,
    loops: Vec<LoopCtx>,
    /// The next await.
    next_await: AwaitId,
    temp_counter: usize,
    marker_counter: usize,
}

impl<'a> Lowerer<'a> {
    fn new(cx: &'a Ctxt, rt: &'a RuntimePath) -> Self {
        Lowerer {
            cx,
            rt,
            cfg: Cfg::new(),
            bindings: Bindings::default(),
            cur: BlockId::ENTRY,
            scopes: vec![Vec::new()],
            loops: Vec::new(),
            next_await: AwaitId::default(),
            temp_counter: 0,
            marker_counter: 0,
        }
    }

    /// Declare the context and the parameters, and bind the parameters from the input:
    /// `let <params>: <input type> = __durable_input_value;`.
    fn bind_params(&mut self, f: &OrchestratorFn<'_>) {
        if let Some(Pat::Ident(pi)) = f.ctx_pat() {
            self.declare(pi.ident.clone(), false, BindingKind::Ctx);
        }
        let input =
            self.declare(syn::Ident::new("__durable_input_value", Span::call_site()), false, BindingKind::Input);
        let bindings: Vec<_> = f.params.iter().flat_map(|(p, _)| pattern::pat_bindings(p)).collect();
        let input_ident = self.bindings[input].ident.clone();
        let defs = self.declare_pat(&bindings);
        let (input_pat, input_ty) = (f.input_pat(), f.input_ty());
        self.push(LStmt::Code {
            tokens: quote!(let #input_pat: #input_ty = #input_ident;),
            uses: vec![input],
            defs,
            jumps: Vec::new(),
            let_parts: None,
            assigns: Vec::new(),
        });
    }

    /// `<runtime>::__private`, spanned at `span`.
    fn private(&self, span: Span) -> TokenStream {
        self.rt.private(span)
    }

    fn enter(&mut self, b: BlockId) {
        self.cur = b;
        self.cfg.enter(b);
    }

    fn new_block(&mut self) -> BlockId {
        self.cfg.new_block()
    }

    fn declare(&mut self, ident: syn::Ident, mutable: bool, kind: BindingKind) -> BindingId {
        let name = ident.to_string();
        let id = self.bindings.push(Binding { ident, mutable, kind });
        self.scopes.last_mut().expect("scope").push((name, id));
        id
    }

    /// A new temporary `__durable_<prefix><n>` (not in scope by name).
    fn temp(&mut self, prefix: &str, span: Span) -> BindingId {
        self.temp_counter += 1;
        let ident = syn::Ident::new(&format!("__durable_{prefix}{}", self.temp_counter), span);
        self.bindings.push(Binding { ident, mutable: true, kind: BindingKind::Temp })
    }

    /// The local a name refers to here, innermost scope first.
    fn resolve(&self, name: &str) -> Option<BindingId> {
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
        self.cfg[cur].stmts.push(s);
    }

    /// End the current block with `t`, unless it already ended.
    fn terminate(&mut self, t: Term) {
        let cur = self.cur;
        if matches!(self.cfg[cur].term, Term::Dead) {
            self.cfg[cur].term = t;
        }
    }

    /// End the current block with `t` and continue in a fresh, unreachable block.
    fn terminate_dead(&mut self, t: Term) {
        self.terminate(t);
        let b = self.new_block();
        self.enter(b);
    }

    /// End the current block with `t`, replacing its terminator.
    fn set_term(&mut self, t: Term) {
        let cur = self.cur;
        self.cfg[cur].term = t;
    }

    fn ident_of(&self, b: BindingId) -> &syn::Ident {
        &self.bindings[b].ident
    }

    fn next_marker(&mut self) -> syn::Ident {
        self.marker_counter += 1;
        format_ident!("__durable_jump_marker_{}", self.marker_counter)
    }

    fn push_code(&mut self, op: Operand, defs: Vec<BindingId>) {
        self.push(LStmt::Code {
            tokens: op.tokens,
            uses: op.uses,
            defs,
            jumps: op.jumps,
            let_parts: None,
            assigns: Vec::new(),
        });
    }
}

/// The key of a suspension point: what is awaited, as written (`ctx.wait_for_event("go")`), or
/// `checkpoint("name")` for a task named with `.checkpoint("name")`. Stable under edits
/// elsewhere in the body, so a state saved at this point by other code is resumed here when the
/// same locals are live (the emitter adds `#n` to the n-th repeat of one key).
pub(crate) fn await_key(base: &syn::Expr) -> String {
    if let syn::Expr::MethodCall(m) = base
        && m.method == "checkpoint"
        && m.args.len() == 1
        && let Some(syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. })) = m.args.first()
    {
        return format!("checkpoint({:?})", s.value());
    }
    compact(&quote::quote!(#base).to_string())
}

/// Token text without the spaces `to_string` puts around punctuation (kept after a comma and
/// around operators): `ctx . call (a , n + 1)` → `ctx.call(a, n + 1)`.
fn compact(text: &str) -> String {
    let tight = |c: char| ".()[]<>:!&?#;".contains(c);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let prev = out.chars().last();
            let next = chars.get(i + 1).copied();
            let drop = prev != Some(',') && (prev.is_some_and(tight) || next.is_some_and(|n| tight(n) || n == ','));
            if drop {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::await_key;

    #[test]
    fn await_keys_read_as_written() {
        let key = |s: &str| await_key(&syn::parse_str(s).unwrap());
        assert_eq!(key(r#"ctx.wait_for_event::<String>("go")"#), r#"ctx.wait_for_event::<String>("go")"#);
        assert_eq!(
            key("ctx.call_activity(charge, (order.id, amount * 2))"),
            "ctx.call_activity(charge, (order.id, amount * 2))"
        );
        assert_eq!(key(r#"ctx.when_all(tasks).checkpoint("approval")"#), r#"checkpoint("approval")"#);
        assert_eq!(key("ctx.timer(Duration::from_secs(5))"), "ctx.timer(Duration::from_secs(5))");
        assert_eq!(key("ctx.call_activity(work, n + 1)"), "ctx.call_activity(work, n + 1)");
        assert_eq!(key("ctx.call_activity(f, vec![a, b])"), "ctx.call_activity(f, vec![a, b])");
    }
}
