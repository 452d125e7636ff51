//! What an orchestration step's commands become: the outbound actions a backend commits with
//! the step (activity work items, timers, messages to entities and instances, new instances).

use super::store::{Action, ActivityRequest, NewInstance, TimerRequest};
use super::timer_key;
use crate::history::ParentRef;
use crate::ids::{EntityReply, LockRequest, new_execution_id};
use crate::messages::{Command, InstanceMessage, TaskMessage};

/// Append the actions of `cmd`, a command of instance `me`'s execution `exec`. Once the
/// execution has `finished`, commands that start new work are dropped.
pub(super) fn command_actions(cmd: Command, me: &str, exec: &str, finished: bool, actions: &mut Vec<Action>) {
    let action = match cmd {
        Command::ScheduleActivity { .. }
        | Command::CreateTimer { .. }
        | Command::CallEntity { .. }
        | Command::LockEntities { .. }
            if finished =>
        {
            return;
        }
        Command::CallEntity { id, entity, op, input } => Action::SendMessage {
            instance_id: entity.instance_id(),
            message: InstanceMessage::EntityOperation {
                op,
                input,
                sender: Some(me.to_string()),
                reply: Some(EntityReply { instance_id: me.to_string(), execution_id: exec.to_string(), task_id: id }),
                trace: None,
            },
        },
        Command::SignalEntity { entity, op, input } => Action::SendMessage {
            instance_id: entity.instance_id(),
            message: InstanceMessage::EntityOperation {
                op,
                input,
                sender: Some(me.to_string()),
                reply: None,
                trace: None,
            },
        },
        Command::LockEntities { id, entities } => Action::SendMessage {
            instance_id: entities[0].instance_id(),
            message: InstanceMessage::EntityLock {
                request: LockRequest {
                    owner: EntityReply { instance_id: me.to_string(), execution_id: exec.to_string(), task_id: id },
                    entities,
                    position: 0,
                },
            },
        },
        Command::UnlockEntities { id, entities } => {
            let owner = EntityReply { instance_id: me.to_string(), execution_id: exec.to_string(), task_id: id };
            for e in entities {
                actions.push(Action::SendMessage {
                    instance_id: e.instance_id(),
                    message: InstanceMessage::EntityRelease { owner: owner.clone() },
                });
            }
            return;
        }
        Command::ScheduleActivity { id, name, input, attempt } => Action::ScheduleActivity(ActivityRequest {
            instance_id: me.to_string(),
            execution_id: exec.to_string(),
            task_id: id,
            name,
            input,
            attempt,
            trace: None,
        }),
        Command::CreateTimer { id, fire_at } => Action::SetTimer(TimerRequest {
            instance_id: me.to_string(),
            key: timer_key(exec, id),
            fire_at,
            message: InstanceMessage::TaskResult {
                execution_id: exec.to_string(),
                result: TaskMessage::TimerFired { id },
            },
        }),
        Command::CancelTimer { id } => Action::CancelTimer { instance_id: me.to_string(), key: timer_key(exec, id) },
        Command::StartSubOrchestration { id, name, version, instance_id, input } => {
            Action::CreateInstance(NewInstance {
                instance_id,
                execution_id: new_execution_id(),
                name,
                input,
                parent: Some(ParentRef { instance_id: me.to_string(), execution_id: exec.to_string(), task_id: id }),
                version,
                trace: None,
            })
        }
        Command::SendEvent { instance_id, name, data } => {
            Action::SendMessage { instance_id, message: InstanceMessage::Event { name, data } }
        }
    };
    actions.push(action);
}
