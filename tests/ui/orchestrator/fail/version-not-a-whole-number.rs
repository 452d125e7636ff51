use durable::prelude::*;

#[orchestrator(name = "parked", version = "2")]
async fn quoted(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let _ = ctx;
    Ok(x)
}

#[orchestrator(name = "parked", version = 1.5)]
async fn fractional(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let _ = ctx;
    Ok(x)
}

#[orchestrator(name = "parked", version = 2u8)]
async fn suffixed(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let _ = ctx;
    Ok(x)
}

#[orchestrator(name = "parked", version = 99999999999)]
async fn too_large(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let _ = ctx;
    Ok(x)
}

fn main() {}
