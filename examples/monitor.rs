//! Monitor: poll a condition every 30 minutes until it holds or 6 hours have passed; each
//! round restarts the orchestration with `continue_as_new`, so its history stays short.
//!
//! `cargo run --example monitor` on the embedded backend, `-- --redis URL` on Redis. (virtual clock: six hours take no time).

#[path = "common/backend.rs"]
mod common;

use durable::prelude::*;
use std::time::SystemTime;

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Watch {
    job: String,
    checks: u32,
    expires_at: SystemTime,
}

#[activity]
async fn job_done(job: String, check: u32) -> Result<bool, ActivityError> {
    // Stand-in for a status call: the job finishes at the fifth check.
    let _ = job;
    Ok(check >= 5)
}

#[activity]
async fn notify(job: String) -> Result<String, ActivityError> {
    Ok(format!("{job} is done"))
}

#[orchestrator]
async fn monitor(ctx: OrchestrationContext, watch: Option<Watch>) -> Result<String, OrchestrationError> {
    let mut watch = match watch {
        Some(w) => w,
        None => Watch { job: "nightly-build".into(), checks: 0, expires_at: ctx.now() + Duration::from_secs(6 * 3600) },
    };
    watch.checks += 1;
    if ctx.call_activity(job_done, (watch.job.clone(), watch.checks)).await? {
        return Ok(ctx.call_activity(notify, watch.job).await?);
    }
    if ctx.now() >= watch.expires_at {
        return Ok(format!("{} still running after {} checks; giving up", watch.job, watch.checks));
    }
    ctx.set_custom_status(format!("check {} negative", watch.checks));
    ctx.timer(Duration::from_secs(30 * 60)).await?;
    ctx.continue_as_new(Some(watch));
    Ok(String::new())
}

#[tokio::main]
async fn main() -> Result<(), durable::Error> {
    let backend = common::ExampleBackend::from_args(true).await?;
    let worker =
        Worker::builder_arc(backend.arc()).orchestrator(monitor).activity(job_done).activity(notify).start().await?;
    let client = Client::from_arc(backend.arc());
    let id = client.start(monitor, None).await?;
    // Each time the monitor sleeps on its 30-minute timer, move the virtual clock forward.
    let done = loop {
        if backend.pending_timers().await? > 0 {
            backend.advance(Duration::from_secs(30 * 60));
        }
        match client.wait_for_completion(&id, Duration::from_millis(20)).await {
            Ok(done) => break done,
            Err(durable::Error::Timeout { .. }) => continue,
            Err(e) => return Err(e),
        }
    };
    println!("output: {}", done.output::<String>()?);
    print!("{}", durable::HistoryTable(&client.history(&id).await?));
    worker.shutdown().await
}
