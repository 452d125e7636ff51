use durable::prelude::*;
use std::collections::BTreeMap;

#[activity]
async fn step(n: i64) -> Result<i64, ActivityError> {
    Ok(n + 1)
}

// The rewrites the `for-over-iter` errors suggest compile.
#[orchestrator]
async fn owned(ctx: OrchestrationContext, xs: Vec<i64>, m: BTreeMap<String, i64>) -> Result<i64, OrchestrationError> {
    let mut sum = 0;
    for y in xs.iter().cloned() {
        sum += ctx.call_activity(step, y).await?;
    }
    for i in 0..xs.len() {
        sum += ctx.call_activity(step, xs[i]).await?;
    }
    for k in m.keys().cloned() {
        sum += ctx.call_activity(step, k.len() as i64).await?;
    }
    for c in "abc".chars() {
        sum += ctx.call_activity(step, c as i64).await?;
    }
    // No `.await` in the body: borrowing is fine.
    for y in xs.iter() {
        sum += y;
    }
    Ok(sum)
}

fn main() {}
