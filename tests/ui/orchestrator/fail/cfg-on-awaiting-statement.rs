use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let mut y = x;
    #[cfg(feature = "extra")]
    {
        y += ctx.call_activity(step, 100).await?;
    }
    y += ctx.call_activity(step, x).await?;
    Ok(y)
}

fn main() {}
