use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, x: u32) -> Result<String, OrchestrationError> {
    let id = uuid::Uuid::new_v4();
    let _ = ctx.call_activity(step, x).await?;
    Ok(id.to_string())
}

fn main() {}
