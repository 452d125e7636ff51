use durable::prelude::*;

#[activity]
async fn step(n: i32) -> Result<i32, ActivityError> {
    Ok(n + 1)
}

/// Pattern parameters, `mut` parameters, several inputs (a tuple).
#[orchestrator]
async fn patterns(ctx: OrchestrationContext, (a, b): (i32, i32), mut c: i32) -> Result<i32, OrchestrationError> {
    c += ctx.call_activity(step, a).await?;
    let _ = ctx.call_activity(step, b).await;
    ctx.timer(Duration::from_secs(1)).await?;
    drop(ctx.call_activity(step, c).await);
    let _unit: () = ctx.timer(Duration::from_secs(1)).await?;
    Ok(c)
}

/// Nested items and a nested `async fn` with its own awaits are left alone.
#[orchestrator]
async fn nested_items(ctx: OrchestrationContext, x: i32) -> Result<i32, OrchestrationError> {
    const LIMIT: i32 = 10;
    fn clamp(v: i32) -> i32 {
        v.min(LIMIT)
    }
    #[allow(dead_code)]
    async fn helper() -> i32 {
        std::future::ready(1).await
    }
    struct Local {
        v: i32,
    }
    let l = Local { v: ctx.call_activity(step, x).await? };
    Ok(clamp(l.v))
}

/// An orchestrator that never returns normally (`loop` without `break`), and one that is all
/// `todo!()`.
#[orchestrator]
async fn forever(ctx: OrchestrationContext) -> Result<(), OrchestrationError> {
    loop {
        ctx.timer(Duration::from_secs(60)).await?;
    }
}

#[orchestrator]
#[allow(unreachable_code, unused_variables)]
async fn unfinished(ctx: OrchestrationContext, x: i32) -> Result<i32, OrchestrationError> {
    todo!("not written yet")
}

/// Raw identifiers and a local named like a generated one would be.
#[orchestrator]
async fn raw_idents(ctx: OrchestrationContext, r#type: String) -> Result<String, OrchestrationError> {
    let r#match = ctx.call_activity(step, r#type.len() as i32).await?;
    let __durable_slot_1 = r#match * 2;
    let v = ctx.call_activity(step, __durable_slot_1).await?;
    Ok(format!("{type}{match}{v}", type = r#type, match = r#match))
}

fn main() {
    let _ = (patterns, nested_items, forever, unfinished, raw_idents);
}
