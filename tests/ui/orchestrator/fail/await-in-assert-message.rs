use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    assert!(ctx.call_activity(step, x).await? > x, "step returned {}", ctx.call_activity(step, 0).await?);
    debug_assert!(ctx.call_activity(step, x).await? > 0);
    Ok(x)
}

fn main() {}
