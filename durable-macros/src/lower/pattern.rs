//! Patterns: the bindings a pattern introduces (declared as locals of the lowering), and the
//! shapes of `let` chains (`if let P = a && c && let Q = b`).

use super::Lowerer;
use super::ir::{BindingId, BindingKind};
use syn::{Expr, Pat};

/// A binding introduced by a pattern.
#[derive(Clone)]
pub(crate) struct PatBinding {
    pub ident: syn::Ident,
    pub mutable: bool,
}

/// The bindings a pattern introduces, left to right. An identifier pattern that starts with an
/// uppercase letter and has no `@` subpattern is taken as a constant or unit variant (`None`).
pub(crate) fn pat_bindings(pat: &Pat) -> Vec<PatBinding> {
    let mut out = Vec::new();
    collect_pat(pat, &mut out);
    out
}

fn collect_pat(pat: &Pat, out: &mut Vec<PatBinding>) {
    match pat {
        Pat::Ident(p) => {
            let name = p.ident.to_string();
            let looks_const = name.chars().next().is_some_and(|c| c.is_uppercase());
            if p.subpat.is_none() && looks_const {
                return;
            }
            out.push(PatBinding { ident: p.ident.clone(), mutable: p.mutability.is_some() });
            if let Some((_, sub)) = &p.subpat {
                collect_pat(sub, out);
            }
        }
        Pat::Or(p) => {
            if let Some(first) = p.cases.first() {
                collect_pat(first, out);
            }
        }
        Pat::Paren(p) => collect_pat(&p.pat, out),
        Pat::Guard(p) => collect_pat(&p.pat, out),
        Pat::Reference(p) => collect_pat(&p.pat, out),
        Pat::Slice(p) => p.elems.iter().for_each(|e| collect_pat(e, out)),
        Pat::Struct(p) => p.fields.iter().for_each(|f| collect_pat(&f.pat, out)),
        Pat::Tuple(p) => p.elems.iter().for_each(|e| collect_pat(e, out)),
        Pat::TupleStruct(p) => p.elems.iter().for_each(|e| collect_pat(e, out)),
        Pat::Type(p) => collect_pat(&p.pat, out),
        _ => {}
    }
}

impl Lowerer<'_> {
    /// Declare a pattern's bindings in the current scope.
    pub(super) fn declare_pat(&mut self, bs: &[PatBinding]) -> Vec<BindingId> {
        bs.iter().map(|b| self.declare(b.ident.clone(), b.mutable, BindingKind::User)).collect()
    }
}

/// The conjuncts of an `&&` chain, left to right (through parentheses around a chain with `let`).
pub(super) fn flatten_and<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_)) => {
            flatten_and(&b.left, out);
            flatten_and(&b.right, out);
        }
        Expr::Paren(p) if has_let(&p.expr) => flatten_and(&p.expr, out),
        other => out.push(other),
    }
}

/// Whether a condition is or contains (through `&&`) a `let`.
pub(super) fn has_let(e: &Expr) -> bool {
    match e {
        Expr::Let(_) => true,
        Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_)) => has_let(&b.left) || has_let(&b.right),
        Expr::Paren(p) => has_let(&p.expr),
        _ => false,
    }
}

/// The bindings of the `let`s of a `let` chain, left to right.
pub(super) fn let_chain_bindings(e: &Expr, out: &mut Vec<PatBinding>) {
    match e {
        Expr::Let(l) => out.extend(pat_bindings(&l.pat)),
        Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_)) => {
            let_chain_bindings(&b.left, out);
            let_chain_bindings(&b.right, out);
        }
        _ => {}
    }
}
