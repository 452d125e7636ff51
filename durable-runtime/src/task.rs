//! Durable tasks: what orchestrators await.
//!
//! A task is a small serializable handle (a task id, or a list of child tasks), so it can be
//! kept in a local across `.await`s: schedule many activities, then `when_all` them.

use crate::context::{CtxState, OrchestrationContext};
use crate::error::{TaskError, TaskErrorKind};
use crate::messages::Command;
use crate::payload;
use crate::retry::RetryPolicy;
use crate::state::OpenTask;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Something an orchestrator can `.await`: an activity call, a timer, an event, a
/// sub-orchestration, or a combination of those (`when_all`, `when_any`, `select`).
///
/// Implemented by this crate's task types only.
#[diagnostic::on_unimplemented(
    message = "`.await` in an orchestrator works on durable tasks only, and `{Self}` is not one",
    label = "not a durable task",
    note = "await what `ctx` returns (`ctx.call_activity(..)`, `ctx.timer(..)`, `ctx.wait_for_event(..)`, `ctx.when_all(..)`, …); do other async work inside an `#[activity]`"
)]
pub trait DurableTask: sealed::Sealed {
    /// What `.await` gives.
    type Output;
    /// Whether it is ready (cheap: no result is decoded).
    #[doc(hidden)]
    fn __ready(&self, st: &CtxState) -> bool;
    /// When ready: the arrival number of the completion that made it ready, and the output.
    #[doc(hidden)]
    fn __poll(&self, st: &CtxState) -> Option<(u64, Self::Output)>;
    /// Done with this task: consume its results; abandon (and cancel) what has not completed.
    #[doc(hidden)]
    fn __release(&self, st: &mut CtxState);
    /// A single task's id and kind (a combination of tasks has none): what a list of them is
    /// saved as, in runs of consecutive ids ([`task_list`]).
    #[doc(hidden)]
    fn __leaf(&self) -> Option<(u64, &TaskKind)> {
        None
    }
    /// The single task with this id and kind, read back from a saved list; `None` for a
    /// combination of tasks.
    #[doc(hidden)]
    fn __from_leaf(id: u64, kind: TaskKind) -> Option<Self>
    where
        Self: Sized,
    {
        let _ = (id, kind);
        None
    }
}

mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for super::Task<T> {}
    impl<D> Sealed for super::WhenAll<D> {}
    impl<D> Sealed for super::WhenAny<D> {}
    impl<A, B> Sealed for super::Select<A, B> {}
    impl<T> Sealed for super::Peek<T> {}
}

/// Poll a task against a context; on completion, release it (generated code calls this).
#[doc(hidden)]
pub fn poll_task<D: DurableTask>(ctx: &OrchestrationContext, task: &D) -> Option<D::Output> {
    ctx.with(|st| {
        if !task.__ready(st) {
            return None;
        }
        let (_, out) = task.__poll(st)?;
        task.__release(st);
        Some(out)
    })
}

/// What kind of task a single task is (internal).
#[doc(hidden)]
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum TaskKind {
    Activity,
    SubOrchestration,
    Timer,
    Event(String),
    Entity,
    Lock,
}

/// One durable task: an activity call, a sub-orchestration, a timer, or an event wait.
/// `.await` gives `Result<T, TaskError>`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Task<T> {
    id: u64,
    kind: TaskKind,
    #[serde(skip)]
    ctx: Option<OrchestrationContext>,
    #[serde(skip)]
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task").field("id", &self.id).field("kind", &self.kind).finish()
    }
}

impl<T> Task<T> {
    /// Name the suspension point where this task is awaited: `ctx.wait_for_event("approval")
    /// .checkpoint("approval").await`. A state saved there is resumed by any code that awaits a
    /// task with the same checkpoint name and keeps the same locals live there, however the
    /// awaited expression itself is written. Without it, the point is named by the awaited
    /// expression as written. Nothing else changes.
    pub fn checkpoint(self, name: &'static str) -> Self {
        let _ = name;
        self
    }
    pub(crate) fn new(id: u64, kind: TaskKind, ctx: OrchestrationContext) -> Self {
        Self { id, kind, ctx: Some(ctx), _t: PhantomData }
    }

    /// The task's id within its instance (as shown in the history).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Retry the activity with this policy when it fails. Call it where the task is created:
    /// `ctx.call_activity(f, x).with_retry(policy)`.
    ///
    /// # Panics
    /// On a task that is not an activity call, or after the task was already scheduled by an
    /// earlier step; the instance then fails with that message.
    pub fn with_retry(self, policy: RetryPolicy) -> Self {
        assert!(
            self.kind == TaskKind::Activity,
            "`with_retry` applies to activity calls only (this task is a {:?})",
            self.kind
        );
        let ctx = self
            .ctx
            .as_ref()
            .expect("`with_retry` must be called where the activity call is created, in the same step");
        ctx.with(|st| {
            if let Some(OpenTask::Activity { retry, .. }) = st.rt.open.get_mut(&self.id) {
                *retry = Some(policy);
            }
        });
        self
    }

    /// Run the sub-orchestration under this instance id instead of the derived one. Call it
    /// where the task is created: `ctx.call_orchestrator(f, x).with_instance_id("order-7")`.
    ///
    /// # Panics
    /// On a task that is not a sub-orchestration call, or outside the step that created it.
    pub fn with_instance_id(self, instance_id: impl Into<String>) -> Self {
        assert!(
            self.kind == TaskKind::SubOrchestration,
            "`with_instance_id` applies to sub-orchestration calls only (this task is a {:?})",
            self.kind
        );
        let new_id = instance_id.into();
        let ctx = self
            .ctx
            .as_ref()
            .expect("`with_instance_id` must be called where the sub-orchestration call is created, in the same step");
        ctx.with(|st| {
            if let Some(OpenTask::SubOrchestration { instance_id, .. }) = st.rt.open.get_mut(&self.id) {
                *instance_id = new_id.clone();
            }
            for c in st.commands.iter_mut() {
                if let Command::StartSubOrchestration { id, instance_id, .. } = c
                    && *id == self.id
                {
                    *instance_id = new_id.clone();
                }
            }
        });
        self
    }
}

impl<T: DeserializeOwned> DurableTask for Task<T> {
    type Output = Result<T, TaskError>;

    fn __ready(&self, st: &CtxState) -> bool {
        st.completion(self.id).is_some()
    }

    fn __poll(&self, st: &CtxState) -> Option<(u64, Self::Output)> {
        let c = st.completion(self.id)?;
        let out = match &c.outcome {
            Ok(json) => payload::from_json::<T>(json, &self.describe()).map_err(|msg| TaskError {
                kind: TaskErrorKind::BadResult,
                name: self.describe(),
                message: msg,
            }),
            Err(e) => Err(e.clone()),
        };
        Some((c.seq, out))
    }

    fn __release(&self, st: &mut CtxState) {
        st.release(self.id);
    }

    fn __leaf(&self) -> Option<(u64, &TaskKind)> {
        Some((self.id, &self.kind))
    }

    fn __from_leaf(id: u64, kind: TaskKind) -> Option<Self> {
        Some(Task { id, kind, ctx: None, _t: PhantomData })
    }
}

/// How `when_all`/`when_any` hold and save their list of tasks: a list of single tasks is
/// saved as runs of consecutive ids of one kind, `{"runs": [[first id, count, kind], …]}`, and
/// read back as those runs, each task made when it is looked at — a fan-out of 100,000
/// activities is a few bytes, not 100,000 entries read and written at each step; any other
/// list is saved as the tasks themselves (the form earlier releases saved, which reads back
/// too).
mod task_list {
    use super::{DurableTask, TaskKind};
    use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde::ser::{SerializeMap, Serializer};
    use serde::{Deserialize, Serialize};
    use std::marker::PhantomData;

    /// The tasks of a `when_all` or `when_any`.
    pub(crate) enum TaskList<D> {
        /// The tasks themselves (as created in this step, or saved one by one).
        Tasks(Vec<D>),
        /// Runs of single tasks (first id, count, kind), as read back.
        Runs(Vec<(u64, u64, TaskKind)>, PhantomData<fn() -> D>),
    }

    impl<D: std::fmt::Debug> std::fmt::Debug for TaskList<D> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                TaskList::Tasks(t) => f.debug_list().entries(t).finish(),
                TaskList::Runs(r, _) => f.debug_struct("Runs").field("runs", r).finish(),
            }
        }
    }

    impl<D: DurableTask> TaskList<D> {
        pub(crate) fn len(&self) -> usize {
            match self {
                TaskList::Tasks(t) => t.len(),
                TaskList::Runs(r, _) => r.iter().map(|(_, n, _)| *n as usize).sum(),
            }
        }

        /// Call `f` with each task and its index, in order (from the last with `rev`), until
        /// it returns false; whether it went through them all.
        pub(crate) fn all(&self, rev: bool, mut f: impl FnMut(usize, &D) -> bool) -> bool {
            match self {
                TaskList::Tasks(t) if rev => t.iter().enumerate().rev().all(|(i, d)| f(i, d)),
                TaskList::Tasks(t) => t.iter().enumerate().all(|(i, d)| f(i, d)),
                TaskList::Runs(runs, _) => {
                    let mut at = Vec::with_capacity(runs.len());
                    let mut i = 0;
                    for (_, n, _) in runs {
                        at.push(i);
                        i += *n as usize;
                    }
                    let mut each = |k: usize| {
                        let (first, n, kind) = &runs[k];
                        let mut one = |j: u64| {
                            let d = D::__from_leaf(first + j, kind.clone()).expect("checked when read back");
                            f(at[k] + j as usize, &d)
                        };
                        if rev { (0..*n).rev().all(&mut one) } else { (0..*n).all(&mut one) }
                    };
                    if rev { (0..runs.len()).rev().all(&mut each) } else { (0..runs.len()).all(&mut each) }
                }
            }
        }

        /// The runs of a list of single tasks; `None` if one of them is a combination.
        fn runs(&self) -> Option<Vec<(u64, u64, &TaskKind)>> {
            match self {
                TaskList::Runs(r, _) => Some(r.iter().map(|(f, n, k)| (*f, *n, k)).collect()),
                TaskList::Tasks(tasks) => {
                    let mut runs: Vec<(u64, u64, &TaskKind)> = Vec::new();
                    for t in tasks {
                        let (id, kind) = t.__leaf()?;
                        match runs.last_mut() {
                            Some((first, n, k)) if *first + *n == id && *k == kind => *n += 1,
                            _ => runs.push((id, 1, kind)),
                        }
                    }
                    Some(runs)
                }
            }
        }
    }

    impl<D: DurableTask + Serialize> Serialize for TaskList<D> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self.runs() {
                Some(runs) if !runs.is_empty() => {
                    let mut m = s.serialize_map(Some(1))?;
                    m.serialize_entry("runs", &runs)?;
                    m.end()
                }
                _ => match self {
                    TaskList::Tasks(t) => t.serialize(s),
                    TaskList::Runs(..) => Vec::<D>::new().serialize(s),
                },
            }
        }
    }

    impl<'de, D: DurableTask + Deserialize<'de>> Deserialize<'de> for TaskList<D> {
        fn deserialize<De: Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
            struct V<D>(PhantomData<D>);
            impl<'de, D: DurableTask + Deserialize<'de>> Visitor<'de> for V<D> {
                type Value = TaskList<D>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a list of tasks, or runs of tasks")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TaskList<D>, A::Error> {
                    let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                    while let Some(t) = seq.next_element()? {
                        out.push(t);
                    }
                    Ok(TaskList::Tasks(out))
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TaskList<D>, A::Error> {
                    let mut runs = Vec::new();
                    while let Some(key) = map.next_key::<String>()? {
                        if key == "runs" {
                            runs = map.next_value::<Vec<(u64, u64, TaskKind)>>()?;
                        } else {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                    if let Some((first, _, kind)) = runs.first()
                        && D::__from_leaf(*first, kind.clone()).is_none()
                    {
                        return Err(de::Error::custom("runs of single tasks where combinations of tasks were saved"));
                    }
                    Ok(TaskList::Runs(runs, PhantomData))
                }
            }
            d.deserialize_any(V(PhantomData))
        }
    }
}

use task_list::TaskList;

/// A view of a task that is ready when the task is, and leaves it as it was when the awaiting
/// is done (its result stays to be consumed, or it stays awaited): for waiting on a task and
/// a timer together without giving the task up when the timer wins.
#[derive(Serialize, Deserialize, Debug)]
#[serde(bound = "")]
pub(crate) struct Peek<T>(Task<T>);

impl<T> Task<T> {
    /// A [`Peek`] at this task.
    pub(crate) fn peek(&self) -> Peek<T> {
        Peek(Task { id: self.id, kind: self.kind.clone(), ctx: self.ctx.clone(), _t: PhantomData })
    }
}

impl<T> DurableTask for Peek<T> {
    type Output = ();

    fn __ready(&self, st: &CtxState) -> bool {
        st.completion(self.0.id).is_some()
    }

    fn __poll(&self, st: &CtxState) -> Option<(u64, ())> {
        st.completion(self.0.id).map(|c| (c.seq, ()))
    }

    fn __release(&self, _st: &mut CtxState) {}
}

impl<T> IntoFuture for Peek<T> {
    type Output = ();
    type IntoFuture = TaskFuture<Self>;
    fn into_future(self) -> TaskFuture<Self> {
        let ctx = self.0.ctx.clone();
        TaskFuture { task: self, ctx }
    }
}

impl<T> Task<T> {
    fn describe(&self) -> String {
        match &self.kind {
            TaskKind::Activity => format!("the result of activity task {}", self.id),
            TaskKind::SubOrchestration => format!("the output of sub-orchestration task {}", self.id),
            TaskKind::Timer => format!("timer {}", self.id),
            TaskKind::Event(name) => format!("the data of event `{name}`"),
            TaskKind::Entity => format!("the result of entity task {}", self.id),
            TaskKind::Lock => format!("lock {}", self.id),
        }
    }
}

/// `ctx.when_all(tasks)`: all results in task order, or the first failure once all finished.
#[derive(Serialize, Deserialize, Debug)]
#[serde(bound(serialize = "D: DurableTask + Serialize", deserialize = "D: DurableTask + Deserialize<'de>"))]
pub struct WhenAll<D> {
    tasks: TaskList<D>,
    #[serde(skip)]
    ctx: Option<OrchestrationContext>,
}

impl<D: DurableTask> WhenAll<D> {
    /// Name the suspension point where this task is awaited: `ctx.wait_for_event("approval")
    /// .checkpoint("approval").await`. A state saved there is resumed by any code that awaits a
    /// task with the same checkpoint name and keeps the same locals live there, however the
    /// awaited expression itself is written. Without it, the point is named by the awaited
    /// expression as written. Nothing else changes.
    pub fn checkpoint(self, name: &'static str) -> Self {
        let _ = name;
        self
    }
    pub(crate) fn new(tasks: Vec<D>, ctx: OrchestrationContext) -> Self {
        Self { tasks: TaskList::Tasks(tasks), ctx: Some(ctx) }
    }
    /// How many tasks it waits for.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }
    /// Whether it waits for no task at all (then it completes at once with an empty `Vec`).
    pub fn is_empty(&self) -> bool {
        self.tasks.len() == 0
    }
}

impl<D, T> DurableTask for WhenAll<D>
where
    D: DurableTask<Output = Result<T, TaskError>>,
{
    type Output = Result<Vec<T>, TaskError>;

    fn __ready(&self, st: &CtxState) -> bool {
        // From the last: tasks tend to complete in the order they were started, so a fan-out
        // still running finds one not done at once, instead of passing every one done so far
        // at each step.
        self.tasks.all(true, |_, t| t.__ready(st))
    }

    fn __poll(&self, st: &CtxState) -> Option<(u64, Self::Output)> {
        let mut seq = 0;
        let mut out = Vec::with_capacity(self.tasks.len());
        let mut failure = None;
        let all = self.tasks.all(false, |_, t| {
            let Some((s, r)) = t.__poll(st) else { return false };
            seq = seq.max(s);
            match r {
                Ok(v) => out.push(v),
                Err(e) => {
                    if failure.is_none() {
                        failure = Some(e);
                    }
                }
            }
            true
        });
        all.then_some((
            seq,
            match failure {
                Some(e) => Err(e),
                None => Ok(out),
            },
        ))
    }

    fn __release(&self, st: &mut CtxState) {
        self.tasks.all(false, |_, t| {
            t.__release(st);
            true
        });
    }
}

/// `ctx.when_any(tasks)`: the index and result of the first task to complete.
#[derive(Serialize, Deserialize, Debug)]
#[serde(bound(serialize = "D: DurableTask + Serialize", deserialize = "D: DurableTask + Deserialize<'de>"))]
pub struct WhenAny<D> {
    tasks: TaskList<D>,
    #[serde(skip)]
    ctx: Option<OrchestrationContext>,
}

impl<D> WhenAny<D> {
    /// Name the suspension point where this task is awaited: `ctx.wait_for_event("approval")
    /// .checkpoint("approval").await`. A state saved there is resumed by any code that awaits a
    /// task with the same checkpoint name and keeps the same locals live there, however the
    /// awaited expression itself is written. Without it, the point is named by the awaited
    /// expression as written. Nothing else changes.
    pub fn checkpoint(self, name: &'static str) -> Self {
        let _ = name;
        self
    }
    pub(crate) fn new(tasks: Vec<D>, ctx: OrchestrationContext) -> Self {
        assert!(!tasks.is_empty(), "`when_any` needs at least one task");
        Self { tasks: TaskList::Tasks(tasks), ctx: Some(ctx) }
    }
}

impl<D: DurableTask> DurableTask for WhenAny<D> {
    type Output = (usize, D::Output);

    fn __ready(&self, st: &CtxState) -> bool {
        !self.tasks.all(false, |_, t| !t.__ready(st))
    }

    fn __poll(&self, st: &CtxState) -> Option<(u64, Self::Output)> {
        let mut best: Option<(u64, usize, D::Output)> = None;
        self.tasks.all(false, |i, t| {
            if let Some((s, r)) = t.__poll(st)
                && best.as_ref().is_none_or(|(bs, _, _)| s < *bs)
            {
                best = Some((s, i, r));
            }
            true
        });
        best.map(|(s, i, r)| (s, (i, r)))
    }

    fn __release(&self, st: &mut CtxState) {
        self.tasks.all(false, |_, t| {
            t.__release(st);
            true
        });
    }
}

/// Either of two values: what `select(a, b).await` gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Either<A, B> {
    /// The first task finished first.
    Left(A),
    /// The second task finished first.
    Right(B),
}

/// `ctx.select(a, b)`: whichever of two tasks finishes first.
#[derive(Serialize, Deserialize, Debug)]
pub struct Select<A, B> {
    a: A,
    b: B,
    #[serde(skip)]
    ctx: Option<OrchestrationContext>,
}

impl<A, B> Select<A, B> {
    /// Name the suspension point where this task is awaited: `ctx.wait_for_event("approval")
    /// .checkpoint("approval").await`. A state saved there is resumed by any code that awaits a
    /// task with the same checkpoint name and keeps the same locals live there, however the
    /// awaited expression itself is written. Without it, the point is named by the awaited
    /// expression as written. Nothing else changes.
    pub fn checkpoint(self, name: &'static str) -> Self {
        let _ = name;
        self
    }
    pub(crate) fn new(a: A, b: B, ctx: OrchestrationContext) -> Self {
        Self { a, b, ctx: Some(ctx) }
    }
}

impl<A: DurableTask, B: DurableTask> DurableTask for Select<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn __ready(&self, st: &CtxState) -> bool {
        self.a.__ready(st) || self.b.__ready(st)
    }

    fn __poll(&self, st: &CtxState) -> Option<(u64, Self::Output)> {
        match (self.a.__poll(st), self.b.__poll(st)) {
            (Some((sa, a)), Some((sb, b))) => {
                if sa <= sb {
                    Some((sa, Either::Left(a)))
                } else {
                    Some((sb, Either::Right(b)))
                }
            }
            (Some((s, a)), None) => Some((s, Either::Left(a))),
            (None, Some((s, b))) => Some((s, Either::Right(b))),
            (None, None) => None,
        }
    }

    fn __release(&self, st: &mut CtxState) {
        self.a.__release(st);
        self.b.__release(st);
    }
}

/// A durable task as a plain `Future`, for running an orchestrator body as ordinary async Rust
/// (the direct interpretation used by the differential test harness).
#[doc(hidden)]
pub struct TaskFuture<D> {
    task: D,
    ctx: Option<OrchestrationContext>,
}

impl<D: DurableTask + Unpin> Future for TaskFuture<D> {
    type Output = D::Output;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<D::Output> {
        let this = self.get_mut();
        let ctx = this.ctx.as_ref().expect("a durable task awaited outside its orchestration step");
        match poll_task(ctx, &this.task) {
            Some(out) => Poll::Ready(out),
            None => Poll::Pending,
        }
    }
}

impl<T: DeserializeOwned> IntoFuture for Task<T> {
    type Output = Result<T, TaskError>;
    type IntoFuture = TaskFuture<Self>;
    fn into_future(self) -> TaskFuture<Self> {
        let ctx = self.ctx.clone();
        TaskFuture { task: self, ctx }
    }
}

impl<D: DurableTask<Output = Result<T, TaskError>> + Unpin, T> IntoFuture for WhenAll<D> {
    type Output = Result<Vec<T>, TaskError>;
    type IntoFuture = TaskFuture<Self>;
    fn into_future(self) -> TaskFuture<Self> {
        let ctx = self.ctx.clone();
        TaskFuture { task: self, ctx }
    }
}

impl<D: DurableTask + Unpin> IntoFuture for WhenAny<D> {
    type Output = (usize, D::Output);
    type IntoFuture = TaskFuture<Self>;
    fn into_future(self) -> TaskFuture<Self> {
        let ctx = self.ctx.clone();
        TaskFuture { task: self, ctx }
    }
}

impl<A: DurableTask + Unpin, B: DurableTask + Unpin> IntoFuture for Select<A, B> {
    type Output = Either<A::Output, B::Output>;
    type IntoFuture = TaskFuture<Self>;
    fn into_future(self) -> TaskFuture<Self> {
        let ctx = self.ctx.clone();
        TaskFuture { task: self, ctx }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Millis;

    fn ctx() -> OrchestrationContext {
        OrchestrationContext::new("t", Millis::default(), crate::state::RuntimeState::default())
    }

    fn encode<T: Serialize>(v: &T) -> Vec<u8> {
        payload::to_state(v).unwrap()
    }

    #[test]
    fn a_fan_out_is_saved_as_one_run_and_read_back_whole() {
        let ctx = ctx();
        let tasks: Vec<Task<u64>> = (0..10_000).map(|i| ctx.call_activity_by_name("a", i)).collect();
        let all = ctx.when_all(tasks);
        let bytes = encode(&all);
        assert!(bytes.len() < 64, "{} bytes for 10,000 tasks", bytes.len());
        let back: WhenAll<Task<u64>> = payload::from_state(&bytes).unwrap();
        assert_eq!(back.len(), 10_000);
        let mut seen = Vec::new();
        back.tasks.all(false, |i, t| {
            seen.push((i, t.id, t.kind.clone()));
            true
        });
        assert_eq!(seen, (0..10_000).map(|i| (i, i as u64, TaskKind::Activity)).collect::<Vec<_>>());
    }

    #[test]
    fn runs_follow_the_ids_and_kinds_in_their_order() {
        let ctx = ctx();
        let mut tasks: Vec<Task<u64>> = (0..5).map(|i| ctx.call_activity_by_name("a", i)).collect();
        tasks.push(ctx.wait_for_event("e"));
        tasks.push(ctx.wait_for_event("e"));
        tasks.push(ctx.call_activity_by_name("a", 9));
        tasks.swap(0, 1);
        let any = ctx.when_any(tasks);
        let back: WhenAny<Task<u64>> = payload::from_state(&encode(&any)).unwrap();
        let ids = |l: &TaskList<Task<u64>>, rev| {
            let mut v = Vec::new();
            l.all(rev, |i, t| {
                v.push((i, t.id, t.kind.clone()));
                true
            });
            v
        };
        assert!(matches!(back.tasks, TaskList::Runs(..)));
        assert_eq!(ids(&back.tasks, false), ids(&any.tasks, false));
        assert_eq!(ids(&back.tasks, true), ids(&any.tasks, true));
    }

    #[test]
    fn lists_saved_as_tasks_and_combinations_of_tasks_read_back() {
        #[derive(Serialize)]
        struct Before<'a> {
            tasks: &'a [Task<u64>],
        }
        let ctx = ctx();
        let tasks: Vec<Task<u64>> = (0..3).map(|i| ctx.call_activity_by_name("a", i)).collect();
        // What earlier releases saved: the tasks one by one.
        let back: WhenAll<Task<u64>> = payload::from_state(&encode(&Before { tasks: &tasks })).unwrap();
        let TaskList::Tasks(read) = &back.tasks else { panic!("read as tasks") };
        assert_eq!(read.iter().map(|t| t.id).collect::<Vec<_>>(), vec![0, 1, 2]);
        // A list of combinations is saved as it is.
        let inner = vec![ctx.when_all(tasks), ctx.when_all(vec![ctx.call_activity_by_name::<_, u64>("a", 7)])];
        let outer = ctx.when_all(inner);
        let back: WhenAll<WhenAll<Task<u64>>> = payload::from_state(&encode(&outer)).unwrap();
        let TaskList::Tasks(read) = &back.tasks else { panic!("a list of combinations is read as tasks") };
        assert_eq!(read.iter().map(|w| w.len()).collect::<Vec<_>>(), vec![3, 1]);
        assert!(!read[1].tasks.all(false, |_, t| t.id != 3), "task 3 in the second");
    }
}
