use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

async fn fetch() -> u32 {
    7
}

#[orchestrator]
async fn o(_ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let y = fetch().await;
    Ok(x + y)
}

fn main() {}
