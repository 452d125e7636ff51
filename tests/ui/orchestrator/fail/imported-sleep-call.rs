use durable::prelude::*;
use std::thread::sleep;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    sleep(Duration::from_secs(1));
    Ok(ctx.call_activity(step, x).await?)
}

fn main() {}
