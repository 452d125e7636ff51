//! Attribute macros of `durable`. Use them through the `durable` crate:
//! `use durable::prelude::*;`.
//!
//! - `#[activity]` turns an `async fn` into a typed activity.
//! - `#[orchestrator]` compiles an `async fn` into an explicit, serializable state machine.
//!
//! Set `DURABLE_MACROS_DEBUG=1` (or to an orchestrator's name) while building to print the
//! generated code.

mod activity;
mod check;
mod ctxt;
mod entity;
mod lower;
mod orchestrator;
mod syntax;

use proc_macro::TokenStream;

/// Compile an `async fn(ctx: OrchestrationContext, input: I) -> Result<O, E>` into a durable
/// state machine. See the `durable` crate's documentation.
#[proc_macro_attribute]
pub fn orchestrator(attr: TokenStream, item: TokenStream) -> TokenStream {
    orchestrator::expand(attr.into(), item.into()).into()
}

/// Make an `async fn(input: I) -> Result<O, E>` (optionally taking an `ActivityContext` first)
/// a typed activity. See the `durable` crate's documentation.
#[proc_macro_attribute]
pub fn activity(attr: TokenStream, item: TokenStream) -> TokenStream {
    activity::expand(attr.into(), item.into()).into()
}

/// Make the methods of an `impl` block the operations of a durable entity: `&self` methods
/// read, `&mut self` methods update, an optional `ctx: &mut EntityContext` parameter comes
/// right after `self`. See the `durable` crate's documentation.
#[proc_macro_attribute]
pub fn entity(attr: TokenStream, item: TokenStream) -> TokenStream {
    entity::expand(attr.into(), item.into()).into()
}
