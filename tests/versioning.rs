//! Safe deploys: an instance suspended by one build of an orchestrator resumes with another
//! build when its suspension point and the locals live there are unchanged; versions run side
//! by side; incompatible changes are refused with a reason and resume once matching code runs;
//! the history replayed is the fallback.
//!
//! Two builds of one orchestrator are two `#[orchestrator(name = "…")]` functions with the
//! same name in different modules; a "deploy" is a worker with the old one shut down and a
//! worker with the new one started on the same backend.

use durable::backend::{Backend, Memory};
use durable::prelude::*;
use durable::{ExportedInstance, InstanceStatus, RuntimeStatus};
use durable_test_support::wait::{eventually_some, parked_at};
use std::sync::Arc;

const WAIT: Duration = durable_test_support::wait::PATIENCE;

/// Wait until instance `id` is blocked; its status.
async fn blocked(client: &Client, id: &str) -> InstanceStatus {
    eventually_some(&format!("{id} blocked"), async || client.status(id).await.unwrap().filter(|s| s.blocked)).await
}

#[activity]
async fn double(n: i64) -> Result<i64, ActivityError> {
    Ok(n * 2)
}

// ------------------------------------------------------------------ builds of `parked`

mod v_old {
    use super::*;
    #[orchestrator(name = "parked")]
    pub async fn parked(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
        let code: String = ctx.wait_for_event("go").await?;
        Ok(format!("old {code} {n}"))
    }
}

/// Only the string after the last await changed.
mod v_literal {
    use super::*;
    #[orchestrator(name = "parked")]
    pub async fn parked(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
        let code: String = ctx.wait_for_event("go").await?;
        Ok(format!("new {code} {n}"))
    }
}

/// An await added before the suspension point; the locals live there are the same.
mod v_await_added {
    use super::*;
    #[orchestrator(name = "parked")]
    pub async fn parked(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
        ctx.timer(Duration::from_millis(1)).await?;
        let code: String = ctx.wait_for_event("go").await?;
        Ok(format!("added {code} {n}"))
    }
}

/// An await added before, whose result is live at the suspension point.
mod v_new_local {
    use super::*;
    #[orchestrator(name = "parked")]
    pub async fn parked(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
        let extra = ctx.call_activity(double, n).await?;
        let code: String = ctx.wait_for_event("go").await?;
        Ok(format!("extra {code} {n} {extra}"))
    }
}

/// The live local `n` changed type.
mod v_type_changed {
    use super::*;
    #[orchestrator(name = "parked")]
    pub async fn parked(ctx: OrchestrationContext, n: String) -> Result<String, OrchestrationError> {
        let code: String = ctx.wait_for_event("go").await?;
        Ok(format!("typed {code} {n}"))
    }
}

// ------------------------------------------------------------------ builds of `summed`

mod s_old {
    use super::*;
    #[orchestrator(name = "summed")]
    pub async fn summed(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
        let a = ctx.call_activity(double, n).await?;
        let b: i64 = ctx.wait_for_event("go").await?;
        Ok(a + b)
    }
}

/// Code before the suspension point changed (a log line, a dead local, another spelling of
/// the same call); the suspension point and its live locals did not.
mod s_before_changed {
    use super::*;
    #[orchestrator(name = "summed")]
    pub async fn summed(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
        let label = format!("summing {n}");
        ctx.set_custom_status(label);
        let a = ctx.call_activity(double, n).await?;
        let b: i64 = ctx.wait_for_event("go").await?;
        Ok(a + b)
    }
}

/// The live local `a` renamed to `first`: the snapshot cannot be read, but the history replays
/// through this code (same tasks in the same order), so the replayed state is used.
mod s_renamed {
    use super::*;
    #[orchestrator(name = "summed")]
    pub async fn summed(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
        let first = ctx.call_activity(double, n).await?;
        let b: i64 = ctx.wait_for_event("go").await?;
        Ok(first + b + 1000)
    }
}

// ------------------------------------------------------------------ side by side

#[orchestrator(name = "greeter", version = 1)]
async fn greeter_v1(ctx: OrchestrationContext, name: String) -> Result<String, OrchestrationError> {
    let _: () = ctx.wait_for_event("go").await?;
    Ok(format!("v1 hello {name}"))
}

#[orchestrator(name = "greeter", version = 2)]
async fn greeter(ctx: OrchestrationContext, name: String) -> Result<String, OrchestrationError> {
    let punctuation: String = ctx.wait_for_event("go").await?;
    Ok(format!("v2 hello {name}{punctuation}"))
}

#[orchestrator(name = "greeter")]
async fn greeter_again(ctx: OrchestrationContext, name: String) -> Result<String, OrchestrationError> {
    Ok(format!("{name}{:?}", ctx.instance_id()))
}

// ------------------------------------------------------------------ helpers

/// Deploy: a worker running exactly `register` on `backend` (the previous one shut down).
fn worker(backend: &Arc<dyn Backend>) -> durable::WorkerBuilder {
    Worker::builder_arc(backend.clone()).activity(double).blocked_retry(Duration::from_millis(50))
}

fn memory() -> Arc<dyn Backend> {
    Arc::new(Memory::new())
}

async fn output(client: &Client, id: &str) -> String {
    let done = client.wait_for_completion(id, WAIT).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{done:?}");
    done.output::<serde_json::Value>().unwrap().to_string()
}

/// Start `n` instances of `parked` on the old build and leave them at `wait_for_event("go")`.
async fn park_old(backend: &Arc<dyn Backend>, client: &Client, n: i64) -> Vec<String> {
    let old = worker(backend).orchestrator(v_old::parked).start().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = client.start(v_old::parked, i).await.unwrap().into_string();
        parked_at(client, &id, "wait_for_event").await;
        ids.push(id);
    }
    old.shutdown().await.unwrap();
    ids
}

// ------------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_literal_after_the_last_await_resumes_with_the_new_code() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let ids = park_old(&backend, &client, 5).await;
    let new = worker(&backend).orchestrator(v_literal::parked).start().await.unwrap();
    for id in &ids {
        client.raise_event(id, "go", "now").await.unwrap();
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(output(&client, id).await, format!("\"new now {i}\""));
    }
    new.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_changed_before_the_suspension_point_resumes() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let old = worker(&backend).orchestrator(s_old::summed).start().await.unwrap();
    let id = client.start(s_old::summed, 5).await.unwrap().into_string();
    parked_at(&client, &id, "wait_for_event").await;
    old.shutdown().await.unwrap();
    let new = worker(&backend).orchestrator(s_before_changed::summed).start().await.unwrap();
    client.raise_event(&id, "go", 1).await.unwrap();
    assert_eq!(output(&client, &id).await, "11");
    new.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_await_added_before_resumes_when_the_live_locals_match() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let ids = park_old(&backend, &client, 2).await;
    let new = worker(&backend).orchestrator(v_await_added::parked).start().await.unwrap();
    client.raise_event(&ids[1], "go", "x").await.unwrap();
    assert_eq!(output(&client, &ids[1]).await, "\"added x 1\"");
    new.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_await_added_before_with_a_new_live_local_is_blocked_until_matching_code_runs() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let ids = park_old(&backend, &client, 1).await;
    let new = worker(&backend).orchestrator(v_new_local::parked).start().await.unwrap();
    client.raise_event(&ids[0], "go", "x").await.unwrap();
    let s = blocked(&client, &ids[0]).await;
    let reason = s.reason.clone().unwrap();
    println!("blocked: {reason}");
    assert_eq!(s.runtime_status, RuntimeStatus::Running);
    assert!(reason.contains("orchestrator `parked`"), "{reason}");
    assert!(reason.contains("the local `extra` is live at `ctx.wait_for_event(\"go\")`"), "{reason}");
    assert!(reason.contains("(line "), "{reason}");
    assert!(reason.contains("replaying its history through version 1"), "{reason}");
    assert!(reason.contains("version = 1"), "the fix is named: {reason}");
    // The event waits with the instance; the old code, deployed again, finishes it.
    new.shutdown().await.unwrap();
    let old = worker(&backend).orchestrator(v_old::parked).start().await.unwrap();
    assert_eq!(output(&client, &ids[0]).await, "\"old x 0\"");
    let done = client.status(&ids[0]).await.unwrap().unwrap();
    assert!(!done.blocked && done.reason.is_none(), "{done:?}");
    old.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_local_whose_type_changed_is_blocked_and_named() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let ids = park_old(&backend, &client, 1).await;
    let new = worker(&backend).orchestrator(v_type_changed::parked).start().await.unwrap();
    client.raise_event(&ids[0], "go", "x").await.unwrap();
    let reason = blocked(&client, &ids[0]).await.reason.unwrap();
    println!("blocked: {reason}");
    assert!(reason.contains("the local `n`"), "{reason}");
    assert!(reason.contains("saved as `i64`") && reason.contains("String"), "{reason}");
    new.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_replayed_resumes_when_the_snapshot_cannot() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let old = worker(&backend).orchestrator(s_old::summed).start().await.unwrap();
    let id = client.start(s_old::summed, 5).await.unwrap().into_string();
    parked_at(&client, &id, "wait_for_event").await;
    old.shutdown().await.unwrap();
    // Checked before deploying: the snapshot does not fit, the replay does.
    let exported = client.export_in_flight(Some("summed")).await.unwrap();
    assert_eq!(exported.len(), 1);
    let line = serde_json::to_string(&exported[0]).unwrap();
    let check = durable::testing::check_resume::<s_renamed::summed>(&line).unwrap();
    assert!(check.by_replay, "{check:?}");
    let new = worker(&backend).orchestrator(s_renamed::summed).start().await.unwrap();
    client.raise_event(&id, "go", 1).await.unwrap();
    assert_eq!(output(&client, &id).await, "1011");
    new.shutdown().await.unwrap();
}

async fn versions_run_side_by_side(backend: Arc<dyn Backend>) {
    let client = Client::from_arc(backend.clone());
    // Before version 2 exists.
    let w1 = worker(&backend).orchestrator(greeter_v1).start().await.unwrap();
    let old: Vec<String> =
        [client.start(greeter_v1, "ann".into()).await.unwrap(), client.start(greeter_v1, "bob".into()).await.unwrap()]
            .into_iter()
            .map(|i| i.into_string())
            .collect();
    for id in &old {
        parked_at(&client, id, "wait_for_event").await;
    }
    w1.shutdown().await.unwrap();
    // Both versions on one worker.
    let w = worker(&backend).orchestrator(greeter_v1).orchestrator(greeter).start().await.unwrap();
    let new = client.start(greeter, "cid".into()).await.unwrap().into_string();
    let by_name = client.start_by_name("greeter", serde_json::json!("dee")).await.unwrap().into_string();
    for id in [&new, &by_name] {
        parked_at(&client, id, "wait_for_event").await;
        assert_eq!(client.status(id).await.unwrap().unwrap().version, 2);
    }
    let versions = client.versions().await.unwrap();
    let v: Vec<(String, u32, u64)> = versions.iter().map(|v| (v.name.clone(), v.version, v.in_flight)).collect();
    assert_eq!(v, vec![("greeter".into(), 1, 2), ("greeter".into(), 2, 2)]);
    assert!(versions[0].suspended_at.keys().all(|k| k.contains("ctx.wait_for_event(\"go\")")), "{versions:?}");
    for id in &old {
        client.raise_event(id, "go", ()).await.unwrap();
    }
    for id in [&new, &by_name] {
        client.raise_event(id, "go", "!").await.unwrap();
    }
    assert_eq!(output(&client, &old[0]).await, "\"v1 hello ann\"");
    assert_eq!(output(&client, &old[1]).await, "\"v1 hello bob\"");
    assert_eq!(output(&client, &new).await, "\"v2 hello cid!\"");
    assert_eq!(output(&client, &by_name).await, "\"v2 hello dee!\"");
    w.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_run_side_by_side_on_memory() {
    versions_run_side_by_side(memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_run_side_by_side_on_redis() {
    let server = durable_test_support::redis_server::RedisServer::start();
    let backend = durable::backend::Redis::connect(&server.url()).await.unwrap();
    versions_run_side_by_side(Arc::new(backend)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_name_and_version_registered_twice_is_refused_at_start() {
    let err = worker(&memory()).orchestrator(greeter_v1).orchestrator(greeter_again).start().await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("orchestrator `greeter` version 1 registered twice"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_instances_are_checked_against_new_code_before_deploying() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    park_old(&backend, &client, 3).await;
    let lines: Vec<String> = client
        .export_in_flight(None)
        .await
        .unwrap()
        .iter()
        .map(|e: &ExportedInstance| serde_json::to_string(e).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for line in &lines {
        let ok = durable::testing::check_resume::<v_literal::parked>(line).unwrap();
        assert_eq!((ok.version, ok.by_replay), (1, false));
        let refused = durable::testing::check_resume::<v_new_local::parked>(line).unwrap_err();
        assert!(refused.contains("the local `extra`"), "{refused}");
    }
}

#[orchestrator(name = "looper", version = 1)]
async fn looper_v1(ctx: OrchestrationContext, n: u32) -> Result<String, OrchestrationError> {
    let _: () = ctx.wait_for_event("tick").await?;
    ctx.continue_as_new(n + 1);
    Ok(String::new())
}

#[orchestrator(name = "looper", version = 2)]
async fn looper(ctx: OrchestrationContext, n: u32) -> Result<String, OrchestrationError> {
    let _ = ctx;
    Ok(format!("v2 took over at {n}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eternal_orchestration_moves_to_the_new_version_at_continue_as_new() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let old = worker(&backend).orchestrator(looper_v1).start().await.unwrap();
    let id = client.start(looper_v1, 0).await.unwrap().into_string();
    parked_at(&client, &id, "wait_for_event").await;
    old.shutdown().await.unwrap();
    let both = worker(&backend).orchestrator(looper_v1).orchestrator(looper).start().await.unwrap();
    client.raise_event(&id, "tick", ()).await.unwrap();
    assert_eq!(output(&client, &id).await, "\"v2 took over at 1\"");
    assert_eq!(client.status(&id).await.unwrap().unwrap().version, 2);
    both.shutdown().await.unwrap();
}
