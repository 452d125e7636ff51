use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o() -> Result<u32, OrchestrationError> {
    Ok(1)
}

fn main() {}
