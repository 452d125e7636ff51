//! Runtime of `durable`: the contexts and durable tasks orchestrators use, the engine that
//! steps them, the backends, the worker and the client.
//!
//! Users depend on the `durable` facade crate, which re-exports this crate and the macros.

pub mod backend;
pub mod client;
pub mod context;
pub mod engine;
pub mod entity;
pub mod error;
pub mod history;
pub mod instance;
pub mod metrics;
pub mod orchestrator;
pub mod payload;
#[doc(hidden)]
pub mod private;
/// The path generated code uses (`#[orchestrator(crate = "durable_runtime")]`). Not a stable API.
#[doc(hidden)]
pub use private as __private;
pub mod retry;
pub mod task;
pub mod worker;

pub use client::Client;
pub use context::{ActivityContext, OrchestrationContext};
pub use entity::{Entity, EntityContext, EntityId};
pub use error::{ActivityError, Error, OrchestrationError, TaskError, TaskErrorKind};
pub use history::{EventKind, HistoryEvent};
pub use instance::{InstanceId, InstancePage, InstanceQuery, InstanceStatus, RuntimeStatus};
pub use orchestrator::{Activity, Orchestrator};
pub use retry::RetryPolicy;
pub use task::{DurableTask, Either, Select, Task, WhenAll, WhenAny};
pub use worker::{Worker, WorkerBuilder, WorkerHandle};
