//! # durable
//!
//! Stateful workflows and actors for Rust. Write orchestrators as ordinary `async fn`s; the
//! `#[orchestrator]` macro compiles each one into an explicit, serializable state machine that
//! workers run durably: a process can die at any instruction and the work goes on elsewhere.
//!
//! ```ignore
//! use durable::prelude::*;
//!
//! #[activity]
//! async fn say_hello(name: String) -> Result<String, ActivityError> {
//!     Ok(format!("Hello {name}!"))
//! }
//!
//! #[orchestrator]
//! async fn hello_cities(ctx: OrchestrationContext, cities: Vec<String>) -> Result<Vec<String>, OrchestrationError> {
//!     let mut greetings = Vec::new();
//!     for city in cities {
//!         greetings.push(ctx.call_activity(say_hello, city).await?);
//!     }
//!     Ok(greetings)
//! }
//! ```
//!
//! See the README for the programming model, the guarantees and the determinism rules.

pub use durable_macros::{activity, entity, orchestrator};
pub use durable_runtime::*;

/// What orchestrator, activity and worker code needs: `use durable::prelude::*;`.
pub mod prelude {
    pub use durable_macros::{activity, entity, orchestrator};
    pub use durable_runtime::{
        ActivityContext, ActivityError, CatchUpPolicy, Client, ConcurrencyLimit, Either, EntityContext, EntityId,
        OrchestrationContext, OrchestrationError, OverlapPolicy, RateLimit, RetryPolicy, Schedule, TaskError, Worker,
    };
    pub use serde::{Deserialize, Serialize};
    pub use std::time::Duration;
}

/// Support for generated code. Not a stable API: do not use it directly.
#[doc(hidden)]
pub mod __private {
    pub use durable_runtime::private::*;
}

/// OpenTelemetry export (feature `otel`): `durable::telemetry::init_otlp(endpoint)`.
#[cfg(feature = "otel")]
pub mod telemetry;

/// Testing helpers: run orchestrators in-process, step by step.
pub mod testing;

/// The README's code blocks, compiled and run as doctests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
