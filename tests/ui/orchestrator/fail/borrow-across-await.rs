use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, name: String) -> Result<usize, OrchestrationError> {
    let first: &str = name.split(",").next().unwrap_or("");
    let n = ctx.call_activity(step, 1).await?;
    Ok(first.len() + n as usize)
}

fn main() {}
