//! The step function of an orchestrator: the state machine written out from the lowered body.
//!
//! This is code generation, so it lives in `expand`; `lower` hands over a finished
//! [`Lowered`] (blocks, locals, liveness) and never sees the tokens written here.
//!
//! Each *arm* of the generated `match pc` starts at an await's resume point, a loop head, a
//! join, or the entry (`layout`); `if`/`match` branches are emitted inline as real Rust control
//! flow, so borrows and scopes work as written (`arms`). A local that crosses arms lives in a
//! hoisted `Option` slot; an arm takes it out (under its source name) right before its first
//! use and puts it back on the way out if the target needs it. A suspension saves exactly the
//! locals live at that await into the state enum's variant.

mod arms;
mod layout;

use crate::lower::Lowered;
use crate::lower::ir::BindingKind;
use crate::parse::RuntimePath;
use layout::{Layout, field_names, slot};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};

/// What the step function needs besides the lowered body.
pub(crate) struct StepParams<'a> {
    /// The input type (the parameters' types).
    pub input_ty: &'a TokenStream,
    /// The registered name, for error messages and state checks.
    pub name: &'a str,
    /// The context parameter's pattern, bound from the step's context.
    pub ctx_pat: Option<&'a syn::Pat>,
    pub rt: &'a RuntimePath,
}

/// The body of `__durable_run`: decode the input or load the saved state, then run arms until
/// the orchestrator returns or suspends. Errors are shadowing conflicts found while emitting.
pub(crate) fn step_body(lw: &Lowered, params: &StepParams<'_>) -> Result<TokenStream, syn::Error> {
    let mut e = Emitter { lw, layout: Layout::new(lw), rt: params.rt, errors: Vec::new() };
    e.emit(params)
}

/// Emits the step function; collects errors.
struct Emitter<'l> {
    lw: &'l Lowered,
    layout: Layout,
    rt: &'l RuntimePath,
    errors: Vec<syn::Error>,
}

impl Emitter<'_> {
    fn emit(&mut self, params: &StepParams<'_>) -> Result<TokenStream, syn::Error> {
        let (input_ty, name) = (params.input_ty, params.name);
        for site in &self.layout.sites {
            if let Some((checkpoint, _)) = site.key.split_once('#')
                && checkpoint.starts_with("checkpoint(")
            {
                self.errors.push(syn::Error::new(
                    site.span,
                    format!(
                        "`.{checkpoint}` names another suspension point of this orchestrator too: give each its own name, so a state saved at one is never resumed at the other"
                    ),
                ));
            }
        }
        // Slots.
        let slot_decls: Vec<TokenStream> = self
            .layout
            .slots
            .iter()
            .map(|&b| {
                let s = slot(b);
                if self.lw.bindings[b].kind == BindingKind::Input {
                    quote!(let mut #s: ::core::option::Option<#input_ty> = ::core::option::Option::None;)
                } else {
                    quote!(let mut #s = ::core::option::Option::None;)
                }
            })
            .collect();
        let input_slot =
            self.layout.slots.iter().find(|&&b| self.lw.bindings[b].kind == BindingKind::Input).map(|&b| slot(b));
        let start_fill = match &input_slot {
            Some(s) => quote!(#s = ::core::option::Option::Some(__durable_v);),
            None => quote!(let _ = __durable_v;),
        };
        let load_arms: Vec<TokenStream> = self
            .layout
            .variants
            .iter()
            .map(|(&blk, fields)| {
                let slots = fields.iter().map(|&f| slot(f));
                let spans = fields.iter().map(|&f| self.lw.bindings[f].ident.span());
                let names: Vec<String> = field_names(self.lw, fields);
                let pc = blk.pc();
                let restores = slots.zip(spans).zip(names).map(|((s, sp), n)| {
                    let p = self.rt.private(sp);
                    quote_spanned! {sp=>
                        #s = ::core::option::Option::Some(match #p::restore(&__durable_state, #n) {
                            ::core::result::Result::Ok(__durable_v) => __durable_v,
                            ::core::result::Result::Err(__durable_e) => return #p::Step::Error(__durable_e),
                        });
                    }
                });
                quote! {
                    #pc => { #(#restores)* #pc }
                }
            })
            .collect();
        let fp = quote!(__DURABLE_FINGERPRINT);
        let sites = self
            .layout
            .sites
            .iter()
            .map(|site| {
                let key = &site.key;
                let pc = site.block.pc();
                let fields = self.layout.variants.get(&site.block).map(Vec::as_slice).unwrap_or_default();
                let names: Vec<String> = field_names(self.lw, fields);
                let line = quote_spanned!(site.span=> ::core::line!());
                let p = self.rt.private(Span::call_site());
                quote!(#p::Site { key: #key, pc: #pc, line: #line, locals: &[#(#names),*] })
            })
            .collect::<Vec<_>>();
        let arms: Vec<TokenStream> = self
            .layout
            .arms
            .clone()
            .into_iter()
            .map(|a| {
                let code = self.emit_block(a, arms::Held::default());
                let pc = a.pc();
                quote!(#pc => { #code })
            })
            .collect();
        if let Some(mut e) = self.errors.pop() {
            for rest in self.errors.drain(..) {
                e.combine(rest);
            }
            return Err(e);
        }
        let root = self.rt.root(Span::call_site());
        let p = self.rt.private(Span::call_site());
        let ctx_bind = match params.ctx_pat {
            Some(pat) => quote!(let #pat: #root::OrchestrationContext = ::core::clone::Clone::clone(__durable_ctx);),
            None => quote!(),
        };
        let items = &self.lw.cfg.items;
        let hoisted = &self.lw.cfg.hoisted;
        Ok(quote! {
            #(#items)*
            const __DURABLE_SITES: &[#p::Site] = &[#(#sites),*];
            #(#slot_decls)*
            #(#hoisted)*
            let mut __durable_pc: u32 = match __durable_input {
                #p::StepInput::Start(__durable_json) => {
                    match #p::decode_input::<#input_ty>(__durable_json, #name) {
                        ::core::result::Result::Ok(__durable_v) => { #start_fill 0u32 }
                        ::core::result::Result::Err(__durable_e) => return #p::Step::Error(__durable_e),
                    }
                }
                #p::StepInput::Resume(__durable_bytes) => {
                    match #p::load_state(__durable_bytes, #name, #fp, __DURABLE_SITES) {
                        ::core::result::Result::Ok((__durable_state, __durable_at)) => match __durable_at {
                            #(#load_arms)*
                            _ => return #p::Step::Error(#p::StepResult::BadState(
                                ::std::format!("orchestrator `{}`: the saved state is at an unknown point ({})", #name, __durable_state.at),
                            )),
                        },
                        ::core::result::Result::Err(__durable_e) => return #p::Step::Error(__durable_e),
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
        })
    }
}
