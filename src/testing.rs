//! Run orchestrators in-process, without a backend or a worker: results of activities, timers
//! and sub-orchestrations come from a function you give (a mock), and the state is serialized
//! and deserialized at every suspension, exactly as a worker would.
//!
//! [`run_state_machine`](crate::testing::run_state_machine) runs the compiled state machine; [`run_direct`](crate::testing::run_direct) runs the same body as
//! plain async Rust (for orchestrators declared `#[orchestrator(differential)]`). Both deliver
//! results in the same order, so their [`Trace`](crate::testing::Trace)s must be equal: that is the differential test
//! of the orchestrator compiler.
//!
//! [`check_resume`](crate::testing::check_resume) checks new code against instances in flight before a deploy: each line of
//! `durable export --in-flight` (or [`Client::export_in_flight`](crate::Client::export_in_flight))
//! must be resumable by this build's orchestrator.

pub use durable_runtime::deploy::check_resume;
pub use durable_runtime::engine::ResumeCheck;
use durable_runtime::messages::{Command, TaskMessage};
use durable_runtime::orchestrator::{Orchestrator, StepInput, StepResult};
use durable_runtime::state::RuntimeState;
use durable_runtime::{OrchestrationContext, payload};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// What a mock answers for a scheduled activity or sub-orchestration.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// Success with this JSON result.
    Ok(String),
    /// Failure with this message.
    Err(String),
}

impl Reply {
    /// Success with a serializable value.
    pub fn ok<T: serde::Serialize>(v: T) -> Self {
        Reply::Ok(serde_json::to_string(&v).expect("mock result serializes"))
    }
    /// Failure with a message.
    pub fn err(msg: impl Into<String>) -> Self {
        Reply::Err(msg.into())
    }
}

/// How a run ended, and everything it asked for, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// Commands in the order the orchestrator issued them.
    pub commands: Vec<Command>,
    /// `Ok(json output)` or `Err(failure message)`.
    pub outcome: Result<String, String>,
    /// Input given to `continue_as_new`, if it was called.
    pub continued_as_new: Option<String>,
    /// How many steps (suspensions + 1) the run took.
    pub steps: usize,
    /// Sizes of the snapshots written at each suspension, in bytes.
    pub snapshot_sizes: Vec<usize>,
}

impl Trace {
    /// The output, deserialized; panics with the failure message if the run failed.
    pub fn output<T: serde::de::DeserializeOwned>(&self) -> T {
        match &self.outcome {
            Ok(json) => serde_json::from_str(json).expect("output deserializes"),
            Err(e) => panic!("the orchestration failed: {e}"),
        }
    }
}

type Responder<'a> = Box<dyn FnMut(&str, &str) -> Reply + 'a>;

/// Events to raise, and the mock for activities and sub-orchestrations.
pub struct Mock<'a> {
    respond: Responder<'a>,
    events: VecDeque<(String, String)>,
    max_steps: usize,
}

impl<'a> Mock<'a> {
    /// A mock answering `respond(name, json_input)` for every activity, sub-orchestration and
    /// entity call (named `entity.operation`); entity locks are granted at once.
    pub fn new(respond: impl FnMut(&str, &str) -> Reply + 'a) -> Self {
        Mock { respond: Box::new(respond), events: VecDeque::new(), max_steps: 100_000 }
    }
    /// Raise this event when nothing else is pending (in the order given).
    pub fn event<T: serde::Serialize>(mut self, name: &str, data: T) -> Self {
        self.events.push_back((name.to_string(), serde_json::to_string(&data).expect("event serializes")));
        self
    }
}

/// Delivery policy shared by both interpretations: outstanding work completes first-in,
/// first-out; timers fire after all other work; events are raised when nothing else is pending.
struct Driver<'m, 'a> {
    mock: &'m mut Mock<'a>,
    pending: VecDeque<Command>,
    trace: Vec<Command>,
}

impl Driver<'_, '_> {
    fn absorb(&mut self, cmds: Vec<Command>) {
        for c in cmds {
            self.trace.push(c.clone());
            match &c {
                Command::CancelTimer { id } => self.pending.retain(|p| p.task_id() != Some(*id)),
                Command::SendEvent { .. } | Command::SignalEntity { .. } | Command::UnlockEntities { .. } => {}
                _ => self.pending.push_back(c),
            }
        }
    }

    fn next_message(&mut self) -> Option<TaskMessage> {
        let pos = self
            .pending
            .iter()
            .position(|c| !matches!(c, Command::CreateTimer { .. }))
            .or(if self.pending.is_empty() { None } else { Some(0) });
        if (pos.is_none() || self.pending.iter().all(|c| matches!(c, Command::CreateTimer { .. })))
            && let Some((name, data)) = self.mock.events.pop_front()
        {
            return Some(TaskMessage::EventRaised { name, data });
        }
        let c = self.pending.remove(pos?)?;
        Some(match c {
            Command::ScheduleActivity { id, name, input, attempt } => match (self.mock.respond)(&name, &input) {
                Reply::Ok(result) => TaskMessage::ActivityCompleted { id, result },
                Reply::Err(message) => TaskMessage::ActivityFailed { id, attempt, message },
            },
            Command::StartSubOrchestration { id, name, input, .. } => match (self.mock.respond)(&name, &input) {
                Reply::Ok(result) => TaskMessage::SubOrchestrationCompleted { id, result },
                Reply::Err(message) => TaskMessage::SubOrchestrationFailed { id, message },
            },
            Command::CreateTimer { id, .. } => TaskMessage::TimerFired { id },
            Command::CallEntity { id, entity, op, input } => {
                match (self.mock.respond)(&format!("{}.{op}", entity.name), &input) {
                    Reply::Ok(result) => TaskMessage::EntityCompleted { id, result },
                    Reply::Err(message) => TaskMessage::EntityFailed { id, message },
                }
            }
            Command::LockEntities { id, .. } => TaskMessage::LockAcquired { id },
            Command::CancelTimer { .. }
            | Command::SendEvent { .. }
            | Command::SignalEntity { .. }
            | Command::UnlockEntities { .. } => unreachable!("not kept pending"),
            other => unreachable!("a command the test driver does not know: {other:?}"),
        })
    }
}

const START_MS: u64 = 1_700_000_000_000;

/// Run `O`'s state machine to completion against `mock`, saving and restoring the state (and
/// the runtime's task bookkeeping) through their serialized forms at every suspension.
pub fn run_state_machine<O: Orchestrator>(input: O::Input, mut mock: Mock<'_>) -> Trace {
    let input = payload::to_json(&input, "the input").expect("input serializes");
    let mut driver = Driver { mock: &mut mock, pending: VecDeque::new(), trace: Vec::new() };
    let mut snapshot: Option<Vec<u8>> = None;
    let mut rt_bytes = rmp_serde::to_vec_named(&RuntimeState::default()).expect("serializes");
    let mut message: Option<TaskMessage> = None;
    let mut sizes = Vec::new();
    for step in 1..=driver.mock.max_steps {
        let rt: RuntimeState = rmp_serde::from_slice(&rt_bytes).expect("runtime state round-trips");
        let ctx = OrchestrationContext::new("test-instance", START_MS + step as u64, rt);
        if let Some(m) = message.take() {
            ctx.apply(m);
        }
        let result = match &snapshot {
            None => O::__step(&ctx, StepInput::Start(&input)),
            Some(bytes) => O::__step(&ctx, StepInput::Resume(bytes)),
        };
        driver.absorb(ctx.take_commands());
        let (_, can) = ctx.take_step_effects();
        rt_bytes = rmp_serde::to_vec_named(&ctx.runtime_state()).expect("serializes");
        let outcome = match result {
            StepResult::Suspended(bytes) => {
                sizes.push(bytes.len());
                snapshot = Some(bytes);
                message = driver.next_message();
                if message.is_none() {
                    Err("the orchestration is waiting for something the mock never delivers".to_string())
                } else {
                    continue;
                }
            }
            StepResult::Completed(json) => Ok(json),
            StepResult::Failed(e) | StepResult::BadInput(e) | StepResult::BadState(e) => Err(e),
        };
        return Trace { commands: driver.trace, outcome, continued_as_new: can, steps: step, snapshot_sizes: sizes };
    }
    panic!("the orchestration did not finish within {} steps", driver.mock.max_steps);
}

/// Run an orchestrator's body as plain async Rust (`O::__durable_direct`, generated by
/// `#[orchestrator(differential)]`) against `mock`, with the same delivery order as
/// [`run_state_machine`].
pub fn run_direct<I, R, F, Fut>(body: F, input: I, mut mock: Mock<'_>) -> Trace
where
    F: FnOnce(OrchestrationContext, I) -> Fut,
    Fut: Future<Output = R>,
    R: durable_runtime::private::OrchestrationOutcome,
{
    let ctx = OrchestrationContext::new("test-instance", START_MS + 1, RuntimeState::default());
    let mut fut = pin!(body(ctx.clone(), input));
    let mut driver = Driver { mock: &mut mock, pending: VecDeque::new(), trace: Vec::new() };
    let mut cx = Context::from_waker(Waker::noop());
    for step in 1..=driver.mock.max_steps {
        ctx.set_now(START_MS + step as u64);
        let polled = fut.as_mut().poll(&mut cx);
        driver.absorb(ctx.take_commands());
        match polled {
            Poll::Ready(r) => {
                let (_, can) = ctx.take_step_effects();
                let outcome = r.into_outcome().and_then(|v| payload::to_json(&v, "the output"));
                return Trace {
                    commands: driver.trace,
                    outcome,
                    continued_as_new: can,
                    steps: step,
                    snapshot_sizes: Vec::new(),
                };
            }
            Poll::Pending => match driver.next_message() {
                Some(m) => {
                    ctx.apply(m);
                }
                None => {
                    return Trace {
                        commands: driver.trace,
                        outcome: Err("the orchestration is waiting for something the mock never delivers".to_string()),
                        continued_as_new: None,
                        steps: step,
                        snapshot_sizes: Vec::new(),
                    };
                }
            },
        }
    }
    panic!("the orchestration did not finish within {} steps", driver.mock.max_steps);
}
