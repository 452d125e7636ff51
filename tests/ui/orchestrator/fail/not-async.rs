use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
fn o(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let _ = ctx;
    Ok(x)
}

fn main() {}
