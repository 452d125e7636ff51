//! With the `otel` feature, the runtime's spans exported through OpenTelemetry (an in-memory
//! exporter) form one trace per instance: the start span is the root, every step its child,
//! activities, the sub-orchestration's steps and the entity operation children of the step
//! that caused them — on Memory, and on Redis with the activities run by another process that
//! exports its spans with an exporter of its own. Run with
//! `cargo test -p durable --features otel --test otel`.

use durable::backend::{Memory, Redis};
use durable::prelude::*;
use durable::telemetry::opentelemetry::trace::{SpanId, TraceId};
use durable::telemetry::opentelemetry_sdk::error::OTelSdkResult;
use durable::telemetry::opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use durable::telemetry::tracing_subscriber::layer::SubscriberExt;
use durable_test_support::process::ChildProcess;
use durable_test_support::redis_server::RedisServer;
use durable_test_support::wait::PATIENCE;
use std::io::BufRead;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_spans_form_one_trace_per_instance() {
    // One global subscriber for the process: both checks run in this one test.
    let exported = InMemory::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exported.clone()).build();
    let subscriber = durable::telemetry::tracing_subscriber::registry().with(durable::telemetry::layer(&provider));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    // On Memory, one process.
    let (client, id) = run_traced(Memory::new(), true).await;
    provider.force_flush().unwrap();
    let spans: Vec<Exported> = exported.0.lock().unwrap().iter().map(Exported::of).collect();
    check_one_trace(&client, &id, &spans, None).await;

    // On Redis, with the activities run by another process with an exporter of its own.
    let server = RedisServer::start();
    let env = [("DURABLE_OTEL_URL", server.url())];
    let mut activities = ChildProcess::spawn("otel_activity_worker_process", &env);
    activities.expect_line("READY", PATIENCE);
    let backend = Redis::builder(server.url()).prefix("otel").connect().await.unwrap();
    let (client, id) = run_traced(backend, false).await;
    provider.force_flush().unwrap();
    activities.send_line("DUMP");
    let count: usize = activities.expect_line("COUNT ", PATIENCE)["COUNT ".len()..].trim().parse().unwrap();
    let mut spans: Vec<Exported> = exported.0.lock().unwrap().iter().map(Exported::of).collect();
    let theirs: Vec<Exported> = (0..count)
        .map(|_| serde_json::from_str(&activities.expect_line("SPAN {", PATIENCE)["SPAN ".len()..]).unwrap())
        .collect();
    let their_ids: Vec<String> = theirs.iter().map(|s| s.span_id.clone()).collect();
    spans.extend(theirs);
    check_one_trace(&client, &id, &spans, Some(&their_ids)).await;
}

/// Run one instance of `otel_traced` on a worker over `backend` (with the activity registered
/// here if `activities`), to its end; the client and the instance id.
async fn run_traced<B: durable::backend::Backend + Clone>(backend: B, activities: bool) -> (Client, String) {
    let mut builder = Worker::builder(backend.clone()).orchestrator(otel_traced).orchestrator(otel_child);
    if activities {
        builder = builder.activity(otel_step);
    }
    let worker = builder.entity::<OtelTally>().start().await.unwrap();
    let client = Client::new(backend);
    let id = client.start(otel_traced, 1).await.unwrap();
    assert_eq!(client.wait_for_completion(&id, PATIENCE).await.unwrap().output::<u32>().unwrap(), 30);
    worker.shutdown().await.unwrap();
    (client, id.into_string())
}

/// Not a test by itself: an activity-only worker process exporting its spans through
/// OpenTelemetry (an in-memory exporter) for the Redis check. Prints `READY`; on a line on
/// stdin prints `COUNT n` and its `n` exported spans as `SPAN {json}` lines.
#[test]
#[ignore = "run by exported_spans_form_one_trace_per_instance as a worker process"]
fn otel_activity_worker_process() {
    let Ok(url) = std::env::var("DURABLE_OTEL_URL") else { return };
    let exported = InMemory::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exported.clone()).build();
    let subscriber = durable::telemetry::tracing_subscriber::registry().with(durable::telemetry::layer(&provider));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _worker = rt.block_on(async {
        let backend = Redis::builder(url).prefix("otel").connect().await.unwrap();
        Worker::builder(backend).activity(otel_step).start().await.unwrap()
    });
    println!("READY");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    provider.force_flush().unwrap();
    let spans: Vec<Exported> = exported.0.lock().unwrap().iter().map(Exported::of).collect();
    println!("COUNT {}", spans.len());
    for s in spans {
        println!("SPAN {}", serde_json::to_string(&s).unwrap());
    }
}

/// What the checks need of an exported span (and what a process prints of one).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Exported {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    parent_is_remote: bool,
    attributes: Vec<(String, String)>,
}

impl Exported {
    fn of(s: &SpanData) -> Self {
        Self {
            name: s.name.to_string(),
            trace_id: s.span_context.trace_id().to_string(),
            span_id: s.span_context.span_id().to_string(),
            parent_span_id: s.parent_span_id.to_string(),
            parent_is_remote: s.parent_span_is_remote,
            attributes: s.attributes.iter().map(|kv| (kv.key.to_string(), kv.value.to_string())).collect(),
        }
    }

    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Instance `id` of `otel_traced` is one trace in `spans`: the start span its root, its five
/// steps children of it, the two activities (exported by the process whose span ids are
/// `remote`, if given), the child's step and the entity operation children of its steps.
async fn check_one_trace(client: &Client, id: &str, spans: &[Exported], remote: Option<&[String]>) {
    let start = spans
        .iter()
        .find(|s| s.name == "durable.start" && s.attr("instance") == Some(id))
        .expect("the start span is exported");
    let trace = start.trace_id.clone();
    assert_eq!(start.parent_span_id, SpanId::INVALID.to_string(), "a new trace");
    // The ids the runtime records as fields are OpenTelemetry's own.
    assert_eq!(start.attr("trace_id"), Some(trace.as_str()));
    assert_eq!(start.attr("span_id"), Some(start.span_id.as_str()));
    let status = client.status(id).await.unwrap().unwrap();
    assert_eq!(status.trace.unwrap().trace_id_hex(), trace, "the recorded context is the start span's");
    assert_ne!(trace, TraceId::INVALID.to_string());

    let in_trace: Vec<&Exported> = spans.iter().filter(|s| s.trace_id == trace).collect();
    let named = |n: &str| -> Vec<&Exported> { in_trace.iter().copied().filter(|s| s.name == n).collect() };
    let steps: Vec<&Exported> =
        named("durable.step").into_iter().filter(|s| s.attr("orchestrator") == Some("otel_traced")).collect();
    assert_eq!(steps.len(), 5, "{steps:?}");
    assert!(steps.iter().all(|s| s.parent_span_id == start.span_id && s.parent_is_remote));
    let step_ids: Vec<&str> = steps.iter().map(|s| s.span_id.as_str()).collect();
    let activities = named("durable.activity");
    assert_eq!(activities.len(), 2, "{activities:?}");
    assert!(activities.iter().all(|a| step_ids.contains(&a.parent_span_id.as_str())));
    assert_ne!(activities[0].parent_span_id, activities[1].parent_span_id);
    if let Some(remote) = remote {
        assert!(activities.iter().all(|a| remote.contains(&a.span_id)), "the activities ran in the other process");
        assert!(steps.iter().all(|s| !remote.contains(&s.span_id)), "the steps ran in this one");
    }
    let child: Vec<&Exported> =
        named("durable.step").into_iter().filter(|s| s.attr("orchestrator") == Some("otel_child")).collect();
    assert_eq!(child.len(), 1);
    assert!(step_ids.contains(&child[0].parent_span_id.as_str()));
    let ops = named("durable.entity.op");
    assert_eq!(ops.len(), 1);
    assert!(step_ids.contains(&ops[0].parent_span_id.as_str()));
    assert_eq!(ops[0].attr("op"), Some("add"));
}
