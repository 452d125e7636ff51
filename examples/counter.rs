//! A durable entity: a counter addressed by key, created by its first operation.
//!
//! `cargo run --example counter` on the embedded backend, `-- --redis URL` on Redis.

#[path = "common/backend.rs"]
mod common;

use durable::prelude::*;

#[derive(Default, Serialize, Deserialize, Debug)]
struct Counter {
    value: i64,
}

#[entity]
impl Counter {
    fn add(&mut self, amount: i64) {
        self.value += amount;
    }
    fn reset(&mut self) {
        self.value = 0;
    }
    fn get(&self) -> i64 {
        self.value
    }
}

/// Reads the counter, doubles it, and reads it again: calls from an orchestration get results.
#[orchestrator]
async fn double_it(ctx: OrchestrationContext, key: String) -> Result<(i64, i64), OrchestrationError> {
    let before = ctx.entity::<Counter>(key.clone()).get().await?;
    ctx.entity::<Counter>(key.clone()).add(before).await?;
    let after = ctx.entity::<Counter>(key).get().await?;
    Ok((before, after))
}

#[tokio::main]
async fn main() -> Result<(), durable::Error> {
    let backend = common::ExampleBackend::from_args(false).await?;
    let worker = Worker::builder_arc(backend.arc()).entity::<Counter>().orchestrator(double_it).start().await?;
    let client = Client::from_arc(backend.arc());

    println!("before any operation: {:?}", client.entity_state::<Counter>("QConSF2019").await?);
    client.signal_entity::<Counter>("QConSF2019").add(10).await?;
    client.signal_entity::<Counter>("QConSF2019").add(10).await?;
    let id = client.start(double_it, "QConSF2019".to_string()).await?;
    let done = client.wait_for_completion(&id, Duration::from_secs(10)).await?;
    println!("double_it: {:?}", done.output::<(i64, i64)>()?);
    println!("state now: {:?}", client.entity_state::<Counter>("QConSF2019").await?);
    worker.shutdown().await
}
