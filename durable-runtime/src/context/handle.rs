//! The state behind an [`OrchestrationContext`] during one step, and the engine's access to it.
//! The user-facing methods are in `orchestration.rs`; tasks (`crate::task`) read results here.

use crate::error::{TaskError, TaskErrorKind};
use crate::messages::{Command, TaskMessage};
use crate::state::{Applied, Completion, OpenTask, RuntimeState};
use crate::time::Millis;
use std::cell::RefCell;
use std::rc::Rc;

/// The per-step state behind an [`OrchestrationContext`] (internal).
#[doc(hidden)]
#[derive(Debug)]
pub struct CtxState {
    pub(crate) instance_id: String,
    pub(crate) now: Millis,
    pub(crate) rt: RuntimeState,
    pub(crate) commands: Vec<Command>,
    pub(crate) custom_status: Option<Option<String>>,
    pub(crate) continue_as_new: Option<String>,
}

impl CtxState {
    pub(crate) fn alloc(&mut self) -> u64 {
        self.rt.alloc()
    }

    pub(crate) fn complete(&mut self, id: u64, outcome: Result<String, TaskError>) {
        self.rt.complete(id, outcome)
    }

    /// Peek a leaf task's completion.
    pub(crate) fn completion(&self, id: u64) -> Option<&Completion> {
        self.rt.completion(id)
    }

    /// The task is done with: drop its result, or if it has not completed, stop waiting for it.
    pub(crate) fn release(&mut self, id: u64) {
        self.rt.release(id, &mut self.commands)
    }

    /// Apply a delivered message to the runtime state.
    pub(crate) fn apply(&mut self, msg: TaskMessage) -> Applied {
        self.rt.apply(msg, self.now, &mut self.commands)
    }

    pub(crate) fn schedule(&mut self, open: OpenTask, command: impl FnOnce(u64) -> Command) -> u64 {
        self.rt.schedule(&mut self.commands, open, command)
    }

    pub(crate) fn fail_now(&mut self, kind: TaskErrorKind, name: &str, message: String) -> u64 {
        self.rt.fail_now(kind, name, message)
    }
}

/// The orchestrator's handle on the runtime: every method returns a durable task, and
/// `.await` on a task gives `Result<T, TaskError>`.
///
/// Everything here is deterministic: the same history gives the same tasks, times and UUIDs.
#[derive(Clone)]
pub struct OrchestrationContext {
    pub(crate) inner: Rc<RefCell<CtxState>>,
}

impl std::fmt::Debug for OrchestrationContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.inner.borrow();
        f.debug_struct("OrchestrationContext").field("instance_id", &st.instance_id).finish()
    }
}

impl OrchestrationContext {
    /// A context for one step of `instance_id` at time `now` with this runtime state.
    #[doc(hidden)]
    pub fn new(instance_id: impl Into<String>, now: Millis, rt: RuntimeState) -> Self {
        Self {
            inner: Rc::new(RefCell::new(CtxState {
                instance_id: instance_id.into(),
                now,
                rt,
                commands: Vec::new(),
                custom_status: None,
                continue_as_new: None,
            })),
        }
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut CtxState) -> R) -> R {
        f(&mut self.inner.borrow_mut())
    }

    /// Take the commands produced so far (engine use).
    #[doc(hidden)]
    pub fn take_commands(&self) -> Vec<Command> {
        std::mem::take(&mut self.inner.borrow_mut().commands)
    }

    /// Deliver a message (engine and test-harness use).
    #[doc(hidden)]
    pub fn apply(&self, msg: TaskMessage) -> Applied {
        self.inner.borrow_mut().apply(msg)
    }

    /// Set the step time (engine use).
    #[doc(hidden)]
    pub fn set_now(&self, now: Millis) {
        self.inner.borrow_mut().now = now;
    }

    /// A copy of the runtime state (engine use).
    #[doc(hidden)]
    pub fn runtime_state(&self) -> RuntimeState {
        self.inner.borrow().rt.clone()
    }

    /// Take the runtime state out, leaving an empty one: what the engine does once a step has
    /// run, instead of copying a task table that may hold every task of a wide fan-out.
    pub(crate) fn take_runtime_state(&self) -> RuntimeState {
        std::mem::take(&mut self.inner.borrow_mut().rt)
    }

    /// Take what the step set: custom status and continue-as-new input (engine use).
    #[doc(hidden)]
    pub fn take_step_effects(&self) -> (Option<Option<String>>, Option<String>) {
        let mut st = self.inner.borrow_mut();
        (st.custom_status.take(), st.continue_as_new.take())
    }
}
