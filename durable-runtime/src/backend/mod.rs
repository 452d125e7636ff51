//! Storage backends: where instances, their inboxes, histories, snapshots, timers and activity
//! work items live. Each implements the engine's storage contract, [`Backend`] (see
//! `crate::engine::store` for the model).
//!
//! - [`Memory`]: embedded, in-process, with an optional virtual clock (examples and tests).
//! - [`Redis`]: Redis Streams, durable, many workers on many machines.

pub mod memory;
pub mod redis;

pub use self::redis::{InboxStats, RecordCacheStats, Redis, RedisBuilder};
pub use crate::engine::store::{
    Action, ActivityRequest, ActivityWorkItem, Backend, DeadLetter, MessageId, NewInstance, OrchestrationWorkItem,
    PendingMessage, SnapshotChange, StepCommit, TableChange, TableEntries, TimerRequest,
};
pub use crate::ids::new_execution_id;
pub use crate::messages::InstanceMessage;
pub use crate::state::Snapshot;
pub use memory::Memory;
