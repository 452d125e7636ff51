//! The workload the scenarios run: activities that do no work, and the orchestrators that call
//! them (so the figures are the cost of the runtime itself).

use durable::prelude::*;
use std::sync::Mutex;
use std::time::Instant;

#[activity]
pub(crate) async fn noop(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

/// Arrival times of `timed` activity calls, for the history-length scenario.
pub(crate) static ARRIVALS: Mutex<Vec<Instant>> = Mutex::new(Vec::new());

#[activity]
pub(crate) async fn timed(n: u64) -> Result<u64, ActivityError> {
    ARRIVALS.lock().unwrap_or_else(|p| p.into_inner()).push(Instant::now());
    Ok(n + 1)
}

#[orchestrator]
pub(crate) async fn five_activities(ctx: OrchestrationContext, n: u64) -> Result<u64, OrchestrationError> {
    let a = ctx.call_activity(noop, n).await?;
    let b = ctx.call_activity(noop, a).await?;
    let c = ctx.call_activity(noop, b).await?;
    let d = ctx.call_activity(noop, c).await?;
    let e = ctx.call_activity(noop, d).await?;
    Ok(e)
}

#[orchestrator]
pub(crate) async fn three_activities(ctx: OrchestrationContext, n: u64) -> Result<u64, OrchestrationError> {
    let a = ctx.call_activity(noop, n).await?;
    let b = ctx.call_activity(noop, a).await?;
    let c = ctx.call_activity(noop, b).await?;
    Ok(c)
}

#[orchestrator]
pub(crate) async fn sequence(ctx: OrchestrationContext, n: u64) -> Result<u64, OrchestrationError> {
    let mut x = 0;
    for _ in 0..n {
        x = ctx.call_activity(noop, x).await?;
    }
    Ok(x)
}

#[orchestrator]
pub(crate) async fn timed_sequence(ctx: OrchestrationContext, n: u64) -> Result<u64, OrchestrationError> {
    let mut x = 0;
    for _ in 0..n {
        x = ctx.call_activity(timed, x).await?;
    }
    Ok(x)
}

#[orchestrator]
pub(crate) async fn fan_out(ctx: OrchestrationContext, n: u64) -> Result<u64, OrchestrationError> {
    let mut tasks = Vec::new();
    for i in 0..n {
        tasks.push(ctx.call_activity(noop, i));
    }
    let results = ctx.when_all(tasks).await?;
    Ok(results.iter().sum())
}

/// The sub-orchestrations scenario's parent: `n` children of `five_activities` (child `i` gets
/// `i`, returns `i + 5`), all started at once and awaited with `when_all`; the sum of their outputs.
#[orchestrator]
pub(crate) async fn parent_of_five(ctx: OrchestrationContext, n: u64) -> Result<u64, OrchestrationError> {
    let mut children = Vec::new();
    for i in 0..n {
        children.push(ctx.call_orchestrator(five_activities, i));
    }
    let results = ctx.when_all(children).await?;
    Ok(results.iter().sum())
}

/// Runs of `counted`, for the parked scenario to know when every instance is past its activity.
pub(crate) static COUNTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[activity]
pub(crate) async fn counted(n: u64) -> Result<u64, ActivityError> {
    COUNTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(n + 1)
}

/// One activity, then parked on event `go` until someone raises it.
#[orchestrator]
pub(crate) async fn parked_on_event(ctx: OrchestrationContext, n: u64) -> Result<u64, OrchestrationError> {
    let a = ctx.call_activity(counted, n).await?;
    let go: u64 = ctx.wait_for_event("go").await?;
    Ok(a + go)
}
