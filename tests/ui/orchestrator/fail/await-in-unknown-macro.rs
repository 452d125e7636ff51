use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

macro_rules! twice { ($e:expr) => { ($e, $e) } }

#[orchestrator]
async fn o(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let (a, _b) = twice!(ctx.call_activity(step, x).await?);
    Ok(a)
}

fn main() {}
