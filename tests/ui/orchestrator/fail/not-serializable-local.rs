use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

struct Connection {
    open: bool,
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let conn = Connection { open: true };
    let y = ctx.call_activity(step, x).await?;
    Ok(if conn.open { y } else { 0 })
}

fn main() {}
