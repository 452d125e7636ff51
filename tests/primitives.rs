//! Every orchestration primitive and every bad input of the design (§3), through the public
//! API, on the embedded backend. Timers use the virtual clock; waits poll with a deadline.

use durable::backend::Memory;
use durable::prelude::*;
use durable::{EventKind, InstanceQuery, RuntimeStatus};
use durable_test_support::wait::{PATIENCE, eventually};
use std::sync::atomic::{AtomicU32, Ordering};

#[activity]
async fn double(n: i64) -> Result<i64, ActivityError> {
    Ok(n * 2)
}

static FLAKY_CALLS: AtomicU32 = AtomicU32::new(0);

#[activity]
async fn flaky(ctx: ActivityContext, n: i64) -> Result<i64, ActivityError> {
    FLAKY_CALLS.fetch_add(1, Ordering::SeqCst);
    if ctx.attempt() < 3 {
        return Err(format!("attempt {} failed", ctx.attempt()).into());
    }
    Ok(n + 100)
}

#[activity]
async fn explode(n: i64) -> Result<i64, ActivityError> {
    if n >= 0 {
        panic!("activity blew up on {n}");
    }
    Ok(n)
}

async fn setup(backend: &Memory) -> (durable::WorkerHandle, Client) {
    let worker = Worker::builder(backend.clone())
        .orchestrator(retrying)
        .orchestrator(parent)
        .orchestrator(child)
        .orchestrator(long_timer)
        .orchestrator(early_event)
        .orchestrator(race)
        .orchestrator(counter_loop)
        .orchestrator(status_and_time)
        .orchestrator(waits_forever)
        .orchestrator(panicking)
        .orchestrator(uses_explode)
        .orchestrator(calls_unknown)
        .orchestrator(fans_out)
        .activity(double)
        .activity(flaky)
        .activity(explode)
        .start()
        .await
        .expect("worker starts");
    (worker, Client::new(backend.clone()))
}

// ------------------------------------------------------------------ retries

#[orchestrator]
async fn retrying(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let v = ctx.call_activity(flaky, n).with_retry(RetryPolicy::exponential(3, Duration::from_secs(10))).await?;
    Ok(v)
}

#[tokio::test]
async fn activity_retries_follow_the_policy_with_durable_backoff() {
    let backend = Memory::with_virtual_clock();
    let (worker, client) = setup(&backend).await;
    FLAKY_CALLS.store(0, Ordering::SeqCst);
    let id = client.start(retrying, 1).await.unwrap();
    // First attempt fails; the retry waits on a 10 s durable timer.
    eventually("first retry timer", async || backend.pending_timers() == 1).await;
    assert_eq!(FLAKY_CALLS.load(Ordering::SeqCst), 1);
    backend.advance(Duration::from_secs(10));
    eventually("second retry timer", async || FLAKY_CALLS.load(Ordering::SeqCst) == 2 && backend.pending_timers() == 1)
        .await;
    backend.advance(Duration::from_secs(20));
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<i64>().unwrap(), 101);
    let history = client.history(&id).await.unwrap();
    let retries = history.iter().filter(|e| matches!(e.kind, EventKind::TaskRetryScheduled { .. })).count();
    assert_eq!(retries, 2);
    worker.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ sub-orchestrations

#[orchestrator]
async fn child(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    Ok(ctx.call_activity(double, n).await? + 1)
}

#[orchestrator]
async fn parent(ctx: OrchestrationContext, n: i64) -> Result<(i64, i64), OrchestrationError> {
    let a = ctx.call_orchestrator(child, n).await?;
    let b = ctx.call_orchestrator(child, a).with_instance_id(format!("{}-named-child", ctx.instance_id())).await?;
    Ok((a, b))
}

#[tokio::test]
async fn sub_orchestrations_return_their_output() {
    let backend = Memory::new();
    let (worker, client) = setup(&backend).await;
    let id = client.start_with_id(parent, "p1", 5).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<(i64, i64)>().unwrap(), (11, 23));
    let named = client.status("p1-named-child").await.unwrap().expect("child exists under its id");
    assert_eq!(named.runtime_status, RuntimeStatus::Completed);
    assert_eq!(named.output::<i64>().unwrap(), 23);
    worker.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ timers

#[orchestrator]
async fn long_timer(ctx: OrchestrationContext) -> Result<u64, OrchestrationError> {
    let start = ctx.now();
    ctx.timer(Duration::from_secs(72 * 3600)).await?;
    Ok(ctx.now().duration_since(start).unwrap().as_secs())
}

#[tokio::test]
async fn timer_never_fires_early() {
    let backend = Memory::with_virtual_clock();
    let (worker, client) = setup(&backend).await;
    let id = client.start(long_timer, ()).await.unwrap();
    eventually("timer armed", async || backend.pending_timers() == 1).await;
    backend.advance(Duration::from_secs(72 * 3600 - 1));
    // Nothing can fire: the clock is one second short.
    assert_eq!(backend.pending_timers(), 1);
    assert_eq!(client.status(&id).await.unwrap().unwrap().runtime_status, RuntimeStatus::Running);
    backend.advance(Duration::from_secs(1));
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert!(done.output::<u64>().unwrap() >= 72 * 3600);
    worker.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ events

#[orchestrator]
async fn early_event(ctx: OrchestrationContext) -> Result<Vec<String>, OrchestrationError> {
    ctx.timer(Duration::from_secs(60)).await?;
    let a: String = ctx.wait_for_event("note").await?;
    let b: String = ctx.wait_for_event("note").await?;
    Ok(vec![a, b])
}

#[tokio::test]
async fn events_raised_before_the_wait_are_kept_in_order() {
    let backend = Memory::with_virtual_clock();
    let (worker, client) = setup(&backend).await;
    let id = client.start(early_event, ()).await.unwrap();
    client.raise_event(&id, "note", "first").await.unwrap();
    client.raise_event(&id, "note", "second").await.unwrap();
    eventually("timer armed", async || backend.pending_timers() == 1).await;
    backend.advance(Duration::from_secs(60));
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<Vec<String>>().unwrap(), ["first", "second"]);
    worker.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ when_any / select

#[orchestrator]
async fn race(ctx: OrchestrationContext) -> Result<String, OrchestrationError> {
    let approval = ctx.wait_for_event::<bool>("approve");
    let deadline = ctx.timer(Duration::from_secs(3600));
    let first = match ctx.select(approval, deadline).await {
        Either::Left(Ok(ok)) => format!("approved={ok}"),
        Either::Left(Err(e)) => return Err(e.into()),
        Either::Right(_) => "timeout".to_string(),
    };
    let tasks = vec![
        ctx.timer(Duration::from_secs(50)),
        ctx.timer(Duration::from_secs(10)),
        ctx.timer(Duration::from_secs(30)),
    ];
    let (winner, _) = ctx.when_any(tasks).await;
    Ok(format!("{first}, fastest timer {winner}"))
}

#[tokio::test]
async fn select_and_when_any_cancel_the_losing_timers() {
    let backend = Memory::with_virtual_clock();
    let (worker, client) = setup(&backend).await;
    let id = client.start(race, ()).await.unwrap();
    eventually("deadline armed", async || backend.pending_timers() == 1).await;
    client.raise_event(&id, "approve", true).await.unwrap();
    // The losing deadline is cancelled; three new timers are armed.
    eventually("three timers", async || backend.pending_timers() == 3).await;
    backend.advance(Duration::from_secs(10));
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<String>().unwrap(), "approved=true, fastest timer 1");
    eventually("losers cancelled", async || backend.pending_timers() == 0).await;
    worker.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ continue_as_new

#[orchestrator]
async fn counter_loop(ctx: OrchestrationContext, n: u32) -> Result<u32, OrchestrationError> {
    let got: u32 = ctx.wait_for_event("add").await?;
    let n = n + got;
    if n < 10 {
        ctx.continue_as_new(n);
    }
    Ok(n)
}

#[tokio::test]
async fn continue_as_new_restarts_the_history_and_keeps_events() {
    let backend = Memory::new();
    let (worker, client) = setup(&backend).await;
    let id = client.start(counter_loop, 0).await.unwrap();
    for _ in 0..4 {
        client.raise_event(&id, "add", 3u32).await.unwrap();
    }
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<u32>().unwrap(), 12);
    let history = client.history(&id).await.unwrap();
    let starts = history.iter().filter(|e| matches!(e.kind, EventKind::ExecutionStarted { .. })).count();
    assert_eq!(starts, 1, "the history restarts with each continue_as_new");
    worker.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ custom status, now, uuid

#[orchestrator]
async fn status_and_time(ctx: OrchestrationContext) -> Result<(String, String), OrchestrationError> {
    let id1 = ctx.new_uuid();
    ctx.set_custom_status("waiting for go");
    let _: () = ctx.wait_for_event("go").await?;
    let id2 = ctx.new_uuid();
    Ok((id1.to_string(), id2.to_string()))
}

#[tokio::test]
async fn custom_status_and_deterministic_uuids() {
    let backend = Memory::new();
    let (worker, client) = setup(&backend).await;
    let id = client.start(status_and_time, ()).await.unwrap();
    eventually("custom status", async || {
        client.status(&id).await.unwrap().and_then(|s| s.custom_status::<String>().ok().flatten()).as_deref()
            == Some("waiting for go")
    })
    .await;
    client.raise_event(&id, "go", ()).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    let (a, b) = done.output::<(String, String)>().unwrap();
    assert_ne!(a, b);
    // Replaying the history through the same code gives the same UUIDs (the engine checks it).
    let history = client.history(&id).await.unwrap();
    let replayed = durable::engine::replay_orchestrator::<status_and_time>(&id, &history).expect("replays");
    let _ = replayed;
    worker.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ terminate, suspend, resume, purge, list

#[orchestrator]
async fn waits_forever(ctx: OrchestrationContext) -> Result<String, OrchestrationError> {
    let v: String = ctx.wait_for_event("never").await?;
    Ok(v)
}

#[tokio::test]
async fn terminate_suspend_resume_purge_and_list() {
    let backend = Memory::new();
    let (worker, client) = setup(&backend).await;
    let a = client.start(waits_forever, ()).await.unwrap();
    let b = client.start(waits_forever, ()).await.unwrap();
    eventually("both running", async || {
        client.list(InstanceQuery::new().with_status(RuntimeStatus::Running)).await.unwrap().instances.len() >= 2
    })
    .await;

    client.suspend(&b, "maintenance").await.unwrap();
    eventually("suspended", async || {
        client.status(&b).await.unwrap().unwrap().runtime_status == RuntimeStatus::Suspended
    })
    .await;
    client.raise_event(&b, "never", "held while suspended").await.unwrap();
    client.resume(&b, "done").await.unwrap();
    let done = client.wait_for_completion(&b, PATIENCE).await.unwrap();
    assert_eq!(done.output::<String>().unwrap(), "held while suspended");

    client.terminate(&a, "no longer needed").await.unwrap();
    let done = client.wait_for_completion(&a, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Terminated);
    assert!(done.output::<String>().is_err());

    let terminated = client.list(InstanceQuery::new().with_status(RuntimeStatus::Terminated)).await.unwrap();
    assert!(terminated.instances.iter().any(|s| s.instance_id == a.as_str()));
    assert!(client.purge(&a).await.unwrap());
    assert!(client.status(&a).await.unwrap().is_none());
    worker.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ panics and failures

#[orchestrator]
async fn panicking(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let v = ctx.call_activity(double, n).await?;
    if v > 0 {
        panic!("orchestrator blew up with {v}");
    }
    Ok(v)
}

#[orchestrator]
async fn uses_explode(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
    match ctx.call_activity(explode, n).await {
        Ok(v) => Ok(format!("ok {v}")),
        Err(e) => Ok(format!("caught: {e}")),
    }
}

#[tokio::test]
async fn panics_fail_the_task_or_instance_and_the_worker_goes_on() {
    let backend = Memory::new();
    let (worker, client) = setup(&backend).await;
    let p = client.start(panicking, 1).await.unwrap();
    let done = client.wait_for_completion(&p, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Failed);
    assert!(done.error.as_deref().unwrap_or("").contains("orchestrator blew up with 2"), "{:?}", done.error);

    let e = client.start(uses_explode, 4).await.unwrap();
    let done = client.wait_for_completion(&e, PATIENCE).await.unwrap();
    let out = done.output::<String>().unwrap();
    assert!(out.starts_with("caught:") && out.contains("activity blew up on 4"), "{out}");

    // The worker is still alive.
    let ok = client.start(child, 1).await.unwrap();
    assert_eq!(client.wait_for_completion(&ok, PATIENCE).await.unwrap().output::<i64>().unwrap(), 3);
    worker.shutdown().await.unwrap();
}

#[orchestrator]
async fn calls_unknown(ctx: OrchestrationContext) -> Result<i64, OrchestrationError> {
    Ok(ctx.call_activity_by_name::<_, i64>("no_such_activity", 1).await?)
}

#[tokio::test]
async fn unknown_activity_fails_the_instance_with_a_clear_message() {
    let backend = Memory::new();
    let (worker, client) = setup(&backend).await;
    let id = client.start(calls_unknown, ()).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Failed);
    let err = done.error.unwrap_or_default();
    assert!(err.contains("no_such_activity") && err.contains("double"), "{err}");
    worker.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ fan-out

#[orchestrator]
async fn fans_out(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let mut tasks = Vec::new();
    for i in 0..n {
        tasks.push(ctx.call_activity(double, i));
    }
    let results = ctx.when_all(tasks).await?;
    Ok(results.iter().sum())
}

#[tokio::test]
async fn fan_out_fan_in_over_many_activities() {
    let backend = Memory::new();
    let (worker, client) = setup(&backend).await;
    let id = client.start(fans_out, 500).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<i64>().unwrap(), (0..500).map(|i| i * 2).sum::<i64>());
    worker.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ bad input (§3)

#[tokio::test]
async fn bad_inputs_get_clear_errors_and_lose_nothing() {
    let backend = Memory::new();
    let (worker, client) = setup(&backend).await;

    // Input that does not deserialize into the input type: the instance fails, naming the type.
    let id = client.start_by_name("child", serde_json::json!("not a number")).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Failed);
    let err = done.error.unwrap_or_default();
    assert!(err.contains("child") && err.contains("i64"), "{err}");

    // Unknown orchestrator name.
    let id = client.start_by_name("no_such_orchestrator", serde_json::json!(1)).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Failed);
    assert!(done.error.unwrap_or_default().contains("no_such_orchestrator"));

    // Instance ids: empty, too long.
    let err = client.start_with_id(child, "", 1).await.unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
    let err = client.start_with_id(child, "x".repeat(257), 1).await.unwrap_err().to_string();
    assert!(err.contains("256"), "{err}");

    // A payload over the limit.
    let small = Client::new(backend.clone()).with_max_payload_bytes(64);
    let err = small.start(fans_out, 1).await.map(|_| ()).and(small.raise_event("x", "e", "y".repeat(100)).await);
    assert!(err.unwrap_err().to_string().contains("limit"));

    // Starting an id that is already running.
    let id = client.start_with_id(waits_forever, "dup", ()).await.unwrap();
    let err = client.start_with_id(waits_forever, "dup", ()).await.unwrap_err();
    assert!(matches!(err, durable::Error::InstanceAlreadyExists(_)), "{err}");
    // … and the first one is untouched.
    client.raise_event(&id, "never", "still here").await.unwrap();
    assert_eq!(client.wait_for_completion(&id, PATIENCE).await.unwrap().output::<String>().unwrap(), "still here");
    worker.shutdown().await.unwrap();
}
