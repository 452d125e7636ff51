use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, _x: u32) -> Result<u32, OrchestrationError> {
    let n: u32 = rand::random();
    Ok(ctx.call_activity(step, n).await?)
}

fn main() {}
