//! Liveness over the split blocks, then the state enum and the step function.
//!
//! Each *arm* of the generated `match pc` starts at an await's resume point, a loop head, a
//! join, or the entry; `if`/`match` branches are emitted inline as real Rust control flow, so
//! borrows and scopes work as written. A local that crosses arms lives in a hoisted
//! `Option` slot; an arm takes it out (under its source name) right before its first use and
//! puts it back on the way out if the target needs it. A suspension saves exactly the locals
//! live at that await into the state enum's variant.

use super::{Bid, BindingKind, BlockId, Jump, LStmt, Lowerer, Term};
use proc_macro2::{TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use std::collections::{BTreeMap, BTreeSet, HashMap};

type Set = BTreeSet<Bid>;

pub struct Emitted {
    pub body: TokenStream,
}

pub struct Emitter<'l, 'a> {
    lw: &'l Lowerer<'a>,
    live_in: Vec<Set>,
    arms: Vec<BlockId>,
    slots: Set,
    /// Fields of each resume block's state variant.
    variants: BTreeMap<BlockId, Vec<Bid>>,
    fingerprint: u64,
    errors: Vec<syn::Error>,
}

#[derive(Clone, Default)]
struct Held {
    by_name: HashMap<String, Bid>,
    held: Set,
}

impl Held {
    fn add(&mut self, lw: &Lowerer<'_>, b: Bid) {
        self.by_name.insert(lw.bindings[b].ident.to_string(), b);
        self.held.insert(b);
    }
}

impl<'l, 'a> Emitter<'l, 'a> {
    pub fn new(lw: &'l Lowerer<'a>, fingerprint: u64) -> Self {
        let mut e = Emitter {
            lw,
            live_in: vec![Set::new(); lw.blocks.len()],
            arms: Vec::new(),
            slots: Set::new(),
            variants: BTreeMap::new(),
            fingerprint,
            errors: Vec::new(),
        };
        e.liveness();
        e.find_arms();
        e
    }

    fn jump_live(&self, j: &Jump) -> Set {
        let mut s = self.live_in[j.target].clone();
        if let Some((r, _)) = &j.value {
            s.remove(r);
        }
        s
    }

    fn term_live(&self, t: &Term) -> Set {
        match t {
            Term::Goto(b) => self.live_in[*b].clone(),
            Term::If { uses, defs, then, els, .. } => {
                let mut s: Set = self.live_in[*then].difference(&defs.iter().copied().collect()).copied().collect();
                s.extend(self.live_in[*els].iter().copied());
                s.extend(uses.iter().copied());
                s
            }
            Term::Match { uses, arms, .. } => {
                let mut s: Set = uses.iter().copied().collect();
                for a in arms {
                    let d: Set = a.defs.iter().copied().collect();
                    s.extend(self.live_in[a.target].difference(&d).copied());
                }
                s
            }
            Term::Await { resume } => self.live_in[*resume].clone(),
            Term::Return { uses, jumps, .. } => {
                let mut s: Set = uses.iter().copied().collect();
                for j in jumps {
                    s.extend(self.jump_live(j));
                }
                s
            }
            Term::Dead => Set::new(),
        }
    }

    /// Live sets after each statement of a block (index i: live after stmt i), and live-in.
    fn block_live(&self, b: BlockId) -> (Vec<Set>, Set) {
        let block = &self.lw.blocks[b];
        let mut live = self.term_live(&block.term);
        let mut after = vec![Set::new(); block.stmts.len()];
        for (i, s) in block.stmts.iter().enumerate().rev() {
            after[i] = live.clone();
            match s {
                LStmt::Code { uses, defs, jumps, assigns, .. } => {
                    for d in defs.iter().chain(assigns) {
                        live.remove(d);
                    }
                    live.extend(uses.iter().copied());
                    for j in jumps {
                        live.extend(self.jump_live(j));
                    }
                }
                LStmt::Poll { task, result, .. } => {
                    live.remove(result);
                    live.insert(*task);
                }
            }
        }
        (after, live)
    }

    fn liveness(&mut self) {
        loop {
            let mut changed = false;
            for b in (0..self.lw.blocks.len()).rev() {
                let (_, li) = self.block_live(b);
                if li != self.live_in[b] {
                    self.live_in[b] = li;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    fn find_arms(&mut self) {
        // Arms: the entry, resume points, and targets of jumps; reachable from the entry.
        let mut seen = BTreeSet::new();
        let mut stack = vec![0usize];
        let mut arms = BTreeSet::new();
        arms.insert(0);
        while let Some(b) = stack.pop() {
            if !seen.insert(b) {
                continue;
            }
            let block = &self.lw.blocks[b];
            let jump_to = |t: BlockId, arms: &mut BTreeSet<BlockId>, stack: &mut Vec<BlockId>| {
                arms.insert(t);
                stack.push(t);
            };
            for s in &block.stmts {
                if let LStmt::Code { jumps, .. } = s {
                    for j in jumps {
                        jump_to(j.target, &mut arms, &mut stack);
                    }
                }
            }
            match &block.term {
                Term::Goto(t) => jump_to(*t, &mut arms, &mut stack),
                Term::Await { resume } => jump_to(*resume, &mut arms, &mut stack),
                Term::If { then, els, .. } => {
                    stack.push(*then);
                    stack.push(*els);
                }
                Term::Match { arms: ma, .. } => ma.iter().for_each(|a| stack.push(a.target)),
                Term::Return { jumps, .. } => {
                    for j in jumps {
                        jump_to(j.target, &mut arms, &mut stack);
                    }
                }
                Term::Dead => {}
            }
        }
        let mut arms: Vec<BlockId> = arms.into_iter().collect();
        arms.sort_by_key(|b| self.lw.order.get(b).copied().unwrap_or(usize::MAX));
        for &a in &arms {
            if a != 0 {
                self.slots.extend(self.live_in[a].iter().copied());
            }
            if self.lw.blocks[a].resume_of.is_some() {
                self.variants.insert(a, self.live_in[a].iter().copied().collect());
            }
        }
        for (i, b) in self.lw.bindings.iter().enumerate() {
            if b.kind == BindingKind::Input {
                self.slots.insert(i);
            }
        }
        self.arms = arms;
    }

    fn slot(&self, b: Bid) -> syn::Ident {
        format_ident!("__durable_slot_{}", b)
    }

    fn ident(&self, b: Bid) -> &syn::Ident {
        &self.lw.bindings[b].ident
    }

    fn variant_name(&self, block: BlockId) -> syn::Ident {
        format_ident!("Await{}", self.lw.blocks[block].resume_of.unwrap_or(0))
    }

    /// Field names in a variant: the source name, made unique when two saved locals share it.
    fn field_names(&self, fields: &[Bid]) -> Vec<syn::Ident> {
        let plain = |f: Bid| self.ident(f).to_string().trim_start_matches("r#").to_string();
        let mut count: HashMap<String, usize> = HashMap::new();
        for &f in fields {
            *count.entry(plain(f)).or_default() += 1;
        }
        fields
            .iter()
            .map(|&f| {
                let n = plain(f);
                if count.get(&n).copied().unwrap_or(0) > 1 {
                    format_ident!("{}_{}", n, f)
                } else {
                    format_ident!("{}", n)
                }
            })
            .collect()
    }

    pub fn emit(
        mut self,
        input_ty: &TokenStream,
        name: &str,
        ctx_pat: Option<&syn::Pat>,
    ) -> Result<Emitted, syn::Error> {
        // Slots.
        let slot_decls: Vec<TokenStream> = self
            .slots
            .iter()
            .map(|&b| {
                let s = self.slot(b);
                if self.lw.bindings[b].kind == BindingKind::Input {
                    quote!(let mut #s: ::core::option::Option<#input_ty> = ::core::option::Option::None;)
                } else {
                    quote!(let mut #s = ::core::option::Option::None;)
                }
            })
            .collect();
        let input_slot =
            self.slots.iter().find(|&&b| self.lw.bindings[b].kind == BindingKind::Input).map(|&b| self.slot(b));
        let start_fill = match &input_slot {
            Some(s) => quote!(#s = ::core::option::Option::Some(__durable_v);),
            None => quote!(let _ = __durable_v;),
        };
        let load_arms: Vec<TokenStream> = self.variants.iter().map(|(&blk, fields)| {
            let slots = fields.iter().map(|&f| self.slot(f));
            let spans = fields.iter().map(|&f| self.ident(f).span());
            let idx = 0..fields.len();
            let pc = blk as u32;
            let restores = slots.zip(spans).zip(idx).map(|((s, sp), i)| {
                quote_spanned! {sp=>
                    #s = ::core::option::Option::Some(match ::durable::__private::restore(&__durable_state, #i) {
                        ::core::result::Result::Ok(__durable_v) => __durable_v,
                        ::core::result::Result::Err(__durable_e) => return ::durable::__private::Step::Error(__durable_e),
                    });
                }
            });
            quote! {
                #pc => { #(#restores)* #pc }
            }
        }).collect();
        let fp = self.fingerprint;
        let arms: Vec<TokenStream> = self
            .arms
            .clone()
            .into_iter()
            .map(|a| {
                let code = self.emit_block(a, Held::default());
                let pc = a as u32;
                quote!(#pc => { #code })
            })
            .collect();
        if let Some(mut e) = self.errors.pop() {
            for rest in self.errors.drain(..) {
                e.combine(rest);
            }
            return Err(e);
        }
        let ctx_bind = match ctx_pat {
            Some(p) => quote!(let #p: ::durable::OrchestrationContext = ::core::clone::Clone::clone(__durable_ctx);),
            None => quote!(),
        };
        let items = &self.lw.items;
        let body = quote! {
            #(#items)*
            #(#slot_decls)*
            let mut __durable_pc: u32 = match __durable_input {
                ::durable::__private::StepInput::Start(__durable_json) => {
                    match ::durable::__private::decode_input::<#input_ty>(__durable_json, #name) {
                        ::core::result::Result::Ok(__durable_v) => { #start_fill 0u32 }
                        ::core::result::Result::Err(__durable_e) => return ::durable::__private::Step::Error(__durable_e),
                    }
                }
                ::durable::__private::StepInput::Resume(__durable_bytes) => {
                    match ::durable::__private::load_state(__durable_bytes, #name, #fp) {
                        ::core::result::Result::Ok(__durable_state) => match __durable_state.pc {
                            #(#load_arms)*
                            _ => return ::durable::__private::Step::Error(::durable::__private::StepResult::BadState(
                                ::std::format!("orchestrator `{}`: the saved state is at an unknown point ({})", #name, __durable_state.at),
                            )),
                        },
                        ::core::result::Result::Err(__durable_e) => return ::durable::__private::Step::Error(__durable_e),
                    }
                }
            };
            #ctx_bind
            '__durable_dispatch: loop {
                match __durable_pc {
                    #(#arms)*
                    _ => ::core::unreachable!("durable: invalid program counter"),
                }
            }
        };
        Ok(Emitted { body })
    }

    fn take(&self, b: Bid) -> TokenStream {
        let id = self.ident(b);
        let s = self.slot(b);
        let m = if self.lw.bindings[b].mutable { quote!(mut) } else { quote!() };
        quote!(let #m #id = ::durable::__private::take(&mut #s);)
    }

    fn write_back(&mut self, b: Bid, held: &Held) -> TokenStream {
        let id = self.ident(b).clone();
        if held.by_name.get(&id.to_string()) != Some(&b) {
            self.errors.push(syn::Error::new(
                id.span(),
                format!(
                    "`{id}` is shadowed by another local of the same name while its own value is still needed after an `.await`; give one of them another name"
                ),
            ));
            return quote!();
        }
        let s = self.slot(b);
        quote!(#s = ::core::option::Option::Some(#id);)
    }

    /// Take the locals a statement uses that this arm does not hold yet.
    fn takes(&mut self, uses: &[Bid], held: &mut Held, live_after: &Set) -> TokenStream {
        let mut out = TokenStream::new();
        for &u in uses {
            if held.held.contains(&u) || !self.slots.contains(&u) {
                continue;
            }
            let name = self.ident(u).to_string();
            if let Some(&h) = held.by_name.get(&name)
                && h != u
                && held.held.contains(&h)
                && live_after.contains(&h)
                && self.slots.contains(&h)
            {
                out.extend(self.write_back(h, held));
                held.held.remove(&h);
            }
            out.extend(self.take(u));
            held.add(self.lw, u);
        }
        out
    }

    fn jump_code(&mut self, target: BlockId, value: Option<&(Bid, TokenStream)>, held: &Held) -> TokenStream {
        let mut held = held.clone();
        let mut out = TokenStream::new();
        if let Some((r, v)) = value {
            if *r == usize::MAX {
                out.extend(quote!({ #v; }));
            } else {
                let id = self.ident(*r).clone();
                out.extend(quote!(let #id = #v;));
                held.add(self.lw, *r);
            }
        }
        let need: Vec<Bid> =
            self.live_in[target].iter().copied().filter(|b| held.held.contains(b) && self.slots.contains(b)).collect();
        for b in need {
            out.extend(self.write_back(b, &held));
        }
        let pc = target as u32;
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

    fn emit_block(&mut self, b: BlockId, mut held: Held) -> TokenStream {
        let (after, _) = self.block_live(b);
        let mut out = TokenStream::new();
        let block = &self.lw.blocks[b];
        for (i, s) in block.stmts.iter().enumerate() {
            match s {
                LStmt::Code { tokens, uses, defs, jumps, let_parts, assigns } => {
                    let t = self.takes(uses, &mut held, &after[i]);
                    out.extend(t);
                    // `x = v;` where this arm does not hold `x`: bind it here (the old value,
                    // if any, stays in its slot and is replaced when `x` is saved again).
                    for &a in assigns {
                        if !held.held.contains(&a) {
                            let id = self.ident(a).clone();
                            let m = if self.lw.bindings[a].mutable { quote!(mut) } else { quote!() };
                            out.extend(quote!(let #m #id;));
                            held.add(self.lw, a);
                        }
                    }
                    // Locals this statement shadows whose values are still needed: save them to
                    // their slots between evaluating the initializer and binding the pattern.
                    let shadowed: Vec<Bid> = defs
                        .iter()
                        .filter_map(|&d| {
                            let h = *held.by_name.get(&self.ident(d).to_string())?;
                            (h != d && held.held.contains(&h) && after[i].contains(&h) && self.slots.contains(&h))
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
                        let name = self.ident(defs[0]).to_string();
                        self.errors.push(syn::Error::new(
                            self.ident(defs[0]).span(),
                            format!("this `{name}` shadows another `{name}` whose value is still needed after an `.await` in this orchestrator; give one of them another name"),
                        ));
                    }
                    for &d in defs {
                        held.add(self.lw, d);
                    }
                }
                LStmt::Poll { task, result, span } => {
                    let task_id = self.ident(*task).clone();
                    let task_slot = self.slot(*task);
                    let result_id = self.ident(*result).clone();
                    let vname = self.variant_name(b).to_string();
                    let fields = self.variants.get(&b).cloned().unwrap_or_default();
                    let fnames: Vec<String> = self.field_names(&fields).iter().map(|i| i.to_string()).collect();
                    let values = fields.iter().zip(&fnames).map(|(&f, n)| {
                        let s = self.slot(f);
                        let sp = self.ident(f).span();
                        quote_spanned!(sp=> ::durable::__private::persist(#n, ::durable::__private::take(&mut #s)))
                    });
                    let fp = self.fingerprint;
                    let pc = b as u32;
                    let span = *span;
                    out.extend(quote_spanned! {span=>
                        let #task_id = ::durable::__private::take(&mut #task_slot);
                        let #result_id = match ::durable::__private::poll_task(__durable_ctx, &#task_id) {
                            ::core::option::Option::Some(__durable_r) => __durable_r,
                            ::core::option::Option::None => {
                                #task_slot = ::core::option::Option::Some(#task_id);
                                return ::durable::__private::suspend(#fp, #pc, #vname, ::std::vec![#(#values),*]);
                            }
                        };
                    });
                    held.add(self.lw, *result);
                }
            }
        }
        let term_live = self.term_live(&block.term);
        match &block.term {
            Term::Goto(t) => out.extend(self.jump_code(*t, None, &held)),
            Term::Await { resume } => out.extend(self.jump_code(*resume, None, &held)),
            Term::Return { tokens, uses, jumps } => {
                out.extend(self.takes(uses, &mut held, &Set::new()));
                let code = self.substitute(tokens.clone(), jumps, &held);
                out.extend(quote!(return ::durable::__private::Step::Done(#code);));
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
