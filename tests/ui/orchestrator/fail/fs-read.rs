use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, path: String) -> Result<u32, OrchestrationError> {
    let text = std::fs::read_to_string(&path)?;
    Ok(ctx.call_activity(step, text.len() as u32).await?)
}

fn main() {}
