use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, x: Option<u32>) -> Result<u32, OrchestrationError> {
    let Some(v) = x else {
        let d = ctx.call_activity(step, 0).await?;
        return Ok(d);
    };
    Ok(v)
}

fn main() {}
