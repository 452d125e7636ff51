use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, x: u32) -> Result<u64, OrchestrationError> {
    let started = std::time::SystemTime::now();
    let _ = ctx.call_activity(step, x).await?;
    Ok(started.elapsed().map(|d| d.as_secs()).unwrap_or(0))
}

fn main() {}
