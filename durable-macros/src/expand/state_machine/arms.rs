//! The code of each arm: a block's statements and terminator, with `if`/`match` branches
//! inline, locals taken out of their slots before their first use and written back before a
//! jump to an arm that needs them, and a suspension at each poll that is not ready.

use super::Emitter;
use super::layout::{field_names, slot};
use crate::lower::Lowered;
use crate::lower::ir::{BindingId, BlockId, Jump, JumpValue, LStmt, Term};
use crate::lower::liveness::LiveSet;
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use std::collections::HashMap;

/// The locals an arm holds under their source names at a point of its code.
#[derive(Clone, Default)]
pub(super) struct Held {
    by_name: HashMap<String, BindingId>,
    held: LiveSet,
}

impl Held {
    fn add(&mut self, lw: &Lowered, b: BindingId) {
        self.by_name.insert(lw.bindings[b].ident.to_string(), b);
        self.held.insert(b);
    }
}

impl Emitter<'_> {
    fn ident_of(&self, b: BindingId) -> &syn::Ident {
        &self.lw.bindings[b].ident
    }

    fn take(&self, b: BindingId) -> TokenStream {
        let id = self.ident_of(b);
        let s = slot(b);
        let m = if self.lw.bindings[b].mutable { quote!(mut) } else { quote!() };
        let p = self.rt.private(Span::call_site());
        quote!(let #m #id = #p::take(&mut #s);)
    }

    fn write_back(&mut self, b: BindingId, held: &Held) -> TokenStream {
        let id = self.ident_of(b).clone();
        if held.by_name.get(&id.to_string()) != Some(&b) {
            self.errors.push(syn::Error::new(
                id.span(),
                format!(
                    "`{id}` is shadowed by another local of the same name while its own value is still needed after an `.await`; give one of them another name"
                ),
            ));
            return quote!();
        }
        let s = slot(b);
        quote!(#s = ::core::option::Option::Some(#id);)
    }

    /// Take the locals a statement uses that this arm does not hold yet.
    fn takes(&mut self, uses: &[BindingId], held: &mut Held, live_after: &LiveSet) -> TokenStream {
        let mut out = TokenStream::new();
        for &u in uses {
            if held.held.contains(&u) || !self.layout.slots.contains(&u) {
                continue;
            }
            let name = self.ident_of(u).to_string();
            if let Some(&h) = held.by_name.get(&name)
                && h != u
                && held.held.contains(&h)
                && live_after.contains(&h)
                && self.layout.slots.contains(&h)
            {
                out.extend(self.write_back(h, held));
                held.held.remove(&h);
            }
            out.extend(self.take(u));
            held.add(self.lw, u);
        }
        out
    }

    fn jump_code(&mut self, target: BlockId, value: Option<&JumpValue>, held: &Held) -> TokenStream {
        let mut held = held.clone();
        let mut out = TokenStream::new();
        if let Some(JumpValue { result, tokens: v }) = value {
            match result {
                None => out.extend(quote!({ #v; })),
                Some(r) => {
                    let id = self.ident_of(*r).clone();
                    out.extend(quote!(let #id = #v;));
                    held.add(self.lw, *r);
                }
            }
        }
        let need: Vec<BindingId> = self
            .lw
            .liveness
            .live_in(target)
            .iter()
            .copied()
            .filter(|b| held.held.contains(b) && self.layout.slots.contains(b))
            .collect();
        for b in need {
            out.extend(self.write_back(b, &held));
        }
        let pc = target.pc();
        quote!({ #out __durable_pc = #pc; continue '__durable_dispatch; })
    }

    fn substitute(&mut self, tokens: TokenStream, jumps: &[Jump], held: &Held) -> TokenStream {
        if jumps.is_empty() {
            return tokens;
        }
        let mut codes: HashMap<String, TokenStream> = HashMap::new();
        for j in jumps {
            let code = self.jump_code(j.target, j.value.as_ref(), held);
            codes.insert(j.marker.to_string(), code);
        }
        replace_markers(tokens, &codes)
    }

    pub(super) fn emit_block(&mut self, b: BlockId, mut held: Held) -> TokenStream {
        let (after, _) = self.lw.liveness.block_live(&self.lw.cfg, b);
        let mut out = TokenStream::new();
        let block = &self.lw.cfg[b];
        for (i, s) in block.stmts.iter().enumerate() {
            match s {
                LStmt::Code { tokens, uses, defs, jumps, let_parts, assigns } => {
                    let t = self.takes(uses, &mut held, &after[i]);
                    out.extend(t);
                    // `x = v;` where this arm does not hold `x`: bind it here (the old value,
                    // if any, stays in its slot and is replaced when `x` is saved again).
                    for &a in assigns {
                        if !held.held.contains(&a) {
                            let id = self.ident_of(a).clone();
                            let m = if self.lw.bindings[a].mutable { quote!(mut) } else { quote!() };
                            out.extend(quote!(let #m #id;));
                            held.add(self.lw, a);
                        }
                    }
                    // Locals this statement shadows whose values are still needed: save them to
                    // their slots between evaluating the initializer and binding the pattern.
                    let shadowed: Vec<BindingId> = defs
                        .iter()
                        .filter_map(|&d| {
                            let h = *held.by_name.get(&self.ident_of(d).to_string())?;
                            (h != d
                                && held.held.contains(&h)
                                && after[i].contains(&h)
                                && self.layout.slots.contains(&h))
                            .then_some(h)
                        })
                        .collect();
                    if shadowed.is_empty() {
                        let code = self.substitute(tokens.clone(), jumps, &held);
                        out.extend(code);
                    } else if let Some(parts) = let_parts {
                        let mut saves = TokenStream::new();
                        for &h in &shadowed {
                            saves.extend(self.write_back(h, &held));
                            held.held.remove(&h);
                        }
                        let (pat, init) = (&parts.pat, &parts.init);
                        let els = parts.diverge.as_ref().map(|d| quote!(else #d));
                        let code = quote! {
                            let __durable_shadowed_init = #init;
                            #saves
                            let #pat = __durable_shadowed_init #els;
                        };
                        out.extend(self.substitute(code, jumps, &held));
                    } else {
                        let name = self.ident_of(defs[0]).to_string();
                        self.errors.push(syn::Error::new(
                            self.ident_of(defs[0]).span(),
                            format!("this `{name}` shadows another `{name}` whose value is still needed after an `.await` in this orchestrator; give one of them another name"),
                        ));
                    }
                    for &d in defs {
                        held.add(self.lw, d);
                    }
                }
                LStmt::Poll { task, result, span, .. } => {
                    let task_id = self.ident_of(*task).clone();
                    let task_slot = slot(*task);
                    let result_id = self.ident_of(*result).clone();
                    let fields = self.layout.variants.get(&b).cloned().unwrap_or_default();
                    let fnames: Vec<String> = field_names(self.lw, &fields);
                    let values = fields.iter().zip(&fnames).map(|(&f, n)| {
                        let s = slot(f);
                        let sp = self.ident_of(f).span();
                        let p = self.rt.private(sp);
                        quote_spanned!(sp=> #p::persist(#n, #p::take(&mut #s)))
                    });
                    let site = self.layout.sites.iter().position(|s| s.block == b).unwrap_or_default();
                    let span = *span;
                    let p = self.rt.private(span);
                    out.extend(quote_spanned! {span=>
                        let #task_id = #p::take(&mut #task_slot);
                        let #result_id = match #p::poll_task(__durable_ctx, &#task_id) {
                            ::core::option::Option::Some(__durable_r) => __durable_r,
                            ::core::option::Option::None => {
                                #task_slot = ::core::option::Option::Some(#task_id);
                                return #p::suspend(__DURABLE_FINGERPRINT, &__DURABLE_SITES[#site], ::std::vec![#(#values),*]);
                            }
                        };
                    });
                    held.add(self.lw, *result);
                }
            }
        }
        let term_live = self.lw.liveness.term_live(&block.term);
        match &block.term {
            Term::Goto(t) => out.extend(self.jump_code(*t, None, &held)),
            Term::Await { resume } => out.extend(self.jump_code(*resume, None, &held)),
            Term::Return { tokens, uses, jumps } => {
                out.extend(self.takes(uses, &mut held, &LiveSet::new()));
                let code = self.substitute(tokens.clone(), jumps, &held);
                let p = self.rt.private(Span::call_site());
                out.extend(quote!(return #p::Step::Done(#code);));
            }
            Term::If { cond, uses, defs, then, els } => {
                out.extend(self.takes(uses, &mut held, &term_live));
                let mut th = held.clone();
                for &d in defs {
                    th.add(self.lw, d);
                }
                let then_code = self.emit_block(*then, th);
                let else_code = self.emit_block(*els, held.clone());
                out.extend(quote!(if #cond { #then_code } else { #else_code }));
            }
            Term::Match { scrut, uses, arms } => {
                out.extend(self.takes(uses, &mut held, &term_live));
                let mut arm_code = Vec::new();
                for a in arms {
                    let mut h = held.clone();
                    for &d in &a.defs {
                        h.add(self.lw, d);
                    }
                    let code = self.emit_block(a.target, h);
                    let pat = &a.pat;
                    let guard = a.guard.as_ref().map(|g| quote!(if #g));
                    arm_code.push(quote!(#pat #guard => { #code }));
                }
                out.extend(quote!(match #scrut { #(#arm_code)* }));
            }
            Term::Dead => out.extend(quote!(::core::unreachable!("durable: unreachable block"))),
        }
        out
    }
}

fn replace_markers(ts: TokenStream, codes: &HashMap<String, TokenStream>) -> TokenStream {
    ts.into_iter()
        .map(|tt| match tt {
            TokenTree::Ident(i) => match codes.get(&i.to_string()) {
                Some(code) => {
                    let g = proc_macro2::Group::new(proc_macro2::Delimiter::Brace, code.clone());
                    TokenTree::Group(g)
                }
                None => TokenTree::Ident(i),
            },
            TokenTree::Group(g) => {
                let mut ng = proc_macro2::Group::new(g.delimiter(), replace_markers(g.stream(), codes));
                ng.set_span(g.span());
                TokenTree::Group(ng)
            }
            other => other,
        })
        .collect()
}
