//! Function chaining: F1 returns 42, F2 adds 1, F3 adds 2; the output is 45.
//!
//! `cargo run --example chaining` on the embedded backend, `-- --redis URL` on Redis.

#[path = "common/backend.rs"]
mod common;

use durable::prelude::*;

#[activity]
async fn f1() -> Result<i64, ActivityError> {
    Ok(42)
}

#[activity]
async fn f2(x: i64) -> Result<i64, ActivityError> {
    Ok(x + 1)
}

#[activity]
async fn f3(x: i64) -> Result<i64, ActivityError> {
    Ok(x + 2)
}

#[orchestrator]
async fn chaining(ctx: OrchestrationContext) -> Result<i64, OrchestrationError> {
    let x = ctx.call_activity(f1, ()).await?;
    let y = ctx.call_activity(f2, x).await?;
    let z = ctx.call_activity(f3, y).await?;
    Ok(z)
}

#[tokio::main]
async fn main() -> Result<(), durable::Error> {
    let backend = common::ExampleBackend::from_args(false).await?;
    let worker = Worker::builder_arc(backend.arc())
        .orchestrator(chaining)
        .activity(f1)
        .activity(f2)
        .activity(f3)
        .start()
        .await?;
    let client = Client::from_arc(backend.arc());
    let id = client.start(chaining, ()).await?;
    let done = client.wait_for_completion(&id, Duration::from_secs(10)).await?;
    println!("output: {}", done.output::<i64>()?);
    print!("{}", durable::HistoryTable(&client.history(&id).await?));
    worker.shutdown().await
}
