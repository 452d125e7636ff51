use durable::prelude::*;

#[orchestrator(name = "parked", version = 0)]
async fn parked(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let _ = ctx;
    Ok(x)
}

fn main() {}
