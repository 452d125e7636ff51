//! Parse: the macros' inputs into our own AST. Each node keeps a reference to the user's syn
//! node, so later passes put errors on the user's tokens. Parsing judges nothing but the
//! attribute arguments; the signature rules are in `check`.

mod activity;
mod args;
mod entity;
mod orchestrator;

pub(crate) use activity::{ActivityFn, ActivityInput};
pub(crate) use args::{MacroKind, RuntimePath, parse_args};
pub(crate) use entity::{EntityImpl, OpInput, Operation};
pub(crate) use orchestrator::{CtxParam, OrchestratorFn};

use proc_macro2::{Span, TokenStream};

/// What `#[orchestrator]` goes on, said when the item is something else.
pub(crate) const ORCHESTRATOR_GOES_ON: &str =
    "`#[orchestrator]` goes on an `async fn(ctx: OrchestrationContext, input: I) -> Result<O, E>`";
/// What `#[activity]` goes on, said when the item is something else.
pub(crate) const ACTIVITY_GOES_ON: &str = "`#[activity]` goes on an `async fn(input: I) -> Result<O, E>`";
/// What `#[entity]` goes on, said when the item is something else.
pub(crate) const ENTITY_GOES_ON: &str = "`#[entity]` goes on an `impl` block of the entity's state type: `#[entity] impl Counter { fn add(&mut self, n: i64) { … } }`";

/// Parse the item an attribute is on; if it is not a `T`, the error (on the attribute) says
/// what the attribute goes on.
pub(crate) fn item<T: syn::parse::Parse>(tokens: TokenStream, goes_on: &str) -> syn::Result<T> {
    syn::parse2(tokens).map_err(|_| syn::Error::new(Span::call_site(), goes_on))
}
