//! Human interaction: wait for an approval event, or escalate after 72 hours.
//!
//! Runs on the embedded backend with a virtual clock: one request is approved, the other
//! waits out the 72-hour deadline, which the clock skips in an instant.
//!
//! `cargo run --example human_interaction` on the embedded backend, `-- --redis URL` on Redis.

#[path = "common/backend.rs"]
mod common;

use durable::prelude::*;

#[activity]
async fn request_approval(request: String) -> Result<(), ActivityError> {
    println!("  (email sent: please approve {request:?})");
    Ok(())
}

#[activity]
async fn escalate(request: String) -> Result<String, ActivityError> {
    Ok(format!("{request} escalated to the manager"))
}

#[orchestrator]
async fn approval(ctx: OrchestrationContext, request: String) -> Result<String, OrchestrationError> {
    ctx.call_activity(request_approval, request.clone()).await?;
    let deadline = ctx.timer(Duration::from_secs(72 * 3600));
    let answer = ctx.wait_for_event::<bool>("approval");
    match ctx.select(answer, deadline).await {
        Either::Left(Ok(true)) => Ok(format!("{request} approved")),
        Either::Left(Ok(false)) => Ok(format!("{request} rejected")),
        Either::Left(Err(e)) => Err(e.into()),
        Either::Right(_) => Ok(ctx.call_activity(escalate, request).await?),
    }
}

#[tokio::main]
async fn main() -> Result<(), durable::Error> {
    let backend = common::ExampleBackend::from_args(true).await?;
    let worker = Worker::builder_arc(backend.arc())
        .orchestrator(approval)
        .activity(request_approval)
        .activity(escalate)
        .start()
        .await?;
    let client = Client::from_arc(backend.arc());

    let approved = client.start(approval, "expense #1".to_string()).await?;
    let ignored = client.start(approval, "expense #2".to_string()).await?;
    client.raise_event(&approved, "approval", true).await?;
    let done = client.wait_for_completion(&approved, Duration::from_secs(10)).await?;
    println!("{}", done.output::<String>()?);

    // Nobody answers the second request: once its 72-hour deadline is armed (the first
    // request's was cancelled when it was approved), 72 hours pass on the virtual clock.
    let armed_by = std::time::Instant::now() + Duration::from_secs(10);
    while backend.pending_timers().await? == 0 {
        if std::time::Instant::now() > armed_by {
            return Err(durable::Error::Backend("the second request never armed its deadline".into()));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    backend.advance(Duration::from_secs(72 * 3600));
    let done = client.wait_for_completion(&ignored, Duration::from_secs(10)).await?;
    println!("{}", done.output::<String>()?);
    print!("{}", durable::HistoryTable(&client.history(&ignored).await?));
    worker.shutdown().await
}
