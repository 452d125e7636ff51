use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, name: String) -> Result<String, OrchestrationError> {
    let upper = {
        let name = name.to_uppercase();
        ctx.call_activity(step, name.len() as u32).await?
    };
    Ok(format!("{name}{upper}"))
}

fn main() {}
