use durable::prelude::*;
use std::collections::BTreeMap;
use std::ops::AddAssign;

#[derive(Serialize, Deserialize, Default)]
struct Money {
    cents: u64,
}

impl AddAssign for Money {
    fn add_assign(&mut self, other: Money) {
        self.cents += other.cents;
    }
}

#[activity]
async fn price(item: String) -> Result<u64, ActivityError> {
    Ok(item.len() as u64)
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, items: Vec<String>) -> Result<u64, OrchestrationError> {
    let mut totals: BTreeMap<String, Money> = BTreeMap::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for item in items {
        // Both operands primitive: the value first, as Rust does; accepted.
        *counts.entry(item.clone()).or_insert(0) += ctx.call_activity(price, item.clone()).await?;
        // `Money += Money`: Rust evaluates the place (`entry`, `or_default`) first.
        *totals.entry(item.clone()).or_default() += Money { cents: ctx.call_activity(price, item).await? };
    }
    Ok(totals.values().map(|m| m.cents).sum::<u64>() + counts.values().sum::<u64>())
}

fn main() {}
