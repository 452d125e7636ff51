//! With the `otel` feature, the runtime's spans exported through OpenTelemetry (an in-memory
//! exporter) form one trace per instance: the start span is the root, every step its child,
//! activities, the sub-orchestration's steps and the entity operation children of the step
//! that caused them. Run with `cargo test -p durable --features otel --test otel`.

use durable::backend::Memory;
use durable::prelude::*;
use durable::telemetry::opentelemetry::trace::{SpanId, TraceId};
use durable::telemetry::opentelemetry_sdk::error::OTelSdkResult;
use durable::telemetry::opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use durable::telemetry::tracing_subscriber::layer::SubscriberExt;
use durable_test_support::wait::PATIENCE;
use std::sync::{Arc, Mutex};

#[activity]
async fn otel_step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn otel_child(_ctx: OrchestrationContext, n: u32) -> Result<u32, OrchestrationError> {
    Ok(n * 10)
}

/// A running total.
#[derive(Default, Serialize, Deserialize)]
struct OtelTally {
    total: u32,
}

#[entity]
impl OtelTally {
    fn add(&mut self, n: u32) -> u32 {
        self.total += n;
        self.total
    }
}

#[orchestrator]
async fn otel_traced(ctx: OrchestrationContext, n: u32) -> Result<u32, OrchestrationError> {
    let a = ctx.call_activity(otel_step, n).await?;
    let b = ctx.call_activity(otel_step, a).await?;
    let c = ctx.call_orchestrator(otel_child, b).await?;
    Ok(ctx.entity::<OtelTally>("t").add(c).await?)
}

/// Keeps exported spans in memory.
#[derive(Clone, Debug, Default)]
struct InMemory(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for InMemory {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

fn attr(s: &SpanData, key: &str) -> Option<String> {
    s.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_spans_form_one_trace_per_instance() {
    let exported = InMemory::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exported.clone()).build();
    let subscriber = durable::telemetry::tracing_subscriber::registry().with(durable::telemetry::layer(&provider));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let backend = Memory::new();
    let worker = Worker::builder(backend.clone())
        .orchestrator(otel_traced)
        .orchestrator(otel_child)
        .activity(otel_step)
        .entity::<OtelTally>()
        .start()
        .await
        .unwrap();
    let client = Client::new(backend);
    let id = client.start(otel_traced, 1).await.unwrap();
    assert_eq!(client.wait_for_completion(&id, PATIENCE).await.unwrap().output::<u32>().unwrap(), 30);
    worker.shutdown().await.unwrap();
    provider.force_flush().unwrap();

    let spans = exported.0.lock().unwrap().clone();
    let start = spans
        .iter()
        .find(|s| s.name == "durable.start" && attr(s, "instance").as_deref() == Some(id.as_str()))
        .expect("the start span is exported");
    let trace: TraceId = start.span_context.trace_id();
    assert_eq!(start.parent_span_id, SpanId::INVALID, "a new trace");
    // The ids the runtime records as fields are OpenTelemetry's own.
    assert_eq!(attr(start, "trace_id"), Some(trace.to_string()));
    assert_eq!(attr(start, "span_id"), Some(start.span_context.span_id().to_string()));
    let status = client.status(&id).await.unwrap().unwrap();
    assert_eq!(status.trace.unwrap().trace_id_hex(), trace.to_string(), "the recorded context is the start span's");

    let in_trace: Vec<&SpanData> = spans.iter().filter(|s| s.span_context.trace_id() == trace).collect();
    let named = |n: &str| -> Vec<&SpanData> { in_trace.iter().copied().filter(|s| s.name == n).collect() };
    let steps: Vec<&SpanData> = named("durable.step")
        .into_iter()
        .filter(|s| attr(s, "orchestrator").as_deref() == Some("otel_traced"))
        .collect();
    assert_eq!(steps.len(), 5);
    assert!(steps.iter().all(|s| s.parent_span_id == start.span_context.span_id() && s.parent_span_is_remote));
    let step_ids: Vec<SpanId> = steps.iter().map(|s| s.span_context.span_id()).collect();
    let activities = named("durable.activity");
    assert_eq!(activities.len(), 2);
    assert!(activities.iter().all(|a| step_ids.contains(&a.parent_span_id)));
    assert_ne!(activities[0].parent_span_id, activities[1].parent_span_id);
    let child = named("durable.step")
        .into_iter()
        .filter(|s| attr(s, "orchestrator").as_deref() == Some("otel_child"))
        .collect::<Vec<_>>();
    assert_eq!(child.len(), 1);
    assert!(step_ids.contains(&child[0].parent_span_id));
    let ops = named("durable.entity.op");
    assert_eq!(ops.len(), 1);
    assert!(step_ids.contains(&ops[0].parent_span_id));
    assert_eq!(attr(ops[0], "op").as_deref(), Some("add"));
}
