use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, xs: Vec<u32>) -> Result<Vec<u32>, OrchestrationError> {
    let f = |x: u32| ctx.call_activity(step, x).await;
    Ok(xs.into_iter().map(f).collect())
}

fn main() {}
