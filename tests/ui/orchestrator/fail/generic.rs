use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o<T: Serialize>(ctx: OrchestrationContext, x: T) -> Result<u32, OrchestrationError> {
    let _ = x;
    Ok(ctx.call_activity(step, 1).await?)
}

fn main() {}
