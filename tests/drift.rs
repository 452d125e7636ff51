//! Drift detection (`WorkerBuilder::drift_check`): a worker replays the history of committed
//! steps through the registered code and reports what the macro could not see — here a global
//! counter that makes an orchestrator do something else each time it runs.

use durable::backend::Memory;
use durable::prelude::*;
use durable_test_support::wait::{PATIENCE, eventually};
use std::sync::atomic::{AtomicU64, Ordering};

#[activity]
async fn add_one(n: u64) -> Result<u64, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn steady(ctx: OrchestrationContext, n: u64) -> Result<u64, OrchestrationError> {
    let a = ctx.call_activity(add_one, n).await?;
    Ok(ctx.call_activity(add_one, a).await?)
}

static RUNS: AtomicU64 = AtomicU64::new(0);

/// Not deterministic, in a way no compile-time check sees: each run reads a global counter.
#[orchestrator]
async fn drifting(ctx: OrchestrationContext, n: u64) -> Result<u64, OrchestrationError> {
    let salt = RUNS.fetch_add(1, Ordering::SeqCst);
    let a = ctx.call_activity(add_one, n + salt).await?;
    Ok(ctx.call_activity(add_one, a).await?)
}

fn counter(name: &str) -> u64 {
    let mut text = String::new();
    durable::metrics::render(&mut text, None);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in the metrics:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_checking_for_drift_reports_code_that_does_not_replay() {
    let backend = Memory::new();
    let worker = Worker::builder(backend.clone())
        .orchestrator(steady)
        .orchestrator(drifting)
        .activity(add_one)
        .drift_check(1)
        .start()
        .await
        .unwrap();
    let client = Client::new(backend);

    // Deterministic code replays: checked, nothing reported.
    let id = client.start(steady, 1).await.unwrap();
    assert_eq!(client.wait_for_completion(&id, PATIENCE).await.unwrap().output::<u64>().unwrap(), 3);
    eventually("the steady instance's steps to be checked", async || counter("durable_drift_checks_total") >= 3).await;
    assert_eq!(counter("durable_drift_detected_total"), 0);

    // The drifting one completes (nothing stops it), and the check reports it.
    let id = client.start(drifting, 1).await.unwrap();
    client.wait_for_completion(&id, PATIENCE).await.unwrap();
    eventually("the drift to be reported", async || counter("durable_drift_detected_total") >= 1).await;
    worker.shutdown().await.unwrap();
}
