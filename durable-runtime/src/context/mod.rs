//! The contexts user code receives: [`OrchestrationContext`] and [`ActivityContext`].
//!
//! An orchestration context records what the orchestrator asks for (activities, timers, events,
//! sub-orchestrations, entity operations) as [`Command`](crate::messages::Command)s, and hands
//! it the results the engine delivered. It holds the instance's
//! [`RuntimeState`](crate::state::RuntimeState) for the step.

mod activity;
mod entity_calls;
mod handle;
mod orchestration;

pub use activity::ActivityContext;
pub use entity_calls::{EntityCall, EntitySignalFromOrchestration, LockGuard};
pub use handle::{CtxState, OrchestrationContext};
