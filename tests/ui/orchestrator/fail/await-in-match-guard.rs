use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    match x {
        n if ctx.call_activity(step, n).await? > 3 => Ok(n),
        _ => Ok(0),
    }
}

fn main() {}
