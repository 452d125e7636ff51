//! Activities, orchestrators and an entity the test crates share, written with the real
//! macros (`#[activity]`, `#[orchestrator]`, `#[entity]`).
//!
//! Register what a test needs on its worker:
//!
//! ```no_run
//! use durable::prelude::*;
//! use durable_test_support::fixtures::{Counter, hello, say_hello};
//! # async fn f(backend: durable::backend::Memory) {
//! let worker = Worker::builder(backend.clone())
//!     .orchestrator(hello)
//!     .activity(say_hello)
//!     .entity::<Counter>()
//!     .start()
//!     .await
//!     .unwrap();
//! # }
//! ```

use durable::prelude::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

pub use activities::*;

/// The activities. `#[activity]` puts an activity's doc comment on its generated `run`
/// method, not on the type it declares, hence the `allow`.
#[allow(missing_docs)]
mod activities {
    use super::*;

    /// `Hello {name}!`
    #[activity]
    pub async fn say_hello(name: String) -> Result<String, ActivityError> {
        Ok(format!("Hello {name}!"))
    }

    /// Fails its first `n` attempts (`attempt N failed`), then returns `ok after N`.
    #[activity]
    pub async fn fails_attempts(ctx: ActivityContext, n: u32) -> Result<String, ActivityError> {
        if ctx.attempt() <= n {
            Err(ActivityError::new(format!("attempt {} failed", ctx.attempt())))
        } else {
            Ok(format!("ok after {}", ctx.attempt()))
        }
    }

    static FAILED_ONCE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

    /// Fails the first time it sees a key in this process, then returns `ok {key}`.
    #[activity]
    pub async fn flaky(key: String) -> Result<String, ActivityError> {
        if FAILED_ONCE.lock().unwrap().insert(key.clone()) {
            return Err("the first attempt fails".into());
        }
        Ok(format!("ok {key}"))
    }

    /// Twice its input.
    #[activity]
    pub async fn double(x: u64) -> Result<u64, ActivityError> {
        Ok(2 * x)
    }

    /// Panics with its input.
    #[activity]
    pub async fn panicky(msg: String) -> Result<String, ActivityError> {
        panic!("{msg}")
    }

    /// Sleeps its input in real milliseconds, then returns it.
    #[activity]
    pub async fn slow(ms: u64) -> Result<u64, ActivityError> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(ms)
    }

    /// Returns `done {key}`, and, if the environment variable [`EXECUTION_LOG`] names a file,
    /// appends a line `{key}` to it first: the record of every execution, across processes.
    #[activity]
    pub async fn logged(key: String) -> Result<String, ActivityError> {
        if let Ok(path) = std::env::var(EXECUTION_LOG) {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
            // One `write` of one short line: appended whole, whatever other processes append.
            f.write_all(format!("{key}\n").as_bytes())?;
        }
        Ok(format!("done {key}"))
    }
}

/// The environment variable naming the file [`logged`] appends each execution to.
pub const EXECUTION_LOG: &str = "DURABLE_EXECUTION_LOG";

// ---------------------------------------------------------------- greetings

/// Greets each city in turn with [`say_hello`].
#[orchestrator]
pub async fn hello(ctx: OrchestrationContext, cities: Vec<String>) -> Result<Vec<String>, OrchestrationError> {
    let mut greetings = Vec::new();
    for city in cities {
        greetings.push(ctx.call_activity(say_hello, city).await?);
    }
    Ok(greetings)
}

/// Greets every city at once with [`say_hello`] and waits for all: a wide fan-out whose
/// snapshot holds every open task and every result not yet consumed.
#[orchestrator]
pub async fn hello_all(ctx: OrchestrationContext, cities: Vec<String>) -> Result<Vec<String>, OrchestrationError> {
    let tasks: Vec<_> = cities.into_iter().map(|city| ctx.call_activity(say_hello, city)).collect();
    Ok(ctx.when_all(tasks).await?)
}

/// [`hello`] under the same name with other code (it greets in upper case): a history or a
/// snapshot [`hello`] wrote must be refused.
#[orchestrator(name = "hello")]
pub async fn hello_drifted(ctx: OrchestrationContext, cities: Vec<String>) -> Result<Vec<String>, OrchestrationError> {
    let mut greetings = Vec::new();
    for city in cities {
        greetings.push(ctx.call_activity(say_hello, city.to_uppercase()).await?);
    }
    Ok(greetings)
}

/// Greets each city in turn with [`say_hello`]; with no input (`null`), Tokyo, Seattle and
/// London.
#[orchestrator]
pub async fn hello_cities(
    ctx: OrchestrationContext,
    cities: Option<Vec<String>>,
) -> Result<Vec<String>, OrchestrationError> {
    let cities = cities.unwrap_or_else(|| vec!["Tokyo".to_string(), "Seattle".to_string(), "London".to_string()]);
    let mut greetings = Vec::new();
    for city in cities {
        greetings.push(ctx.call_activity(say_hello, city).await?);
    }
    Ok(greetings)
}

/// Runs [`hello`] as a sub-orchestration and returns its greetings joined by spaces.
#[orchestrator]
pub async fn parent(ctx: OrchestrationContext, cities: Vec<String>) -> Result<String, OrchestrationError> {
    match ctx.call_orchestrator(hello, cities).await {
        Ok(greetings) => Ok(greetings.join(" ")),
        Err(e) => Err(OrchestrationError::new(format!("child failed: {e}"))),
    }
}

// ---------------------------------------------------------------- timers and events

/// Sleeps `hours` on a durable timer, then returns `ctx.now()` in ms since the Unix epoch.
#[orchestrator]
pub async fn sleeper(ctx: OrchestrationContext, hours: u64) -> Result<u64, OrchestrationError> {
    ctx.timer(Duration::from_secs(hours * 3600)).await?;
    Ok(ctx.now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64)
}

/// Sets its custom status to "waiting", sleeps `secs` on a durable timer if not 0, then waits
/// for event "go" and returns its data.
#[orchestrator]
pub async fn wait_event(ctx: OrchestrationContext, secs: u64) -> Result<String, OrchestrationError> {
    ctx.set_custom_status("waiting");
    if secs > 0 {
        ctx.timer(Duration::from_secs(secs)).await?;
    }
    Ok(ctx.wait_for_event::<String>("go").await?)
}

/// The input of [`mixed`]: instance number `i` (its kind is `i % 5`), and how many times it
/// continued as new.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixedJob {
    /// The instance's number.
    pub i: u64,
    /// How many times it continued as new.
    pub generation: u32,
}

impl MixedJob {
    /// The `[logged]` keys instance `i` runs, in order, when it completes, and its output.
    pub fn expected(i: u64) -> Option<(Vec<String>, String)> {
        let keys: Vec<String> = match i % 5 {
            0 => vec![format!("{i}-0-a"), format!("{i}-0-b")],
            1 => vec![format!("{i}-0-go")],
            2 => vec![format!("{i}-0-locked")],
            3 => (0..3).map(|g| format!("{i}-{g}-a")).collect(),
            _ => return None,
        };
        let output = keys.iter().map(|k| format!("done {k}")).collect::<Vec<_>>().join("|");
        let output = if i % 5 == 3 { format!("done {i}-2-a") } else { output };
        Some((keys, output))
    }
}

/// The mixed workload of the kill -9 test, by `job.i % 5`: (0) an activity, a 300 ms timer, an
/// activity; (1) an event `go`, then an activity; (2) a lock on counter `mixed-{i % 3}`, an
/// `add(1)` under it, the unlock, an activity; (3) an activity, then `continue_as_new` twice;
/// (4) waits for an event that never comes (the test terminates it).
#[orchestrator]
pub async fn mixed(ctx: OrchestrationContext, job: MixedJob) -> Result<String, OrchestrationError> {
    let tag = format!("{}-{}", job.i, job.generation);
    match job.i % 5 {
        0 => {
            let a = ctx.call_activity(logged, format!("{tag}-a")).await?;
            ctx.timer(Duration::from_millis(300)).await?;
            let b = ctx.call_activity(logged, format!("{tag}-b")).await?;
            Ok(format!("{a}|{b}"))
        }
        1 => {
            let go: String = ctx.wait_for_event("go").await?;
            Ok(ctx.call_activity(logged, format!("{tag}-{go}")).await?)
        }
        2 => {
            let key = format!("mixed-{}", job.i % 3);
            let guard = ctx.lock([EntityId::of::<Counter>(key.clone())]).await?;
            ctx.entity::<Counter>(key).add(1).await?;
            ctx.unlock(guard);
            Ok(ctx.call_activity(logged, format!("{tag}-locked")).await?)
        }
        3 => {
            let a = ctx.call_activity(logged, format!("{tag}-a")).await?;
            if job.generation < 2 {
                ctx.continue_as_new(MixedJob { i: job.i, generation: job.generation + 1 });
            }
            Ok(a)
        }
        _ => Ok(ctx.wait_for_event::<String>("never").await?),
    }
}

/// Adds up `n` events named `e`, received one at a time.
#[orchestrator]
pub async fn sum_events(ctx: OrchestrationContext, n: u32) -> Result<i64, OrchestrationError> {
    let mut sum = 0;
    for _ in 0..n {
        sum += ctx.wait_for_event::<i64>("e").await?;
    }
    Ok(sum)
}

/// Greets `name` with [`say_hello`], sleeps 200 ms on a durable timer, waits for event "go"
/// (a `String`) and greets its data: `Hello {name}! Hello {data}!`. A step of every kind:
/// an activity, a timer, an event.
#[orchestrator]
pub async fn errand(ctx: OrchestrationContext, name: String) -> Result<String, OrchestrationError> {
    let first = ctx.call_activity(say_hello, name).await?;
    ctx.timer(Duration::from_millis(200)).await?;
    let data = ctx.wait_for_event::<String>("go").await?;
    let second = ctx.call_activity(say_hello, data).await?;
    Ok(format!("{first} {second}"))
}

/// [`wait_event`] under the same name with code that cannot resume its instances: a local
/// (`label`) is live at the `wait_for_event` that [`wait_event`]'s snapshot does not have, and
/// a timer it always sets makes [`wait_event`]'s history (without one) not replay.
#[orchestrator(name = "wait_event")]
pub async fn wait_event_v2(ctx: OrchestrationContext, secs: u64) -> Result<String, OrchestrationError> {
    let label = format!("waiting (v2, {secs})");
    ctx.set_custom_status(&label);
    ctx.timer(Duration::from_secs(secs)).await?;
    let data = ctx.wait_for_event::<String>("go").await?;
    Ok(format!("{label}: {data}"))
}

/// Runs [`wait_event`] (no timer) as a sub-orchestration under the fixed instance id "child".
#[orchestrator]
pub async fn fixed_child(ctx: OrchestrationContext) -> Result<String, OrchestrationError> {
    Ok(ctx.call_orchestrator(wait_event, 0).with_instance_id("child").await?)
}

/// Waits for event "inc", then continues as new with `n + 1`, until `n` reaches 3.
#[orchestrator]
pub async fn counts_to_three(ctx: OrchestrationContext, n: u32) -> Result<u32, OrchestrationError> {
    if n >= 3 {
        return Ok(n);
    }
    ctx.wait_for_event::<()>("inc").await?;
    ctx.continue_as_new(n + 1);
    Ok(n)
}

// ---------------------------------------------------------------- failures

/// Calls [`fails_attempts`]`(fail)` with `max` attempts, 10 s apart then doubling; fails with
/// `flaky failed: {error}` when out of attempts.
#[orchestrator]
pub async fn retrying(ctx: OrchestrationContext, fail: u32, max: u32) -> Result<String, OrchestrationError> {
    let policy = RetryPolicy::exponential(max, Duration::from_secs(10));
    match ctx.call_activity(fails_attempts, fail).with_retry(policy).await {
        Ok(v) => Ok(v),
        Err(e) => Err(OrchestrationError::new(format!("flaky failed: {e}"))),
    }
}

/// Fans out `n` calls of [`double`] (inputs 1 to `n`), awaits them with `when_all`, waits
/// for event `more` (a number), then awaits one more [`double`] of it; returns the sum of all
/// the results. With `n` over a worker's `task_table_apart_from`, its task table is kept apart
/// while it waits.
#[orchestrator]
pub async fn wide(ctx: OrchestrationContext, n: u64) -> Result<u64, OrchestrationError> {
    let tasks: Vec<_> = (1..=n).map(|i| ctx.call_activity(double, i)).collect();
    let results = ctx.when_all(tasks).await?;
    let more: u64 = ctx.wait_for_event("more").await?;
    let last = ctx.call_activity(double, more).await?;
    Ok(results.iter().sum::<u64>() + last)
}

/// Fans out `n` calls of [`flaky`] (keys `{prefix}-1` to `{prefix}-n`; each fails its first
/// attempt in a process) with a retry policy of 3 attempts 10 ms apart, and one timer of
/// `secs` seconds among them, awaited with `when_all`; returns how many succeeded.
#[orchestrator]
pub async fn wide_flaky(ctx: OrchestrationContext, prefix: String, n: u64) -> Result<u64, OrchestrationError> {
    let policy = RetryPolicy::exponential(3, Duration::from_millis(10));
    let tasks: Vec<_> =
        (1..=n).map(|i| ctx.call_activity(flaky, format!("{prefix}-{i}")).with_retry(policy.clone())).collect();
    let timer = ctx.timer(Duration::from_millis(50));
    let results = ctx.when_all(tasks).await?;
    timer.await?;
    Ok(results.iter().filter(|r| r.starts_with("ok ")).count() as u64)
}

/// Calls [`flaky`]`(key)`: fails the first time for a key (no retries), succeeds after a
/// rewind.
#[orchestrator]
pub async fn uses_flaky(ctx: OrchestrationContext, key: String) -> Result<String, OrchestrationError> {
    Ok(ctx.call_activity(flaky, key).await?)
}

/// Calls [`panicky`]`(msg)` and fails with its error.
#[orchestrator]
pub async fn call_panicky(ctx: OrchestrationContext, msg: String) -> Result<String, OrchestrationError> {
    Ok(ctx.call_activity(panicky, msg).await?)
}

/// Calls an activity no worker registers, `no_such_activity`.
#[orchestrator]
pub async fn calls_unknown(ctx: OrchestrationContext) -> Result<Value, OrchestrationError> {
    Ok(ctx.call_activity_by_name::<_, Value>("no_such_activity", 1).await?)
}

/// Panics in its first step: `boom in the orchestrator`.
#[orchestrator]
pub async fn panics(_ctx: OrchestrationContext) -> Result<(), OrchestrationError> {
    panic!("boom in the orchestrator")
}

/// Calls [`slow`]`(ms)`.
#[orchestrator]
pub async fn call_slow(ctx: OrchestrationContext, ms: u64) -> Result<u64, OrchestrationError> {
    Ok(ctx.call_activity(slow, ms).await?)
}

// ---------------------------------------------------------------- the Counter entity

/// A counter entity (name `counter`); its state is the number itself in JSON.
#[derive(Default, Serialize, Deserialize, Debug, PartialEq)]
#[serde(transparent)]
pub struct Counter {
    /// The count.
    pub value: i64,
}

#[entity(name = "counter")]
impl Counter {
    fn add(&mut self, amount: i64) {
        self.value += amount;
    }
    fn reset(&mut self) {
        self.value = 0;
    }
    fn get(&self) -> i64 {
        self.value
    }
    /// Adds; over 1000, fails (the state is then left as it was).
    fn add_checked(&mut self, amount: i64) -> Result<i64, String> {
        self.value += amount;
        if self.value > 1_000 {
            return Err(format!("{} is over the limit", self.value));
        }
        Ok(self.value)
    }
    /// Adds, then panics (the state is then left as it was).
    fn explode(&mut self, amount: i64) -> i64 {
        self.value += amount;
        panic!("counter exploded at {}", self.value);
    }
    /// Adds, and signals the counter `target` to add the same.
    fn forward(&mut self, ctx: &mut EntityContext, target: String, amount: i64) {
        self.value += amount;
        ctx.signal::<Counter>(target).add(amount);
    }
    /// Deletes this counter.
    fn remove(&mut self, ctx: &mut EntityContext) {
        ctx.delete_entity();
    }
    /// Starts a [`report`] of this counter; returns its instance id.
    fn start_report(&mut self, ctx: &mut EntityContext) -> String {
        ctx.start_orchestration(report, (ctx.key().to_string(), self.value)).expect("starts")
    }
}

/// `{key}={value}`: started by [`Counter`]'s `start_report`.
#[orchestrator]
pub async fn report(_ctx: OrchestrationContext, key: String, value: i64) -> Result<String, OrchestrationError> {
    Ok(format!("{key}={value}"))
}
