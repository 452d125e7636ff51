//! `#[entity]` on an `impl` block: dispatch by operation name and a typed proxy.

use crate::ctxt::{Ctxt, parse_name_option, with_errors};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ItemImpl, Pat, ReturnType, Type};

struct Operation {
    name: syn::Ident,
    takes_ctx: bool,
    args: Vec<(syn::Ident, Type)>,
    /// The `Ok` type for a `Result` return, or the return type (`()` if none).
    output: Type,
    fallible: bool,
}

pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let imp: ItemImpl = match syn::parse2(item.clone()) {
        Ok(i) => i,
        Err(_) => {
            return syn::Error::new(
                Span::call_site(),
                "`#[entity]` goes on an `impl` block of the entity's state type: `#[entity] impl Counter { fn add(&mut self, n: i64) { … } }`",
            )
            .to_compile_error();
        }
    };
    let cx = Ctxt::new();
    let name_override = parse_name_option(&cx, attr, "entity", "the entity name");
    let out = expand_impl(&cx, &imp, name_override);
    match cx.check() {
        Ok(()) => out,
        Err(e) => with_errors(quote!(#imp), e),
    }
}

fn snake_case(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn is_entity_context(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => is_entity_context(&r.elem),
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "EntityContext"),
        _ => false,
    }
}

/// `Result<T, E>` → `Some(T)`.
fn result_ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if seg.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &seg.arguments else { return None };
    match args.args.first()? {
        syn::GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    }
}

fn expand_impl(cx: &Ctxt, imp: &ItemImpl, name_override: Option<String>) -> TokenStream {
    if let Some((path, _)) = &imp.trait_ {
        cx.error_spanned_by(path, "`#[entity]` goes on the type's own `impl` block, not on a trait impl");
        return TokenStream::new();
    }
    if !imp.generics.params.is_empty() {
        cx.error_spanned_by(
            &imp.generics,
            "an entity cannot be generic: it is addressed by name, so its state type must be fixed",
        );
        return TokenStream::new();
    }
    let self_ty = &imp.self_ty;
    let type_name = match &**self_ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default(),
        other => {
            cx.error_spanned_by(other, "`#[entity]` needs a named state type: `impl Counter { … }`");
            return TokenStream::new();
        }
    };
    let entity_name = name_override.unwrap_or_else(|| snake_case(&type_name));
    let mut ops = Vec::new();
    for item in &imp.items {
        let ImplItem::Fn(f) = item else { continue };
        let sig = &f.sig;
        let Some(FnArg::Receiver(recv)) = sig.inputs.first() else { continue };
        if !matches!(recv.kind, syn::ReceiverKind::Reference(..)) {
            cx.error_spanned_by(
                recv,
                "an entity operation takes `&self` (a read) or `&mut self` (an update), not `self`",
            );
            continue;
        }
        if let Some(a) = &sig.asyncness {
            cx.error_spanned_by(a, "entity operations are synchronous (they run one at a time on the entity's state): remove `async`; do I/O in an activity called from an orchestration, which the operation can start with `ctx.start_orchestration`");
            continue;
        }
        if !sig.generics.params.is_empty() {
            cx.error_spanned_by(
                &sig.generics,
                "an entity operation cannot be generic: its input is decoded from JSON, so its types must be fixed",
            );
            continue;
        }
        let mut takes_ctx = false;
        let mut args = Vec::new();
        for (i, a) in sig.inputs.iter().skip(1).enumerate() {
            let FnArg::Typed(pt) = a else { continue };
            if is_entity_context(&pt.ty) {
                if i != 0 {
                    cx.error_spanned_by(&pt.ty, "the `&mut EntityContext` parameter must come right after `self`");
                }
                takes_ctx = true;
                continue;
            }
            if let Type::Reference(r) = &*pt.ty {
                cx.error_spanned_by(r, "an entity operation's input must be owned (it is decoded from the message): take `String` instead of `&str`, `Vec<T>` instead of `&[T]`");
                continue;
            }
            let ident = match &*pt.pat {
                Pat::Ident(pi) => pi.ident.clone(),
                _ => format_ident!("arg{}", i),
            };
            args.push((ident, (*pt.ty).clone()));
        }
        let (output, fallible) = match &sig.output {
            ReturnType::Default => (syn::parse_quote!(()), false),
            ReturnType::Type(_, t) => match result_ok_type(t) {
                Some(ok) => (ok, true),
                None => ((**t).clone(), false),
            },
        };
        ops.push(Operation { name: sig.ident.clone(), takes_ctx, args, output, fallible });
    }
    if cx.has_errors() {
        return TokenStream::new();
    }
    let proxy = format_ident!("__Durable{}Proxy", type_name);
    let op_names: Vec<String> = ops.iter().map(|o| o.name.to_string()).collect();
    let proxy_methods = ops.iter().map(|o| {
        let name = &o.name;
        let op = name.to_string();
        let out = &o.output;
        let params = o.args.iter().map(|(i, t)| quote!(#i: #t));
        let input = match o.args.len() {
            0 => quote!(&()),
            1 => {
                let i = &o.args[0].0;
                quote!(&#i)
            }
            _ => {
                let is = o.args.iter().map(|(i, _)| i);
                quote!(&(#(#is,)*))
            }
        };
        let doc = format!("Operation `{op}`.");
        quote! {
            #[doc = #doc]
            pub fn #name(self, #(#params),*) -> S::Output<#out> {
                ::durable::__private::EntitySink::__send::<#out, _>(self.0, #op, #input)
            }
        }
    });
    let arms = ops.iter().map(|o| {
        let name = &o.name;
        let op = name.to_string();
        let idents: Vec<&syn::Ident> = o.args.iter().map(|(i, _)| i).collect();
        let decode = match o.args.len() {
            0 => quote!(::durable::__private::entity_no_input(__durable_input, Self::NAME, #op)?;),
            1 => {
                let (i, t) = &o.args[0];
                quote!(let #i: #t = ::durable::__private::entity_input(__durable_input, Self::NAME, #op)?;)
            }
            _ => {
                let ts = o.args.iter().map(|(_, t)| t);
                quote!(let (#(#idents,)*): (#(#ts,)*) = ::durable::__private::entity_input(__durable_input, Self::NAME, #op)?;)
            }
        };
        let ctx_arg = if o.takes_ctx { quote!(__durable_ctx,) } else { quote!() };
        let call = quote_spanned!(name.span()=> Self::#name(self, #ctx_arg #(#idents),*));
        let ret = if o.fallible {
            quote! {
                match #call {
                    ::core::result::Result::Ok(__durable_v) => ::durable::__private::entity_output(&__durable_v, Self::NAME, #op),
                    ::core::result::Result::Err(__durable_e) => ::core::result::Result::Err(::std::string::ToString::to_string(&__durable_e)),
                }
            }
        } else {
            quote! {
                let __durable_v = #call;
                ::durable::__private::entity_output(&__durable_v, Self::NAME, #op)
            }
        };
        quote! {
            #op => {
                #decode
                #ret
            }
        }
    });
    let ctx_unused = if ops.iter().any(|o| o.takes_ctx) { quote!() } else { quote!(let _ = __durable_ctx;) };
    let self_span = self_ty.span();
    let impl_head = quote_spanned!(self_span=> impl ::durable::__private::Entity for #self_ty);
    quote! {
        #imp

        /// Typed proxy of the entity's operations (generated by `#[entity]`).
        #[doc(hidden)]
        #[allow(non_camel_case_types, private_interfaces)]
        pub struct #proxy<S>(S);

        #[allow(private_interfaces, clippy::unused_unit)]
        impl<S: ::durable::__private::EntitySink> #proxy<S> {
            #(#proxy_methods)*
        }

        const _: () = {
            #impl_head {
                const NAME: &'static str = #entity_name;
                const OPERATIONS: &'static [&'static str] = &[#(#op_names),*];
                type Proxy<S: ::durable::__private::EntitySink> = #proxy<S>;
                fn __proxy<S: ::durable::__private::EntitySink>(sink: S) -> #proxy<S> {
                    #proxy(sink)
                }
                #[allow(unreachable_code, clippy::unit_arg, clippy::let_unit_value)]
                fn __dispatch(
                    &mut self,
                    __durable_ctx: &mut ::durable::EntityContext,
                    __durable_op: &str,
                    __durable_input: &str,
                ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                    #ctx_unused
                    match __durable_op {
                        #(#arms)*
                        _ => ::core::result::Result::Err(::durable::__private::unknown_operation(Self::NAME, __durable_op, Self::OPERATIONS)),
                    }
                }
            }
        };
    }
}
