use durable::prelude::*;

#[activity]
async fn step(n: i64) -> Result<i64, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn over_iter(ctx: OrchestrationContext, xs: Vec<i64>) -> Result<i64, OrchestrationError> {
    let mut sum = 0;
    for (i, y) in xs.iter().enumerate() {
        sum += ctx.call_activity(step, *y + i as i64).await?;
    }
    Ok(sum)
}

#[orchestrator]
async fn over_keys(ctx: OrchestrationContext, m: std::collections::BTreeMap<String, i64>) -> Result<i64, OrchestrationError> {
    let mut sum = 0;
    for k in m.keys() {
        sum += ctx.call_activity(step, k.len() as i64).await?;
    }
    Ok(sum)
}

#[orchestrator]
async fn over_lines(ctx: OrchestrationContext, text: String) -> Result<i64, OrchestrationError> {
    let mut sum = 0;
    for line in text.lines() {
        sum += ctx.call_activity(step, line.len() as i64).await?;
    }
    Ok(sum)
}

fn main() {}
