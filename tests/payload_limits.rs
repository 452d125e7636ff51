//! Every payload is bounded on the worker too, not only at the client: activity outputs,
//! orchestration outputs, custom statuses, events sent by orchestrations and entity states over
//! the worker's limit (`WorkerBuilder::max_payload_bytes`, default 1 MiB) fail the task, the
//! instance or the operation with a message naming what and the limit. On both backends.

use durable::RuntimeStatus;
use durable::prelude::*;
use durable_test_support::backends::TestBackend;
use durable_test_support::wait::{PATIENCE, eventually};

const MIB: usize = 1024 * 1024;

/// A string of `n` bytes.
#[activity]
async fn big_result(n: usize) -> Result<String, ActivityError> {
    Ok("x".repeat(n))
}

/// Calls [`big_result`]`(n)`: the length it got, or the task's error.
#[orchestrator]
async fn calls_big_result(ctx: OrchestrationContext, n: usize) -> Result<String, OrchestrationError> {
    match ctx.call_activity(big_result, n).await {
        Ok(s) => Ok(format!("got {} bytes", s.len())),
        Err(e) => Ok(format!("TaskError {:?}: {e}", e.kind)),
    }
}

/// Returns a string of `n` bytes.
#[orchestrator]
async fn big_output(_ctx: OrchestrationContext, n: usize) -> Result<String, OrchestrationError> {
    Ok("x".repeat(n))
}

/// Sets a custom status of `n` bytes, then waits for an event.
#[orchestrator]
async fn big_status(ctx: OrchestrationContext, n: usize) -> Result<(), OrchestrationError> {
    ctx.set_custom_status("x".repeat(n));
    ctx.wait_for_event::<()>("never").await?;
    Ok(())
}

/// Raises event `go` with `n` bytes of data on instance `target`.
#[orchestrator]
async fn sends_big_event(ctx: OrchestrationContext, target: String, n: usize) -> Result<(), OrchestrationError> {
    ctx.send_event(&target, "go", "x".repeat(n));
    Ok(())
}

/// Waits for event `go`; returns the length of its data.
#[orchestrator]
async fn waits_for_go(ctx: OrchestrationContext) -> Result<usize, OrchestrationError> {
    Ok(ctx.wait_for_event::<String>("go").await?.len())
}

/// An entity holding a string.
#[derive(Default, Serialize, Deserialize, Debug, PartialEq)]
struct Blob {
    data: String,
}

#[entity(name = "blob")]
impl Blob {
    /// Replace the data with `n` bytes.
    fn fill(&mut self, n: usize) {
        self.data = "x".repeat(n);
    }
    fn len(&self) -> usize {
        self.data.len()
    }
}

/// Fills blob `key` with `n` bytes: the result of the call as text.
#[orchestrator]
async fn fills_blob(ctx: OrchestrationContext, key: String, n: usize) -> Result<String, OrchestrationError> {
    match ctx.entity::<Blob>(key).fill(n).await {
        Ok(()) => Ok("filled".to_string()),
        Err(e) => Ok(format!("TaskError {:?}: {e}", e.kind)),
    }
}

async fn setup<B: TestBackend>(backend: &B, limit: Option<usize>) -> (durable::WorkerHandle, Client) {
    let mut builder = Worker::builder(backend.clone())
        .orchestrator(calls_big_result)
        .orchestrator(big_output)
        .orchestrator(big_status)
        .orchestrator(sends_big_event)
        .orchestrator(waits_for_go)
        .orchestrator(fills_blob)
        .activity(big_result)
        .entity::<Blob>();
    if let Some(n) = limit {
        builder = builder.max_payload_bytes(n);
    }
    (builder.start().await.unwrap(), Client::new(backend.clone()))
}

/// A status in a line: its runtime status and the start of its error and output.
fn brief(s: &durable::InstanceStatus) -> String {
    let cut = |t: &Option<String>| t.as_deref().map(|t| t.chars().take(200).collect::<String>());
    format!("{} error={:?} output={:?}", s.runtime_status, cut(&s.error), cut(&s.output))
}

/// What the worker says about a payload over the limit.
fn over(what: &str, size: usize, limit: usize) -> String {
    format!("{what} is {size} bytes, over the limit of {limit} bytes")
}

async fn an_activity_result_over_the_limit_fails_its_task<B: TestBackend>(backend: B) {
    let (worker, client) = setup(&backend, None).await;
    let id = client.start(calls_big_result, 2 * MIB).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    let out: String = done.output().unwrap();
    // The JSON of the string: its bytes and two quotes.
    let expected = over("the output of activity `big_result`", 2 * MIB + 2, MIB);
    assert!(out.starts_with("TaskError ActivityFailed: "), "{out}");
    assert!(out.contains(&expected), "{out}");
    // Under the limit it goes through.
    let id = client.start(calls_big_result, MIB / 2).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<String>().unwrap(), format!("got {} bytes", MIB / 2));
    worker.shutdown().await.unwrap();
}

async fn an_orchestration_output_over_the_limit_fails_the_instance<B: TestBackend>(backend: B) {
    let (worker, client) = setup(&backend, None).await;
    let id = client.start(big_output, 2 * MIB).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Failed, "{}", brief(&done));
    let error = done.error.clone().unwrap_or_default();
    assert!(error.contains(&over("the output of orchestrator `big_output`", 2 * MIB + 2, MIB)), "{error}");
    assert_eq!(done.output, None);
    // Its history replays: the failure is recorded like any other.
    let history = client.history(&id).await.unwrap();
    durable::engine::replay_orchestrator::<big_output>(&id, &history).unwrap();
    worker.shutdown().await.unwrap();
}

async fn the_worker_limit_is_configurable<B: TestBackend>(backend: B) {
    let (worker, client) = setup(&backend, Some(1000)).await;
    let id = client.start(big_output, 2000).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Failed, "{}", brief(&done));
    let error = done.error.unwrap_or_default();
    assert!(error.contains(&over("the output of orchestrator `big_output`", 2002, 1000)), "{error}");
    let id = client.start(calls_big_result, 2000).await.unwrap();
    let out: String = client.wait_for_completion(&id, PATIENCE).await.unwrap().output().unwrap();
    assert!(out.contains(&over("the output of activity `big_result`", 2002, 1000)), "{out}");
    let id = client.start(big_output, 900).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{}", brief(&done));
    worker.shutdown().await.unwrap();
}

async fn a_custom_status_over_the_limit_fails_the_instance<B: TestBackend>(backend: B) {
    let (worker, client) = setup(&backend, None).await;
    let id = client.start(big_status, 2 * MIB).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Failed, "{}", brief(&done));
    let error = done.error.clone().unwrap_or_default();
    assert!(error.contains(&over("the custom status of orchestrator `big_status`", 2 * MIB + 2, MIB)), "{error}");
    assert_eq!(done.custom_status, None);
    worker.shutdown().await.unwrap();
}

async fn an_event_over_the_limit_sent_by_an_orchestration_fails_it<B: TestBackend>(backend: B) {
    let (worker, client) = setup(&backend, None).await;
    let target = client.start(waits_for_go, ()).await.unwrap();
    let id = client.start(sends_big_event, (target.to_string(), 2 * MIB)).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Failed, "{}", brief(&done));
    let error = done.error.clone().unwrap_or_default();
    let what = format!("the data of event `go` sent to instance {:?}", target.as_str());
    assert!(error.contains(&over(&what, 2 * MIB + 2, MIB)), "{error}");
    // Nothing was sent.
    let s = client.status(&target).await.unwrap().unwrap();
    assert_eq!(s.runtime_status, RuntimeStatus::Running, "{}", brief(&s));
    worker.shutdown().await.unwrap();
}

async fn an_entity_state_over_the_limit_fails_the_operation_and_keeps_the_old_state<B: TestBackend>(backend: B) {
    let (worker, client) = setup(&backend, None).await;
    let expected = over("the state of entity `blob/k`", 2 * MIB + 11, MIB);
    // Called from an orchestration: the call fails with the message.
    let id = client.start(fills_blob, ("k".to_string(), 10)).await.unwrap();
    let out: String = client.wait_for_completion(&id, PATIENCE).await.unwrap().output().unwrap();
    assert_eq!(out, "filled");
    let id = client.start(fills_blob, ("k".to_string(), 2 * MIB)).await.unwrap();
    let out: String = client.wait_for_completion(&id, PATIENCE).await.unwrap().output().unwrap();
    assert!(out.starts_with("TaskError EntityFailed: "), "{out}");
    assert!(out.contains(&expected), "{out}");
    assert_eq!(client.entity_state::<Blob>("k").await.unwrap().unwrap().data.len(), 10);
    // Signalled by a client: the operation fails, the entity records why, the state stays.
    client.signal_entity::<Blob>("k").fill(2 * MIB).await.unwrap();
    client.signal_entity::<Blob>("k").fill(20).await.unwrap();
    eventually("the second signal applied", async || {
        client.entity_state::<Blob>("k").await.unwrap().is_some_and(|b| b.data.len() == 20)
    })
    .await;
    let e = client.entity("blob", "k").await.unwrap().unwrap();
    assert!(e.last_error.as_deref().unwrap_or_default().contains(&expected), "{e:?}");
    worker.shutdown().await.unwrap();
}

durable_test_support::on_both_backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    an_activity_result_over_the_limit_fails_its_task,
    an_orchestration_output_over_the_limit_fails_the_instance,
    the_worker_limit_is_configurable,
    a_custom_status_over_the_limit_fails_the_instance,
    an_event_over_the_limit_sent_by_an_orchestration_fails_it,
    an_entity_state_over_the_limit_fails_the_operation_and_keeps_the_old_state,
}
