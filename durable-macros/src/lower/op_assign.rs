//! `place op= value` (`+=`, `-=`, `<<=`, …) with an `.await` in it, in Rust's evaluation order.
//! That order depends on types the macro cannot see: when both operands are primitive (integers,
//! floats, `bool`, `char`), Rust evaluates the value, then the place; otherwise the place (its
//! index operands, in order), then the value, then `AddAssign::add_assign(&mut place, value)`.
//!
//! The order only shows when both sides compute something: an index operand of the place that
//! is not a literal or a plain place (`v[i()]`, `v[t.await?]`), and a value that is not either.
//! Otherwise the statement is lowered like any other expression: the awaits, then the operator
//! in one piece, ordered by rustc. When it shows:
//!
//! - a value written `&…` is a reference, never primitive: the place's operands are evaluated
//!   into temporaries, then the value, then the operator on the place rebuilt from them;
//! - otherwise both orders are emitted, and `__private::op_value_first` chooses at run time from
//!   the operand types, which a witness declared once for the step function (`Cfg::hoisted`)
//!   gets from the operator's own code (`op_place` in a branch never taken, `op_value` around
//!   the value), so no annotation is needed and types may be inferred in any order;
//! - a place that calls something (`*m.entry(k).or_insert(0)`, `*f()`, `*v.last_mut().unwrap()`)
//!   returns a borrow, which cannot be kept across an `.await`, so it cannot be evaluated before
//!   the value: the value comes first, and `__private::op_operands_primitive` makes it a compile
//!   error unless both types are primitive (a value written `&…` that awaits is refused here at
//!   once).
//!
//! In either order the place's projections (`IndexMut::index_mut`, `DerefMut::deref_mut`) run
//! with the operator, after the value; for the standard containers their only effect is the
//! panic on an index out of bounds, which so comes after the value's `.await`.

use super::Lowerer;
use super::expr::is_place_or_literal;
use super::ir::{BindingId, BlockId, Term};
use super::verbatim::Operand;
use crate::syntax::contains_await;
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::Expr;
use syn::spanned::Spanned;

/// The index operands of a place that have side effects, in evaluation order (`a[f()].b[g()]`:
/// `f()`, then `g()`); `true` if the place calls something or is not made of paths, fields,
/// indexing and `*` only (then it has no operands of its own here).
fn place_operands<'e>(place: &'e mut Expr, ops: &mut Vec<&'e mut Expr>) -> bool {
    match place {
        Expr::Path(_) => false,
        Expr::Field(f) => place_operands(&mut f.base, ops),
        Expr::Paren(p) => place_operands(&mut p.expr, ops),
        Expr::Group(g) => place_operands(&mut g.expr, ops),
        Expr::Unary(syn::ExprUnary { op: syn::UnOp::Deref(_), expr, .. }) => place_operands(expr, ops),
        Expr::Index(syn::ExprIndex { expr, index, .. }) => {
            if place_operands(expr, ops) {
                ops.clear();
                return true;
            }
            if !is_place_or_literal(index) {
                ops.push(index);
            }
            false
        }
        _ => {
            ops.clear();
            true
        }
    }
}

/// `e` without parentheses and invisible groups.
fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip(&p.expr),
        Expr::Group(g) => strip(&g.expr),
        other => other,
    }
}

impl Lowerer<'_> {
    /// `place op= value` where the place or the value awaits.
    pub(super) fn lower_op_assign(&mut self, b: &syn::ExprBinary) -> Operand {
        let (place, value) = (&*b.left, &*b.right);
        if is_place_or_literal(value) {
            // Nothing in the value to order against the place's awaits.
            return self.op_assign_in_one_piece(b);
        }
        let mut scratch = place.clone();
        let mut ops = Vec::new();
        let calls = place_operands(&mut scratch, &mut ops);
        let operands = ops.len();
        let value_is_ref = matches!(strip(value), Expr::Reference(_));
        let value_awaits = contains_await(value);
        if calls {
            if !value_is_ref {
                return self.op_assign_value_first_checked(b);
            }
            if value_awaits {
                self.cx.error_spanned_by(
                    place,
                    "a reference value is never primitive, so Rust evaluates this place before the value, and what the call in it returns cannot be kept across the value's `.await` in an orchestrator: bind the value first: `let v = … .await?; place op= &v;`",
                );
            }
            // Otherwise only the place awaits: its awaits, then the operator, is Rust's order.
            return self.op_assign_in_one_piece(b);
        }
        if operands == 0 {
            // Nothing in the place to evaluate before the value (which awaits).
            return self.op_assign_in_one_piece(b);
        }
        if value_is_ref {
            return if value_awaits { self.op_assign_place_first(b) } else { self.op_assign_in_one_piece(b) };
        }
        if contains_await(place) {
            self.op_assign_either_order_awaiting_place(b)
        } else {
            self.op_assign_either_order(b)
        }
    }

    /// The place's awaits (its operands in order), then the value's, then the operator in one
    /// piece: right when only one side computes anything.
    fn op_assign_in_one_piece(&mut self, b: &syn::ExprBinary) -> Operand {
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

    /// The place's operands into temporaries, then the value, then the operator on the place
    /// rebuilt from the temporaries: the order for operands that are not both primitive.
    fn op_assign_place_first(&mut self, b: &syn::ExprBinary) -> Operand {
        let mut place = (*b.left).clone();
        let mut acc = Operand::plain(TokenStream::new());
        {
            let mut ops = Vec::new();
            place_operands(&mut place, &mut ops);
            for op in ops {
                let o = self.lower_expr(op, true);
                let span = op.span();
                let t = self.temp("index", span);
                let id = self.ident_of(t).clone();
                let tokens = o.tokens.clone();
                self.push_code(Operand { tokens: quote_spanned!(span=> let mut #id = #tokens;), ..o }, vec![t]);
                *op = Expr::Verbatim(quote!(#id));
                acc.uses.push(t);
            }
        }
        let rhs = self.lower_expr(&b.right, true);
        let mut c = b.clone();
        *c.left = place;
        *c.right = Expr::Verbatim(rhs.tokens.clone());
        let v = self.verbatim_expr(&Expr::Binary(c));
        acc.then(rhs).then(v)
    }

    /// The value, then the place (which calls something, so it cannot come first), checked at
    /// compile time to be Rust's order: both operand types primitive.
    fn op_assign_value_first_checked(&mut self, b: &syn::ExprBinary) -> Operand {
        let w = self.op_types(b.left.span());
        let rhs = self.lower_expr(&b.right, true);
        let value = if contains_await(&b.left) && !rhs.is_single_use() {
            // Kept across the place's awaits.
            let span = b.right.span();
            let t = self.temp("value", span);
            let id = self.ident_of(t).clone();
            let tokens = rhs.tokens.clone();
            self.push_code(Operand { tokens: quote_spanned!(span=> let mut #id = #tokens;), ..rhs }, vec![t]);
            Operand { tokens: quote!(#id), uses: vec![t], jumps: Vec::new() }
        } else {
            rhs
        };
        let lhs = self.lower_expr(&b.left, true);
        let code = self.op_code(&w, &lhs.tokens, &b.op, &value.tokens, Some(&b.left));
        value.then(lhs).map(|_| code)
    }

    /// Either order, chosen at run time from the types; the place does not await. Its operands
    /// are evaluated before the value into `Option`s (`None` when the value comes first), and
    /// the place is rebuilt to use them or, if `None`, evaluate them then.
    fn op_assign_either_order(&mut self, b: &syn::ExprBinary) -> Operand {
        let w = self.op_types(b.left.span());
        let p = self.private(Span::call_site());
        let mut place = (*b.left).clone();
        let (mut uses, mut jumps) = (Vec::new(), Vec::new());
        {
            let mut ops = Vec::new();
            place_operands(&mut place, &mut ops);
            for op in ops {
                let span = op.span();
                let first = self.verbatim_expr(op);
                let t = self.temp("index", span);
                let id = self.ident_of(t).clone();
                let ft = first.tokens.clone();
                let tokens = quote_spanned! {span=>
                    let mut #id = if #p::op_value_first(&#w) {
                        ::core::option::Option::None
                    } else {
                        ::core::option::Option::Some(#ft)
                    };
                };
                self.push_code(Operand { tokens, ..first }, vec![t]);
                let then = self.verbatim_expr(op);
                let tt = then.tokens.clone();
                *op = Expr::Verbatim(quote_spanned! {span=>
                    match #id {
                        ::core::option::Option::Some(__durable_index) => __durable_index,
                        ::core::option::Option::None => #tt,
                    }
                });
                uses.push(t);
                uses.extend(then.uses);
                jumps.extend(then.jumps);
            }
        }
        let rhs = self.lower_expr(&b.right, true);
        let lhs = self.verbatim_expr(&place);
        let code = self.op_code(&w, &lhs.tokens, &b.op, &rhs.tokens, None);
        Operand { tokens: TokenStream::new(), uses, jumps }.then(rhs).then(lhs).map(|_| code)
    }

    /// Either order, chosen at run time from the types; the place awaits. Its operands and the
    /// value are each evaluated once, into `Option`s, in blocks that jump to each other in the
    /// chosen order before the operator:
    ///
    /// ```text
    /// start:   operands and value = None; value first? -> value : place
    /// place:   operands = Some(…) (awaits); value first? -> apply : value
    /// value:   value = Some(…) (awaits);    value first? -> place : apply
    /// apply:   place(operands) op= value
    /// ```
    fn op_assign_either_order_awaiting_place(&mut self, b: &syn::ExprBinary) -> Operand {
        let lspan = b.left.span();
        let w = self.op_types(lspan);
        let p = self.private(Span::call_site());
        let value_first = quote!(#p::op_value_first(&#w));
        let r = self.temp("value", b.right.span());
        let r_id = self.ident_of(r).clone();
        let mut place = (*b.left).clone();
        let mut uses = vec![r];
        {
            let mut ops = Vec::new();
            place_operands(&mut place, &mut ops);
            let temps: Vec<BindingId> = ops.iter().map(|op| self.temp("index", op.span())).collect();
            for &t in temps.iter().chain([&r]) {
                let id = self.ident_of(t).clone();
                self.push_code(Operand::plain(quote!(let mut #id = ::core::option::Option::None;)), vec![t]);
            }
            let (eval_place, eval_value, apply) = (self.new_block(), self.new_block(), self.new_block());
            self.branch(value_first.clone(), eval_value, eval_place);
            self.enter(eval_place);
            for (op, &t) in ops.into_iter().zip(&temps) {
                let span = op.span();
                let o = self.lower_expr(op, true);
                let id = self.ident_of(t).clone();
                let tokens = o.tokens.clone();
                self.push_code(
                    Operand {
                        tokens: quote_spanned!(span=> let mut #id = ::core::option::Option::Some(#tokens);),
                        ..o
                    },
                    vec![t],
                );
                *op = Expr::Verbatim(quote_spanned!(span=> #p::take(&mut #id)));
            }
            uses.extend(temps);
            self.branch(value_first.clone(), apply, eval_value);
            self.enter(eval_value);
            let rhs = self.lower_expr(&b.right, true);
            let span = b.right.span();
            let tokens = rhs.tokens.clone();
            self.push_code(
                Operand {
                    tokens: quote_spanned!(span=> let mut #r_id = ::core::option::Option::Some(#tokens);),
                    ..rhs
                },
                vec![r],
            );
            self.branch(value_first, eval_place, apply);
            self.enter(apply);
        }
        let lhs = self.verbatim_expr(&place);
        let value = quote!(#p::take(&mut #r_id));
        let code = self.op_code(&w, &lhs.tokens, &b.op, &value, None);
        Operand { tokens: TokenStream::new(), uses, jumps: Vec::new() }.then(lhs).map(|_| code)
    }

    /// A witness of one operator's operand types, declared once at the top of the step
    /// function (arms share it; it is never saved).
    fn op_types(&mut self, span: Span) -> syn::Ident {
        self.temp_counter += 1;
        let w = syn::Ident::new(&format!("__durable_op_types_{}", self.temp_counter), span);
        let p = self.private(span);
        self.cfg.hoisted.push(quote_spanned!(span=> let #w = #p::OpTypes::new();));
        w
    }

    /// The operator on `place` and `value`, with the types tied to the witness `w`; `check`:
    /// require both types primitive, the error on this (the user's place).
    fn op_code(
        &self,
        w: &syn::Ident,
        place: &TokenStream,
        op: &syn::BinOp,
        value: &TokenStream,
        check: Option<&Expr>,
    ) -> TokenStream {
        let p = self.private(Span::call_site());
        let check = check.map(|user_place| {
            // rustc reports the unmet bound on the argument, from its first token to its last:
            // `&` with the span of the place's first token, `w` with that of its last.
            let tokens: Vec<_> = user_place.to_token_stream().into_iter().collect();
            let first = tokens.first().map_or_else(Span::call_site, |t| t.span());
            let last = tokens.last().map_or(first, |t| t.span());
            let arg_w = syn::Ident::new(&w.to_string(), last);
            let p = self.private(first);
            quote_spanned!(first=> #p::op_operands_primitive(&#arg_w);)
        });
        quote!({
            if #p::never() {
                #p::op_place(&#w, &#place)
            }
            #place #op #p::op_value(&#w, #value);
            #check
        })
    }

    /// End the current block with a test of `cond` jumping to `then` or `els` (each an arm).
    fn branch(&mut self, cond: TokenStream, then: BlockId, els: BlockId) {
        let (a, b) = (self.new_block(), self.new_block());
        self.set_term(Term::If { cond, uses: Vec::new(), defs: Vec::new(), then: a, els: b });
        self.enter(a);
        self.terminate(Term::Goto(then));
        self.enter(b);
        self.terminate(Term::Goto(els));
    }
}

#[cfg(test)]
mod tests {
    use super::place_operands;
    use quote::ToTokens;

    /// The operands `place_operands` finds in `place`, as text, or `None` if it calls something.
    fn operands(place: &str) -> Option<Vec<String>> {
        let mut e: syn::Expr = syn::parse_str(place).unwrap();
        let mut ops = Vec::new();
        if place_operands(&mut e, &mut ops) {
            return None;
        }
        Some(ops.iter().map(|o| o.to_token_stream().to_string()).collect())
    }

    #[test]
    fn a_place_is_taken_apart_into_its_index_operands() {
        assert_eq!(operands("x"), Some(vec![]));
        assert_eq!(operands("s.total"), Some(vec![]));
        assert_eq!(operands("v[i]"), Some(vec![]));
        assert_eq!(operands("v[0]"), Some(vec![]));
        assert_eq!(operands("*b"), Some(vec![]));
        assert_eq!(operands("v[i()]"), Some(vec!["i ()".to_string()]));
        assert_eq!(operands("a.b[f()].c"), Some(vec!["f ()".to_string()]));
        assert_eq!(operands("(*g[r()])[c(1)]"), Some(vec!["r ()".to_string(), "c (1)".to_string()]));
        assert_eq!(operands("v[t.await? as usize]"), Some(vec!["t . await ? as usize".to_string()]));
        assert_eq!(operands("*m.entry(k).or_insert(0)"), None);
        assert_eq!(operands("*f()"), None);
        assert_eq!(operands("v.last_mut().unwrap()[i()]"), None);
    }
}
