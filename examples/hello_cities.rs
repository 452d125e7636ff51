//! The main example: an orchestrator greets three cities, one activity call each.
//!
//! `cargo run --example hello_cities` on the embedded backend, `-- --redis URL` on Redis.

#[path = "common/backend.rs"]
mod common;

use durable::prelude::*;

#[activity]
async fn say_hello(name: String) -> Result<String, ActivityError> {
    Ok(format!("Hello {name}!"))
}

#[orchestrator]
async fn hello_cities(ctx: OrchestrationContext, cities: Vec<String>) -> Result<Vec<String>, OrchestrationError> {
    let mut greetings = Vec::new();
    for city in cities {
        greetings.push(ctx.call_activity(say_hello, city).await?);
    }
    Ok(greetings)
}

#[tokio::main]
async fn main() -> Result<(), durable::Error> {
    let backend = common::ExampleBackend::from_args(false).await?;
    let worker = Worker::builder_arc(backend.arc()).orchestrator(hello_cities).activity(say_hello).start().await?;
    let client = Client::from_arc(backend.arc());

    let id = client.start(hello_cities, vec!["Tokyo".into(), "Seattle".into(), "London".into()]).await?;
    let done = client.wait_for_completion(&id, Duration::from_secs(10)).await?;
    println!("{:?}: {:?}", done.runtime_status, done.output::<Vec<String>>()?);

    println!("history of {id}:");
    print!("{}", durable::HistoryTable(&client.history(&id).await?));
    worker.shutdown().await?;
    Ok(())
}
