use durable::prelude::*;

#[orchestrator]
async fn approvals(ctx: OrchestrationContext) -> Result<String, OrchestrationError> {
    let first: String = ctx.wait_for_event("manager").checkpoint("approval").await?;
    let second: String = ctx.wait_for_event("director").checkpoint("approval").await?;
    Ok(format!("{first} {second}"))
}

fn main() {}
