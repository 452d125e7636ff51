//! The aggregator pattern: an entity collects notifications and starts an orchestration once
//! ten have arrived.
//!
//! `cargo run --example aggregator` on the embedded backend, `-- --redis URL` on Redis.

#[path = "common/backend.rs"]
mod common;

use durable::prelude::*;

#[derive(Default, Serialize, Deserialize, Debug)]
struct Batch {
    readings: Vec<f64>,
    started: Option<String>,
}

#[entity]
impl Batch {
    /// One more reading; the tenth starts the report.
    fn notify(&mut self, ctx: &mut EntityContext, reading: f64) {
        self.readings.push(reading);
        if self.readings.len() == 10 && self.started.is_none() {
            let id = ctx.start_orchestration(summarize, self.readings.clone()).expect("starts");
            self.started = Some(id);
        }
    }
    fn report_id(&self) -> Option<String> {
        self.started.clone()
    }
}

#[activity]
async fn store_summary(mean: f64, max: f64) -> Result<String, ActivityError> {
    Ok(format!("mean {mean:.2}, max {max:.2}"))
}

#[orchestrator]
async fn summarize(ctx: OrchestrationContext, readings: Vec<f64>) -> Result<String, OrchestrationError> {
    let mean = readings.iter().sum::<f64>() / readings.len() as f64;
    let max = readings.iter().cloned().fold(f64::MIN, f64::max);
    Ok(ctx.call_activity(store_summary, (mean, max)).await?)
}

#[tokio::main]
async fn main() -> Result<(), durable::Error> {
    let backend = common::ExampleBackend::from_args(false).await?;
    let worker = Worker::builder_arc(backend.arc())
        .entity::<Batch>()
        .orchestrator(summarize)
        .activity(store_summary)
        .start()
        .await?;
    let client = Client::from_arc(backend.arc());
    for i in 0..12 {
        client.signal_entity::<Batch>("sensor-7").notify(20.0 + i as f64 * 0.5).await?;
    }
    println!("12 readings signaled");
    // Signals are applied asynchronously: wait (up to 10 s) until the entity started the report.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // The report is created by the entity's commit; on Redis it reaches another partition a
    // moment later (through that partition's outbox), so wait until it exists too.
    let report = loop {
        if let Some(id) = client.entity_state::<Batch>("sensor-7").await?.and_then(|b| b.started)
            && client.status(&id).await?.is_some()
        {
            break id;
        }
        if std::time::Instant::now() > deadline {
            return Err(durable::Error::Backend("the entity did not start the report".into()));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let done = client.wait_for_completion(&report, Duration::from_secs(10)).await?;
    println!("report {report}: {}", done.output::<String>()?);
    println!("readings kept: {}", client.entity_state::<Batch>("sensor-7").await?.map_or(0, |b| b.readings.len()));
    worker.shutdown().await
}
