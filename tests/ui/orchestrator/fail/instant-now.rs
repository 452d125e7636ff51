use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

use std::time::Instant;

#[orchestrator]
async fn o(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let t = Instant::now();
    let _ = t;
    Ok(ctx.call_activity(step, x).await?)
}

fn main() {}
