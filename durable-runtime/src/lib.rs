//! Runtime of `durable`: the contexts and durable tasks orchestrators use, the engine that
//! steps them, the backends, the worker and the client.
//!
//! Users depend on the `durable` facade crate, which re-exports this crate and the macros.
//!
//! The modules form layers, and a lower layer never imports an upper one (checked by
//! `tests/layers.rs`): vocabulary (ids, time, messages, history, statuses) → persisted state
//! ([`state`]) → what user code sees ([`context`], [`task`], [`entity`]) → the [`engine`],
//! which owns the storage contract ([`engine::store::Backend`]) → the [`backend`]s → the
//! [`worker`], [`client`] and [`deploy`] tools.

// Layers, lowest first; a module imports only from modules of its own layer or below.
// 1. Vocabulary: time, ids, hashing, errors, payload encoding, messages, history, statuses,
//    trace context;
//    riding out transient backend errors.
// The built-in schedule orchestrator is written with `#[orchestrator(crate = "durable_runtime")]`.
extern crate self as durable_runtime;

pub mod error;
pub mod flow;
pub mod hash;
pub mod history;
pub mod ids;
pub mod instance;
pub mod messages;
pub mod metrics;
pub mod payload;
pub mod retry;
pub mod time;
pub mod trace;
pub(crate) mod transient;
// 2. Persisted state: the runtime's task bookkeeping and snapshots.
pub mod state;
// 3. What user code sees: contexts, durable tasks, entities, the orchestrator/activity traits.
pub mod context;
pub mod entity;
pub mod orchestrator;
pub mod schedule;
pub mod task;
// 4. The engine: steps instances; owns the storage contract (`engine::store::Backend`).
pub mod engine;
// 5. Backends implementing the contract.
pub mod backend;
// 6. Worker and client.
pub mod client;
pub mod deploy;
#[doc(hidden)]
pub mod private;
pub mod worker;
/// The path generated code uses (`#[orchestrator(crate = "durable_runtime")]`). Not a stable API.
#[doc(hidden)]
pub use private as __private;

pub use client::Client;
pub use context::{ActivityContext, OrchestrationContext};
pub use deploy::{ExportedInstance, VersionSummary};
pub use entity::{Entity, EntityContext};
pub use error::{ActivityError, Error, OrchestrationError, TaskError, TaskErrorKind};
pub use flow::{ConcurrencyLimit, RateLimit};
pub use history::{EventKind, HistoryEvent, HistoryTable};
pub use ids::EntityId;
pub use instance::{InstanceId, InstancePage, InstanceQuery, InstanceStatus, RuntimeStatus};
pub use orchestrator::{Activity, Orchestrator};
pub use retry::RetryPolicy;
pub use schedule::{CatchUpPolicy, OverlapPolicy, Schedule, ScheduleInfo};
pub use state::EntityJournalEntry;
pub use task::{DurableTask, Either, Select, Task, WhenAll, WhenAny};
pub use trace::TraceContext;
pub use worker::{Worker, WorkerBuilder, WorkerHandle};
