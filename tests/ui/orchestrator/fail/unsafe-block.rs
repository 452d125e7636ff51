use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let y = unsafe { std::mem::transmute::<u32, i32>(x) };
    Ok(ctx.call_activity(step, y as u32).await?)
}

fn main() {}
