//! [`ActivityContext`]: what an activity knows about its invocation.

/// What an activity knows about its invocation.
#[derive(Clone, Debug)]
pub struct ActivityContext {
    pub(crate) instance_id: String,
    pub(crate) name: String,
    pub(crate) task_id: u64,
    pub(crate) attempt: u32,
}

impl ActivityContext {
    /// A context, for calling an activity function directly in a unit test.
    pub fn new(instance_id: impl Into<String>, name: impl Into<String>, task_id: u64, attempt: u32) -> Self {
        Self { instance_id: instance_id.into(), name: name.into(), task_id, attempt }
    }
    /// The orchestration instance that scheduled this activity.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }
    /// The activity's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The task id within the instance; with [`instance_id`](Self::instance_id) it identifies
    /// this invocation across retries (an idempotency key).
    pub fn task_id(&self) -> u64 {
        self.task_id
    }
    /// Attempt number, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}
