//! The AST of an `#[activity]` fn: its inputs (an optional `ActivityContext`, then the values
//! that make up the activity's input) and its return type.

use super::args::Args;
use syn::{FnArg, ItemFn, Receiver, ReturnType, Type};

/// An activity `async fn([ctx: ActivityContext,] input: I, …) -> Result<O, E>`.
pub(crate) struct ActivityFn<'a> {
    /// The user's item, for spans and the body.
    pub item: &'a ItemFn,
    pub args: Args,
    /// The parameters in order.
    pub inputs: Vec<ActivityInput<'a>>,
    /// The declared return type; `None` if there is none (an error).
    pub ret: Option<&'a Type>,
}

/// One parameter of an activity.
pub(crate) enum ActivityInput<'a> {
    /// `self` (an error).
    Receiver(&'a Receiver),
    /// A parameter whose type is named `ActivityContext`; `index` is its position.
    Context { index: usize, ty: &'a Type },
    /// Part of the activity's input.
    Value(&'a Type),
}

impl<'a> ActivityFn<'a> {
    /// Read the signature of `item`.
    pub(crate) fn from_item(item: &'a ItemFn, args: Args) -> Self {
        let sig = &item.sig;
        let inputs = sig
            .inputs
            .iter()
            .enumerate()
            .map(|(index, a)| match a {
                FnArg::Receiver(r) => ActivityInput::Receiver(r),
                FnArg::Typed(pt) if is_activity_context(&pt.ty) => ActivityInput::Context { index, ty: &pt.ty },
                FnArg::Typed(pt) => ActivityInput::Value(&pt.ty),
            })
            .collect();
        let ret = match &sig.output {
            ReturnType::Type(_, t) => Some(&**t),
            ReturnType::Default => None,
        };
        ActivityFn { item, args, inputs, ret }
    }

    /// Whether the activity takes an `ActivityContext`.
    pub(crate) fn takes_ctx(&self) -> bool {
        self.inputs.iter().any(|i| matches!(i, ActivityInput::Context { .. }))
    }

    /// The types of the parameters that make up the input, in order.
    pub(crate) fn value_types(&self) -> Vec<&'a Type> {
        self.inputs
            .iter()
            .filter_map(|i| match i {
                ActivityInput::Value(t) => Some(*t),
                _ => None,
            })
            .collect()
    }
}

fn is_activity_context(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "ActivityContext"),
        _ => false,
    }
}
