use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let fut = async { ctx.call_activity(step, x).await };
    Ok(fut.await?)
}

fn main() {}
