use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let region = std::env::var("REGION").unwrap_or_default();
    Ok(ctx.call_activity(step, x + region.len() as u32).await?)
}

fn main() {}
