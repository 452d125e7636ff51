//! Signature rules of the three macros: what an orchestrator fn, an activity fn and an entity
//! operation may look like. Each error sits on the offending tokens and says the fix; the
//! errors come in the order of the signature.

use crate::ctxt::Ctxt;
use crate::parse::{ActivityFn, ActivityInput, CtxParam, EntityImpl, OpInput, OrchestratorFn};
use syn::{FnArg, Type};

/// An orchestrator is a free, non-generic `async fn(ctx, inputs…) -> Result<T, E>`.
pub(crate) fn orchestrator(cx: &Ctxt, f: &OrchestratorFn<'_>) {
    let sig = &f.item.sig;
    if sig.asyncness.is_none() {
        cx.error_spanned_by(sig.fn_token, "an orchestrator must be an `async fn`: add `async`");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_spanned_by(&sig.generics, "an orchestrator cannot be generic: it is registered and started by name, so its input and output types must be fixed");
    }
    if let Some(c) = &sig.constness {
        cx.error_spanned_by(c, "an orchestrator cannot be `const`");
    }
    if let syn::Safety::Unsafe(u) = &sig.safety {
        cx.error_spanned_by(u, "an orchestrator cannot be `unsafe`");
    }
    if let Some(v) = &sig.variadic {
        cx.error_spanned_by(v, "an orchestrator cannot be variadic");
    }
    if f.ret.is_none() {
        cx.error_spanned_by(
            &sig.ident,
            "an orchestrator must return `Result<T, E>`, e.g. `-> Result<String, OrchestrationError>`",
        );
    }
    match &f.ctx {
        CtxParam::Named(_) | CtxParam::Wild => {}
        CtxParam::Unsupported(p) => {
            cx.error_spanned_by(p, "the context parameter must be a plain name, e.g. `ctx: OrchestrationContext`")
        }
        CtxParam::Receiver(r) => {
            cx.error_spanned_by(r, "an orchestrator is a free `async fn`, not a method: remove `self`")
        }
        CtxParam::Missing => cx.error_spanned_by(
            &sig.ident,
            "an orchestrator takes the context first: `async fn name(ctx: OrchestrationContext, input: I)`",
        ),
    }
    for a in sig.inputs.iter().skip(1) {
        if let FnArg::Receiver(r) = a {
            cx.error_spanned_by(r, "an orchestrator cannot take `self`");
        }
    }
}

/// An activity is a free, non-generic `async fn([ActivityContext,] owned inputs…) -> Result<T, E>`.
pub(crate) fn activity(cx: &Ctxt, f: &ActivityFn<'_>) {
    let sig = &f.item.sig;
    if sig.asyncness.is_none() {
        cx.error_spanned_by(sig.fn_token, "an activity must be an `async fn`: add `async`");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_spanned_by(&sig.generics, "an activity cannot be generic: it is registered and called by name, so its input and output types must be fixed");
    }
    if f.ret.is_none() {
        cx.error_spanned_by(
            &sig.ident,
            "an activity must return `Result<T, E>`, e.g. `-> Result<String, ActivityError>`",
        );
        return;
    }
    for input in &f.inputs {
        match input {
            ActivityInput::Receiver(r) => {
                cx.error_spanned_by(r, "an activity is a free `async fn`, not a method: remove `self`")
            }
            ActivityInput::Context { index, ty } => {
                if *index != 0 {
                    cx.error_spanned_by(ty, "the `ActivityContext` parameter must come first");
                }
            }
            ActivityInput::Value(ty) => {
                if let Type::Reference(r) = ty {
                    cx.error_spanned_by(r, "an activity's input must be owned (it is deserialized from the task's input): take `String` instead of `&str`, `Vec<T>` instead of `&[T]`");
                }
            }
        }
    }
}

/// An entity is the inherent, non-generic `impl` of a named type; each operation is a
/// synchronous, non-generic method on `&self` or `&mut self` with owned inputs and an optional
/// `&mut EntityContext` right after `self`.
pub(crate) fn entity(cx: &Ctxt, e: &EntityImpl<'_>) {
    let imp = e.item;
    if let Some((path, _)) = &imp.trait_ {
        cx.error_spanned_by(path, "`#[entity]` goes on the type's own `impl` block, not on a trait impl");
        return;
    }
    if !imp.generics.params.is_empty() {
        cx.error_spanned_by(
            &imp.generics,
            "an entity cannot be generic: it is addressed by name, so its state type must be fixed",
        );
        return;
    }
    if e.type_name.is_none() {
        cx.error_spanned_by(&imp.self_ty, "`#[entity]` needs a named state type: `impl Counter { … }`");
        return;
    }
    for op in &e.ops {
        let sig = &op.func.sig;
        if !matches!(op.receiver.kind, syn::ReceiverKind::Reference(..)) {
            cx.error_spanned_by(
                op.receiver,
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
        for input in &op.inputs {
            match input {
                OpInput::Context { index, ty } => {
                    if *index != 0 {
                        cx.error_spanned_by(ty, "the `&mut EntityContext` parameter must come right after `self`");
                    }
                }
                OpInput::Value { ty, .. } => {
                    if let Type::Reference(r) = ty {
                        cx.error_spanned_by(r, "an entity operation's input must be owned (it is decoded from the message): take `String` instead of `&str`, `Vec<T>` instead of `&[T]`");
                    }
                }
            }
        }
    }
}
