use durable::prelude::*;
use durable::Orchestrator;

#[orchestrator(name = "parked", version = 1)]
async fn parked_v1(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let y: u32 = ctx.wait_for_event("go").await?;
    Ok(x + y)
}

#[orchestrator(name = "parked", version = 2)]
async fn parked(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let y: u32 = ctx.wait_for_event("go").checkpoint("go").await?;
    Ok(x * y)
}

#[orchestrator(version = 3)]
async fn unnamed(ctx: OrchestrationContext) -> Result<(), OrchestrationError> {
    let _ = ctx;
    Ok(())
}

#[orchestrator]
async fn unversioned(ctx: OrchestrationContext) -> Result<(), OrchestrationError> {
    let _ = ctx;
    Ok(())
}

fn main() {
    let _ = (parked_v1, parked);
    assert_eq!((<parked_v1 as Orchestrator>::NAME, <parked_v1 as Orchestrator>::VERSION), ("parked", 1));
    assert_eq!((<parked as Orchestrator>::NAME, <parked as Orchestrator>::VERSION), ("parked", 2));
    assert_eq!((<unnamed as Orchestrator>::NAME, <unnamed as Orchestrator>::VERSION), ("unnamed", 3));
    assert_eq!(<unversioned as Orchestrator>::VERSION, 1);
}
