//! The AST of an `#[entity]` impl block: the state type's name and one operation per method
//! that takes `self`.

use super::args::Args;
use quote::format_ident;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, Pat, Receiver, ReturnType, Type};

/// `#[entity] impl State { fn op(&mut self, …) { … } … }`.
pub(crate) struct EntityImpl<'a> {
    /// The user's item, re-emitted as is.
    pub item: &'a ItemImpl,
    pub args: Args,
    /// The last segment of the state type's path; `None` if the type is not a path (an error).
    pub type_name: Option<String>,
    /// The methods whose first parameter is `self`, in order.
    pub ops: Vec<Operation<'a>>,
}

/// A method of the entity that takes `self`: an operation.
pub(crate) struct Operation<'a> {
    /// The user's method, for spans.
    pub func: &'a ImplItemFn,
    pub receiver: &'a Receiver,
    /// The parameters after `self`.
    pub inputs: Vec<OpInput<'a>>,
    /// The `Ok` type for a `Result` return, or the return type (`()` if none).
    pub output: Type,
    /// Whether the method returns a `Result` (its `Err` becomes the operation's error).
    pub fallible: bool,
}

/// A parameter of an operation after `self`.
pub(crate) enum OpInput<'a> {
    /// A parameter whose type is (a reference to) `EntityContext`; `index` counts from the
    /// parameter right after `self`.
    Context { index: usize, ty: &'a Type },
    /// Part of the operation's input, with the name it is decoded into (`arg{index}` for a
    /// parameter that is not a plain name).
    Value { ident: syn::Ident, ty: &'a Type },
}

impl<'a> EntityImpl<'a> {
    /// Read the impl block `item`.
    pub(crate) fn from_item(item: &'a ItemImpl, args: Args) -> Self {
        let type_name = match &*item.self_ty {
            Type::Path(p) => Some(p.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default()),
            _ => None,
        };
        let ops = item
            .items
            .iter()
            .filter_map(|i| match i {
                ImplItem::Fn(f) => Operation::from_fn(f),
                _ => None,
            })
            .collect();
        EntityImpl { item, args, type_name, ops }
    }
}

impl<'a> Operation<'a> {
    fn from_fn(func: &'a ImplItemFn) -> Option<Self> {
        let sig = &func.sig;
        let Some(FnArg::Receiver(receiver)) = sig.inputs.first() else { return None };
        let inputs = sig
            .inputs
            .iter()
            .skip(1)
            .enumerate()
            .filter_map(|(index, a)| {
                let FnArg::Typed(pt) = a else { return None };
                if is_entity_context(&pt.ty) {
                    return Some(OpInput::Context { index, ty: &pt.ty });
                }
                let ident = match &*pt.pat {
                    Pat::Ident(pi) => pi.ident.clone(),
                    _ => format_ident!("arg{}", index),
                };
                Some(OpInput::Value { ident, ty: &pt.ty })
            })
            .collect();
        let (output, fallible) = match &sig.output {
            ReturnType::Default => (syn::parse_quote!(()), false),
            ReturnType::Type(_, t) => match result_ok_type(t) {
                Some(ok) => (ok, true),
                None => ((**t).clone(), false),
            },
        };
        Some(Operation { func, receiver, inputs, output, fallible })
    }

    /// The operation's name: the method's.
    pub(crate) fn name(&self) -> &'a syn::Ident {
        &self.func.sig.ident
    }

    /// Whether the operation takes an `EntityContext`.
    pub(crate) fn takes_ctx(&self) -> bool {
        self.inputs.iter().any(|i| matches!(i, OpInput::Context { .. }))
    }

    /// The input parameters (all but the context), with their names.
    pub(crate) fn values(&self) -> Vec<(&syn::Ident, &'a Type)> {
        self.inputs
            .iter()
            .filter_map(|i| match i {
                OpInput::Value { ident, ty } => Some((ident, *ty)),
                OpInput::Context { .. } => None,
            })
            .collect()
    }
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
