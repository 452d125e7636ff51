use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, xs: Vec<u32>) -> Result<u32, OrchestrationError> {
    let first = xs.first()?;
    Ok(ctx.call_activity(step, *first).await?)
}

fn main() {}
