//! Fan-out/fan-in: schedule one activity per work item, all in parallel, then aggregate.
//!
//! `cargo run --example fan_out_fan_in` on the embedded backend, `-- --redis URL` on Redis.

#[path = "common/backend.rs"]
mod common;

use durable::prelude::*;

#[activity]
async fn list_files(dir: String) -> Result<Vec<String>, ActivityError> {
    Ok((1..=20).map(|i| format!("{dir}/file-{i:02}.txt")).collect())
}

#[activity]
async fn file_size(path: String) -> Result<u64, ActivityError> {
    // Stand-in for real work: the size is derived from the name.
    Ok(path.len() as u64 * 100)
}

#[orchestrator]
async fn backup_size(ctx: OrchestrationContext, dir: String) -> Result<u64, OrchestrationError> {
    let files = ctx.call_activity(list_files, dir).await?;
    let mut tasks = Vec::new();
    for f in files {
        tasks.push(ctx.call_activity(file_size, f));
    }
    let sizes = ctx.when_all(tasks).await?;
    ctx.set_custom_status(format!("{} files", sizes.len()));
    Ok(sizes.iter().sum())
}

#[tokio::main]
async fn main() -> Result<(), durable::Error> {
    let backend = common::ExampleBackend::from_args(false).await?;
    let worker = Worker::builder_arc(backend.arc())
        .orchestrator(backup_size)
        .activity(list_files)
        .activity(file_size)
        .start()
        .await?;
    let client = Client::from_arc(backend.arc());
    let id = client.start(backup_size, "/data".to_string()).await?;
    let done = client.wait_for_completion(&id, Duration::from_secs(10)).await?;
    println!("total bytes: {} ({:?})", done.output::<u64>()?, done.custom_status);
    print!("{}", durable::HistoryTable(&client.history(&id).await?));
    worker.shutdown().await
}
