use durable::prelude::*;
use std::collections::BTreeMap;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Order {
    id: u32,
    items: Vec<String>,
}

#[orchestrator]
async fn everything(ctx: OrchestrationContext, order: Order) -> Result<BTreeMap<String, u32>, OrchestrationError> {
    let mut out = BTreeMap::new();
    'outer: for (i, item) in order.items.clone().into_iter().enumerate() {
        let mut n = i as u32;
        while n < 3 {
            n = ctx.call_activity(step, n).await?;
            if n == 2 && item == "skip" {
                continue 'outer;
            }
        }
        let v = match ctx.call_activity(step, n).await {
            Ok(v) if v > 10 => break 'outer,
            Ok(v) => v,
            Err(e) => return Err(e.into()),
        };
        out.insert(format!("{}-{item}", order.id), v);
    }
    let total = loop {
        let t = ctx.timer(Duration::from_secs(1)).await;
        if t.is_ok() {
            break out.len() as u32;
        }
    };
    if total > 0 && ctx.call_activity(step, total).await? > 1 {
        ctx.set_custom_status(format!("{total} items"));
    }
    Ok(out)
}

#[orchestrator(name = "renamed")]
async fn no_input(_ctx: OrchestrationContext) -> Result<(), OrchestrationError> {
    Ok(())
}

fn main() {
    use durable::Orchestrator;
    assert_eq!(<no_input as Orchestrator>::NAME, "renamed");
    let _ = everything;
}
