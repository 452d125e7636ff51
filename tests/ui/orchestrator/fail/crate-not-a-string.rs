use durable::prelude::*;

#[orchestrator(crate = 5)]
async fn o(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let _ = ctx;
    Ok(x)
}

#[orchestrator(crate = "not a path")]
async fn p(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let _ = ctx;
    Ok(x)
}

fn main() {}
