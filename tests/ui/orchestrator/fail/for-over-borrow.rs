use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, xs: Vec<u32>) -> Result<u32, OrchestrationError> {
    let mut sum = 0;
    for x in &xs {
        sum += ctx.call_activity(step, *x).await?;
    }
    Ok(sum)
}

fn main() {}
