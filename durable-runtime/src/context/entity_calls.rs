//! Entity calls from an orchestration: the typed proxies' sinks ([`EntityCall`] for calls that
//! are durable tasks, [`EntitySignalFromOrchestration`] for one-way signals), and the
//! [`LockGuard`] of a critical section.

use super::handle::OrchestrationContext;
use crate::entity::EntitySink;
use crate::error::TaskErrorKind;
use crate::ids::EntityId;
use crate::messages::Command;
use crate::payload;
use crate::state::OpenTask;
use crate::task::{Task, TaskKind};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// What `ctx.lock(..).await` gives: pass it to `ctx.unlock` to end the critical section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockGuard {
    pub(crate) lock: u64,
}

/// Sink of [`OrchestrationContext::entity`]: an operation call whose result is a task.
pub struct EntityCall {
    pub(crate) ctx: OrchestrationContext,
    pub(crate) entity: EntityId,
}

impl EntitySink for EntityCall {
    type Output<R: DeserializeOwned + 'static> = Task<R>;
    fn __send<R: DeserializeOwned + 'static, I: Serialize>(self, op: &'static str, input: &I) -> Task<R> {
        let mut st = self.ctx.inner.borrow_mut();
        let name = format!("{}.{op}", self.entity);
        let id =
            match payload::to_json(input, format!("the input of operation `{name}`")) {
                Ok(input) => {
                    let entity = self.entity.clone();
                    st.schedule(OpenTask::Entity { entity: entity.clone(), op: op.to_string() }, |id| {
                        Command::CallEntity { id, entity, op: op.to_string(), input }
                    })
                }
                Err(e) => st.fail_now(TaskErrorKind::ScheduleFailed, &name, e),
            };
        drop(st);
        Task::new(id, TaskKind::Entity, self.ctx.clone())
    }
}

/// Sink of [`OrchestrationContext::signal`]: a one-way operation.
pub struct EntitySignalFromOrchestration {
    pub(crate) ctx: OrchestrationContext,
    pub(crate) entity: EntityId,
}

impl EntitySink for EntitySignalFromOrchestration {
    type Output<R: DeserializeOwned + 'static> = ();
    fn __send<R: DeserializeOwned + 'static, I: Serialize>(self, op: &'static str, input: &I) {
        let input = payload::to_json(input, format!("the input of operation `{}.{op}`", self.entity))
            .unwrap_or_else(|e| panic!("{e}"));
        self.ctx.inner.borrow_mut().commands.push(Command::SignalEntity {
            entity: self.entity,
            op: op.to_string(),
            input,
        });
    }
}
