use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

use std::collections::HashMap;

#[orchestrator]
async fn o(ctx: OrchestrationContext, xs: Vec<u32>) -> Result<u32, OrchestrationError> {
    let mut seen = HashMap::new();
    for x in xs {
        seen.insert(x, ctx.call_activity(step, x).await?);
    }
    Ok(seen.values().sum())
}

fn main() {}
