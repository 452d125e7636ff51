//! Attribute macros of `durable`. Use them through the `durable` crate:
//! `use durable::prelude::*;`.
//!
//! - `#[activity]` turns an `async fn` into a typed activity.
//! - `#[orchestrator]` compiles an `async fn` into an explicit, serializable state machine.
//! - `#[entity]` makes the methods of an `impl` block the operations of a durable entity.
//!
//! Each takes `name = "…"` (the registered name) and `crate = "…"` (the path of the runtime
//! crate in generated code, `::durable` by default; e.g. `crate = "durable_runtime"`).
//!
//! Set `DURABLE_MACROS_DEBUG=1` (or to an item's name) while building to print the generated
//! code.
//!
//! The crate is a pipeline: `parse` (our own AST and the attribute arguments), `check`
//! (signature rules, determinism, where `.await` may stand), `lower` (an orchestrator body to a
//! control-flow graph split at `.await`s, with liveness), `expand` (the generated code).

mod check;
mod ctxt;
mod expand;
mod guard;
mod lower;
mod parse;
mod syntax;

use proc_macro::TokenStream;

/// Compile an `async fn(ctx: OrchestrationContext, input: I) -> Result<O, E>` into a durable
/// state machine. See the `durable` crate's documentation.
#[proc_macro_attribute]
pub fn orchestrator(attr: TokenStream, item: TokenStream) -> TokenStream {
    guard::guarded("orchestrator", attr, item, expand::orchestrator::expand)
}

/// Make an `async fn(input: I) -> Result<O, E>` (optionally taking an `ActivityContext` first)
/// a typed activity. See the `durable` crate's documentation.
#[proc_macro_attribute]
pub fn activity(attr: TokenStream, item: TokenStream) -> TokenStream {
    guard::guarded("activity", attr, item, expand::activity::expand)
}

/// Make the methods of an `impl` block the operations of a durable entity: `&self` methods
/// read, `&mut self` methods update, an optional `ctx: &mut EntityContext` parameter comes
/// right after `self`. See the `durable` crate's documentation.
#[proc_macro_attribute]
pub fn entity(attr: TokenStream, item: TokenStream) -> TokenStream {
    guard::guarded("entity", attr, item, expand::entity::expand)
}
