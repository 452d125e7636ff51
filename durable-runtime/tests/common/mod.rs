//! Hand-lowered orchestrators and activities for the runtime tests (the macros are tested
//! elsewhere): each orchestrator is a small state machine over one awaited task at a time.

#![allow(dead_code, async_fn_in_trait)]

pub mod redis_server;

use durable_runtime::backend::{Backend, Memory, Redis};
use durable_runtime::engine::{self, EngineConfig, Registry};
use durable_runtime::orchestrator::{BoxFuture, StepInput, StepResult};
use durable_runtime::task::poll_task;
use durable_runtime::{
    Activity, ActivityContext, ActivityError, Client, InstanceStatus, OrchestrationContext, Orchestrator, RetryPolicy,
    RuntimeStatus, Task, TaskError, payload,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, SystemTime};

/// What a hand-lowered body does next.
pub enum Next {
    /// Suspend on this task; resume at this program counter with its result.
    Await(u32, Task<Value>),
    /// Return.
    Done(Result<Value, String>),
}

/// A task of any result type as a `Task<Value>` (the serialized form does not carry the type).
pub fn erase<T>(t: Task<T>) -> Task<Value> {
    serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap()
}

type Body<S> = fn(&OrchestrationContext, &mut S, u32, Option<Result<Value, TaskError>>) -> Next;

/// Run a hand-lowered body: the state `S`, the program counter and the awaited task are the
/// snapshot.
pub fn drive<I: DeserializeOwned, S: Serialize + DeserializeOwned>(
    ctx: &OrchestrationContext,
    input: StepInput<'_>,
    name: &str,
    init: fn(I) -> S,
    body: Body<S>,
) -> StepResult {
    let (mut s, mut pc, mut result) = match input {
        StepInput::Start(json) => match payload::from_json::<I>(json, &format!("the input of orchestrator `{name}`")) {
            Ok(i) => (init(i), 0, None),
            Err(e) => return StepResult::BadInput(e),
        },
        StepInput::Resume(bytes) => {
            let (pc, s, task): (u32, S, Task<Value>) = match payload::from_state(bytes) {
                Ok(x) => x,
                Err(e) => return StepResult::BadState(e),
            };
            match poll_task(ctx, &task) {
                Some(r) => (s, pc, Some(r)),
                None => return StepResult::Suspended(bytes.to_vec()),
            }
        }
    };
    loop {
        match body(ctx, &mut s, pc, result.take()) {
            Next::Done(Ok(v)) => return StepResult::Completed(v.to_string()),
            Next::Done(Err(e)) => return StepResult::Failed(e),
            Next::Await(next_pc, task) => match poll_task(ctx, &task) {
                Some(r) => {
                    pc = next_pc;
                    result = Some(r);
                }
                None => {
                    return StepResult::Suspended(payload::to_state(&(next_pc, &s, &task)).unwrap());
                }
            },
        }
    }
}

// ---------------------------------------------------------------- activities

#[derive(Clone, Copy)]
pub struct SayHello;
impl Activity for SayHello {
    type Input = String;
    type Output = String;
    const NAME: &'static str = "say_hello";
    fn __run(_ctx: ActivityContext, name: String) -> BoxFuture<'static, Result<String, ActivityError>> {
        Box::pin(async move { Ok(format!("Hello {name}!")) })
    }
}

/// Fails its first `n` attempts, then returns "ok after {attempt}".
#[derive(Clone, Copy)]
pub struct Flaky;
impl Activity for Flaky {
    type Input = u32;
    type Output = String;
    const NAME: &'static str = "flaky";
    fn __run(ctx: ActivityContext, n: u32) -> BoxFuture<'static, Result<String, ActivityError>> {
        Box::pin(async move {
            if ctx.attempt() <= n {
                Err(ActivityError::new(format!("attempt {} failed", ctx.attempt())))
            } else {
                Ok(format!("ok after {}", ctx.attempt()))
            }
        })
    }
}

/// Panics with its input.
#[derive(Clone, Copy)]
pub struct Panicky;
impl Activity for Panicky {
    type Input = String;
    type Output = String;
    const NAME: &'static str = "panicky";
    fn __run(_ctx: ActivityContext, msg: String) -> BoxFuture<'static, Result<String, ActivityError>> {
        Box::pin(async move { panic!("{msg}") })
    }
}

// ---------------------------------------------------------------- orchestrators

/// Greets each city in turn with `say_hello`.
#[derive(Clone, Copy)]
pub struct Hello;
impl Orchestrator for Hello {
    type Input = Vec<String>;
    type Output = Vec<String>;
    const NAME: &'static str = "hello";
    const FINGERPRINT: u64 = 1;
    fn __step(ctx: &OrchestrationContext, input: StepInput<'_>) -> StepResult {
        drive(
            ctx,
            input,
            Self::NAME,
            |cities: Vec<String>| (VecDeque::from(cities), Vec::<String>::new()),
            |ctx, (todo, out), pc, r| {
                if pc == 1 {
                    match r.unwrap() {
                        Ok(v) => out.push(serde_json::from_value(v).unwrap()),
                        Err(e) => return Next::Done(Err(e.to_string())),
                    }
                }
                match todo.pop_front() {
                    Some(city) => Next::Await(1, erase(ctx.call_activity(SayHello, city))),
                    None => Next::Done(Ok(json!(out))),
                }
            },
        )
    }
}

/// Same name as [`Hello`], other code: greets in upper case.
#[derive(Clone, Copy)]
pub struct HelloDrifted;
impl Orchestrator for HelloDrifted {
    type Input = Vec<String>;
    type Output = Vec<String>;
    const NAME: &'static str = "hello";
    const FINGERPRINT: u64 = 2;
    fn __step(ctx: &OrchestrationContext, input: StepInput<'_>) -> StepResult {
        drive(
            ctx,
            input,
            Self::NAME,
            |cities: Vec<String>| (VecDeque::from(cities), Vec::<String>::new()),
            |ctx, (todo, out), pc, r| {
                if pc == 1 {
                    out.push(serde_json::from_value(r.unwrap().unwrap()).unwrap());
                }
                match todo.pop_front() {
                    Some(city) => Next::Await(1, erase(ctx.call_activity(SayHello, city.to_uppercase()))),
                    None => Next::Done(Ok(json!(out))),
                }
            },
        )
    }
}

/// Sleeps `hours` on a durable timer, then returns `ctx.now()` in ms.
#[derive(Clone, Copy)]
pub struct Sleeper;
impl Orchestrator for Sleeper {
    type Input = u64;
    type Output = u64;
    const NAME: &'static str = "sleeper";
    const FINGERPRINT: u64 = 1;
    fn __step(ctx: &OrchestrationContext, input: StepInput<'_>) -> StepResult {
        drive(
            ctx,
            input,
            Self::NAME,
            |hours: u64| hours,
            |ctx, hours, pc, _| match pc {
                0 => Next::Await(1, erase(ctx.timer(Duration::from_secs(*hours * 3600)))),
                _ => {
                    let now = ctx.now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
                    Next::Done(Ok(json!(now)))
                }
            },
        )
    }
}

/// Sets its custom status to "waiting", optionally sleeps `secs`, then waits for event "go"
/// and returns its data.
#[derive(Clone, Copy)]
pub struct WaitEvent;
impl Orchestrator for WaitEvent {
    type Input = u64;
    type Output = String;
    const NAME: &'static str = "wait_event";
    const FINGERPRINT: u64 = 10;
    fn __step(ctx: &OrchestrationContext, input: StepInput<'_>) -> StepResult {
        wait_event_step(ctx, input)
    }
}

fn wait_event_step(ctx: &OrchestrationContext, input: StepInput<'_>) -> StepResult {
    drive(
        ctx,
        input,
        "wait_event",
        |secs: u64| secs,
        |ctx, secs, pc, r| match pc {
            0 => {
                ctx.set_custom_status("waiting");
                if *secs > 0 {
                    Next::Await(1, erase(ctx.timer(Duration::from_secs(*secs))))
                } else {
                    Next::Await(2, erase(ctx.wait_for_event::<String>("go")))
                }
            }
            1 => Next::Await(2, erase(ctx.wait_for_event::<String>("go"))),
            _ => match r.unwrap() {
                Ok(v) => Next::Done(Ok(v)),
                Err(e) => Next::Done(Err(e.to_string())),
            },
        },
    )
}

/// [`WaitEvent`] as built from other code (another fingerprint).
#[derive(Clone, Copy)]
pub struct WaitEventV2;
impl Orchestrator for WaitEventV2 {
    type Input = u64;
    type Output = String;
    const NAME: &'static str = "wait_event";
    const FINGERPRINT: u64 = 11;
    fn __step(ctx: &OrchestrationContext, input: StepInput<'_>) -> StepResult {
        wait_event_step(ctx, input)
    }
}

/// Calls `flaky(fail_times)` with `max_attempts` attempts, 10 s apart then doubling.
#[derive(Clone, Copy)]
pub struct Retrying;
impl Orchestrator for Retrying {
    type Input = (u32, u32);
    type Output = String;
    const NAME: &'static str = "retrying";
    const FINGERPRINT: u64 = 1;
    fn __step(ctx: &OrchestrationContext, input: StepInput<'_>) -> StepResult {
        drive(
            ctx,
            input,
            Self::NAME,
            |i: (u32, u32)| i,
            |ctx, (fail, max), pc, r| match pc {
                0 => {
                    let policy = RetryPolicy::exponential(*max, Duration::from_secs(10));
                    Next::Await(1, erase(ctx.call_activity(Flaky, *fail).with_retry(policy)))
                }
                _ => match r.unwrap() {
                    Ok(v) => Next::Done(Ok(v)),
                    Err(e) => Next::Done(Err(format!("flaky failed: {e}"))),
                },
            },
        )
    }
}

/// Calls `panicky(msg)` and fails with its error.
#[derive(Clone, Copy)]
pub struct CallPanicky;
impl Orchestrator for CallPanicky {
    type Input = String;
    type Output = String;
    const NAME: &'static str = "call_panicky";
    const FINGERPRINT: u64 = 1;
    fn __step(ctx: &OrchestrationContext, input: StepInput<'_>) -> StepResult {
        drive(
            ctx,
            input,
            Self::NAME,
            |m: String| m,
            |ctx, m, pc, r| match pc {
                0 => Next::Await(1, erase(ctx.call_activity(Panicky, m.clone()))),
                _ => Next::Done(r.unwrap().map_err(|e| e.to_string())),
            },
        )
    }
}

/// Calls an activity no worker registers.
#[derive(Clone, Copy)]
pub struct CallsUnknown;
impl Orchestrator for CallsUnknown {
    type Input = ();
    type Output = String;
    const NAME: &'static str = "calls_unknown";
    const FINGERPRINT: u64 = 1;
    fn __step(ctx: &OrchestrationContext, input: StepInput<'_>) -> StepResult {
        drive(
            ctx,
            input,
            Self::NAME,
            |(): ()| (),
            |ctx, _, pc, r| match pc {
                0 => Next::Await(1, erase(ctx.call_activity_by_name::<_, Value>("no_such_activity", 1))),
                _ => Next::Done(r.unwrap().map_err(|e| e.to_string())),
            },
        )
    }
}

/// Panics in its first step.
#[derive(Clone, Copy)]
pub struct Panics;
impl Orchestrator for Panics {
    type Input = ();
    type Output = ();
    const NAME: &'static str = "panics";
    const FINGERPRINT: u64 = 1;
    fn __step(ctx: &OrchestrationContext, input: StepInput<'_>) -> StepResult {
        drive(ctx, input, Self::NAME, |(): ()| (), |_, _, _, _| panic!("boom in the orchestrator"))
    }
}

/// Waits for event "inc", then continues as new with n + 1, until n reaches 3.
#[derive(Clone, Copy)]
pub struct Counter;
impl Orchestrator for Counter {
    type Input = u32;
    type Output = u32;
    const NAME: &'static str = "counter";
    const FINGERPRINT: u64 = 1;
    fn __step(ctx: &OrchestrationContext, input: StepInput<'_>) -> StepResult {
        drive(
            ctx,
            input,
            Self::NAME,
            |n: u32| n,
            |ctx, n, pc, _| match pc {
                0 if *n >= 3 => Next::Done(Ok(json!(*n))),
                0 => Next::Await(1, erase(ctx.wait_for_event::<()>("inc"))),
                _ => {
                    ctx.continue_as_new(*n + 1);
                    Next::Done(Ok(Value::Null))
                }
            },
        )
    }
}

/// Runs [`Hello`] as a sub-orchestration and returns its output joined.
#[derive(Clone, Copy)]
pub struct Parent;
impl Orchestrator for Parent {
    type Input = Vec<String>;
    type Output = String;
    const NAME: &'static str = "parent";
    const FINGERPRINT: u64 = 1;
    fn __step(ctx: &OrchestrationContext, input: StepInput<'_>) -> StepResult {
        drive(
            ctx,
            input,
            Self::NAME,
            |c: Vec<String>| c,
            |ctx, cities, pc, r| match pc {
                0 => Next::Await(1, erase(ctx.call_orchestrator(Hello, cities.clone()))),
                _ => match r.unwrap() {
                    Ok(v) => {
                        let v: Vec<String> = serde_json::from_value(v).unwrap();
                        Next::Done(Ok(json!(v.join(" "))))
                    }
                    Err(e) => Next::Done(Err(format!("child failed: {e}"))),
                },
            },
        )
    }
}

// ---------------------------------------------------------------- helpers

/// How long the helpers below wait for something to happen (real time).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Wait (real time) until the instance's status satisfies `pred`.
pub async fn wait_until(client: &Client, id: &str, pred: impl Fn(&InstanceStatus) -> bool) -> InstanceStatus {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if let Some(s) = client.status(id).await.unwrap()
            && pred(&s)
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("instance {id} never reached the expected state: {:?}", client.status(id).await.unwrap());
}

/// Wait (real time) until `f` holds.
pub async fn eventually<F: FnMut() -> Fut, Fut: Future<Output = bool>>(mut f: F) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition never held");
}

/// Let background tasks run for a moment (real time): for checking that something does *not*
/// happen.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

pub fn running(s: &InstanceStatus) -> bool {
    s.runtime_status == RuntimeStatus::Running
}

/// Step one instance by hand (no worker): fetch, process, commit. `false` if there was no work.
pub async fn step_once<B: Backend>(backend: &B, registry: &Registry) -> bool {
    let Some(item) = backend.fetch_orchestration_work(Duration::ZERO).await.unwrap() else {
        return false;
    };
    let history = if engine::needs_history(&item) { backend.history(&item.instance_id).await.unwrap() } else { None };
    let commit = engine::process(registry, &item, history.as_deref(), backend.now(), &EngineConfig::default());
    backend.commit(commit).await.unwrap();
    true
}

// ---------------------------------------------------------------- backends under test

/// What the conformance tests need beyond [`Backend`]: a clock to move and a look at timers
/// and queued activities.
pub trait TestBackend: Backend + Clone {
    /// Move the clock forward (a virtual clock: the only way it moves).
    fn advance(&self, d: Duration);
    /// The backend's clock.
    fn time(&self) -> SystemTime;
    async fn pending_timers(&self) -> usize;
    async fn next_timer(&self) -> Option<SystemTime>;
    async fn pending_activities(&self) -> usize;
}

impl TestBackend for Memory {
    fn advance(&self, d: Duration) {
        Memory::advance(self, d)
    }
    fn time(&self) -> SystemTime {
        Memory::time(self)
    }
    async fn pending_timers(&self) -> usize {
        Memory::pending_timers(self)
    }
    async fn next_timer(&self) -> Option<SystemTime> {
        Memory::next_timer(self)
    }
    async fn pending_activities(&self) -> usize {
        Memory::pending_activities(self)
    }
}

impl TestBackend for Redis {
    fn advance(&self, d: Duration) {
        Redis::advance(self, d)
    }
    fn time(&self) -> SystemTime {
        Redis::time(self)
    }
    async fn pending_timers(&self) -> usize {
        Redis::pending_timers(self).await.unwrap()
    }
    async fn next_timer(&self) -> Option<SystemTime> {
        Redis::next_timer(self).await.unwrap()
    }
    async fn pending_activities(&self) -> usize {
        Redis::pending_activities(self).await.unwrap()
    }
}

/// Which clock a test wants.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    Real,
    Virtual,
}

pub fn memory(clock: Clock) -> Memory {
    match clock {
        Clock::Real => Memory::new(),
        Clock::Virtual => Memory::with_virtual_clock(),
    }
}

/// A Redis backend on a server of its own (kept alive by the returned guard).
pub async fn redis(clock: Clock) -> (Redis, redis_server::RedisServer) {
    let server = redis_server::RedisServer::start();
    let mut b = Redis::builder(server.url()).lease_duration(Duration::from_secs(2));
    if let Clock::Virtual = clock {
        b = b.virtual_clock();
    }
    (b.connect().await.unwrap(), server)
}

/// Sleeps its input in real milliseconds, then returns it.
#[derive(Clone, Copy)]
pub struct Slow;
impl Activity for Slow {
    type Input = u64;
    type Output = u64;
    const NAME: &'static str = "slow";
    fn __run(_ctx: ActivityContext, ms: u64) -> BoxFuture<'static, Result<u64, ActivityError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(ms)
        })
    }
}

/// Calls `slow(ms)`.
#[derive(Clone, Copy)]
pub struct CallSlow;
impl Orchestrator for CallSlow {
    type Input = u64;
    type Output = u64;
    const NAME: &'static str = "call_slow";
    const FINGERPRINT: u64 = 1;
    fn __step(ctx: &OrchestrationContext, input: StepInput<'_>) -> StepResult {
        drive(
            ctx,
            input,
            Self::NAME,
            |ms: u64| ms,
            |ctx, ms, pc, r| match pc {
                0 => Next::Await(1, erase(ctx.call_activity(Slow, *ms))),
                _ => Next::Done(r.unwrap().map_err(|e| e.to_string())),
            },
        )
    }
}

/// Runs [`WaitEvent`] as a sub-orchestration under the fixed instance id "child".
#[derive(Clone, Copy)]
pub struct FixedChild;
impl Orchestrator for FixedChild {
    type Input = ();
    type Output = String;
    const NAME: &'static str = "fixed_child";
    const FINGERPRINT: u64 = 1;
    fn __step(ctx: &OrchestrationContext, input: StepInput<'_>) -> StepResult {
        drive(
            ctx,
            input,
            Self::NAME,
            |(): ()| (),
            |ctx, _, pc, r| match pc {
                0 => Next::Await(1, erase(ctx.call_orchestrator(WaitEvent, 0).with_instance_id("child"))),
                _ => Next::Done(r.unwrap().map_err(|e| e.to_string())),
            },
        )
    }
}
