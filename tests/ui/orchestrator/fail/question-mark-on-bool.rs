use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let ok = x > 2;
    ok?;
    Ok(ctx.call_activity(step, x).await?)
}

fn main() {}
