//! Traces: one instance is one trace, across steps, activities, a sub-orchestration and an
//! entity, on Memory and on Redis with the activity run by another process. Checked with a
//! capturing `tracing` subscriber on the ids the runtime records on its spans (`trace_id`,
//! `span_id`, `parent_span_id`), which is what OpenTelemetry export uses too.

use durable::backend::{Backend, Memory, Redis};
use durable::prelude::*;
use durable_test_support::process::ChildProcess;
use durable_test_support::redis_server::RedisServer;
use durable_test_support::spans::{self, CapturedSpan};
use durable_test_support::wait::PATIENCE;
use std::io::BufRead;

#[activity]
async fn traced_step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[orchestrator]
async fn traced_child(_ctx: OrchestrationContext, n: u32) -> Result<u32, OrchestrationError> {
    Ok(n * 10)
}

/// A running total.
#[derive(Default, Serialize, Deserialize)]
struct Tally {
    total: u32,
}

#[entity]
impl Tally {
    fn add(&mut self, n: u32) -> u32 {
        self.total += n;
        self.total
    }
}

#[orchestrator]
async fn traced(ctx: OrchestrationContext, n: u32) -> Result<u32, OrchestrationError> {
    let a = ctx.call_activity(traced_step, n).await?;
    let b = ctx.call_activity(traced_step, a).await?;
    let c = ctx.call_orchestrator(traced_child, b).await?;
    let d = ctx.entity::<Tally>("t").add(c).await?;
    Ok(d)
}

/// The fields the README's rendering shows.
const SHOWN: &[&str] = &["instance", "orchestrator", "resumed_at", "activity", "attempt", "entity", "op"];

/// Check the trace of instance `id` in `all` (spans of every process), and return it rendered.
/// `activity_pid`: the process that must have run the activities.
fn check_trace(all: &[CapturedSpan], id: &str, activity_pid: u32) -> String {
    let start: Vec<&CapturedSpan> =
        all.iter().filter(|s| s.name == "durable.start" && s.get("instance") == Some(id)).collect();
    assert_eq!(start.len(), 1, "one start span: {start:#?}");
    let start = start[0];
    let trace = start.trace_id().expect("the start span has a trace id");
    assert_eq!(trace.len(), 32);
    assert_eq!(start.parent_span_id(), None, "started outside any trace: a new trace");
    let mine: Vec<&CapturedSpan> = all.iter().filter(|s| s.trace_id() == Some(trace)).collect();
    let named = |name: &str| -> Vec<&CapturedSpan> { mine.iter().copied().filter(|s| s.name == name).collect() };
    let steps: Vec<&CapturedSpan> =
        named("durable.step").into_iter().filter(|s| s.get("instance") == Some(id)).collect();
    // Start, after each activity, after the child, after the entity: 5 steps, each a child of
    // the start span (the context recorded with the instance), none a child of another step.
    assert_eq!(steps.len(), 5, "{steps:#?}");
    for s in &steps {
        assert_eq!(s.parent_span_id(), start.span_id(), "a step is a child of the instance's context: {s:#?}");
        assert_eq!(s.get("orchestrator"), Some("traced"));
        assert_eq!(s.get("version"), Some("1"));
    }
    let first = steps.iter().find(|s| s.get("resumed_at").is_none()).expect("the first step resumes from nothing");
    let resumed: Vec<&str> = steps.iter().filter_map(|s| s.get("resumed_at")).collect();
    assert!(resumed.contains(&"ctx.call_orchestrator(traced_child, b)"), "{resumed:?}");
    let step_of = |span: &CapturedSpan| -> usize {
        let parent = span.parent_span_id().unwrap_or_else(|| panic!("no parent: {span:#?}"));
        steps
            .iter()
            .position(|s| s.span_id() == Some(parent))
            .unwrap_or_else(|| panic!("not a step's child: {span:#?}"))
    };

    // Two activity attempts, each a child of the step that scheduled it (two different steps),
    // run by `activity_pid`.
    let activities = named("durable.activity");
    assert_eq!(activities.len(), 2, "{activities:#?}");
    let mut scheduled_by: Vec<usize> = activities.iter().map(|a| step_of(a)).collect();
    scheduled_by.dedup();
    assert_eq!(scheduled_by.len(), 2, "each activity comes from its own step");
    assert_eq!(steps[step_of(activities[0])].span_id(), first.span_id(), "the first step schedules the first activity");
    for a in &activities {
        assert_eq!(a.get("activity"), Some("traced_step"));
        assert_eq!(a.get("attempt"), Some("1"));
        assert_eq!(a.get("instance"), Some(id));
        assert_eq!(a.pid, activity_pid, "the activity ran in the activity worker's process");
    }

    // The sub-orchestration: its steps are in the same trace, children of the parent's step
    // that started it.
    let child_steps: Vec<&CapturedSpan> =
        named("durable.step").into_iter().filter(|s| s.get("orchestrator") == Some("traced_child")).collect();
    assert_eq!(child_steps.len(), 1, "{child_steps:#?}");
    let child_parent = step_of(child_steps[0]);
    assert!(!scheduled_by.contains(&child_parent), "the child comes from the step after the second activity");

    // The entity operation: a child of the step that called it (after the child finished).
    let ops = named("durable.entity.op");
    assert_eq!(ops.len(), 1, "{ops:#?}");
    assert_eq!(ops[0].get("op"), Some("add"));
    assert_eq!(ops[0].get("entity"), Some("tally/t"));
    assert_eq!(ops[0].get("call"), Some("true"));
    let op_parent = step_of(ops[0]);
    assert_ne!(op_parent, child_parent);
    let batches = named("durable.entity.batch");
    assert_eq!(batches.len(), 1, "{batches:#?}");
    assert_eq!(step_of(batches[0]), op_parent);

    // Nothing else of the runtime landed in this trace but commits.
    for s in &mine {
        assert!(
            s.name == "durable.start"
                || s.name == "durable.step"
                || s.name == "durable.activity"
                || s.name == "durable.entity.op"
                || s.name == "durable.entity.batch"
                || s.name == "durable.commit",
            "{s:#?}"
        );
    }
    spans::render_tree(all, trace, SHOWN)
}

async fn run_traced(client: &Client) -> String {
    let id = client.start(traced, 1).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    // 1 → 2 → 3 → child 30 → tally 30.
    assert_eq!(done.output::<u32>().unwrap(), 30, "{done:?}");
    id.into_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_is_one_trace_on_memory() {
    spans::install();
    let backend = Memory::new();
    let worker = Worker::builder(backend.clone())
        .orchestrator(traced)
        .orchestrator(traced_child)
        .activity(traced_step)
        .entity::<Tally>()
        .start()
        .await
        .unwrap();
    let client = Client::new(backend);
    let id = run_traced(&client).await;
    worker.shutdown().await.unwrap();
    let tree = check_trace(&spans::captured(), &id, std::process::id());
    println!("{tree}");
}

/// The HTTP API and `Client` honour a caller's context: the instance's trace is the caller's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_inside_a_callers_context_joins_its_trace() {
    spans::install();
    let backend = Memory::new();
    let worker = Worker::builder(backend.clone()).orchestrator(traced_child).start().await.unwrap();
    let client = Client::new(backend);
    let caller = durable::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    let id = durable::TraceContext::scope(Some(caller), client.start(traced_child, 4)).await.unwrap();
    client.wait_for_completion(&id, PATIENCE).await.unwrap();
    let status = client.status(&id).await.unwrap().unwrap();
    let recorded = status.trace.expect("the instance records its context");
    assert_eq!(recorded.trace_id, caller.trace_id);
    assert_ne!(recorded.span_id, caller.span_id, "the start span is a child of the caller's span");
    let history = client.history(&id).await.unwrap();
    assert!(
        matches!(&history[0].kind, durable::EventKind::ExecutionStarted { trace: Some(t), .. } if *t == recorded),
        "{history:?}"
    );
    worker.shutdown().await.unwrap();
    let all = spans::captured();
    let start = all.iter().find(|s| s.name == "durable.start" && s.get("instance") == Some(id.as_str())).unwrap();
    assert_eq!(start.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(start.parent_span_id(), Some("00f067aa0ba902b7"));
    let step = all.iter().find(|s| s.name == "durable.step" && s.get("instance") == Some(id.as_str())).unwrap();
    assert_eq!(step.parent_span_id(), start.span_id());
}

/// Not a test by itself: an activity-only worker process for the Redis test. Prints `READY`;
/// on a line on stdin prints `COUNT n` and its `n` captured spans as `SPAN {json}` lines.
#[test]
#[ignore = "run by one_instance_is_one_trace_across_processes_on_redis as a worker process"]
fn activity_worker_process() {
    let Ok(url) = std::env::var("DURABLE_TRACE_URL") else { return };
    let prefix = std::env::var("DURABLE_TRACE_PREFIX").unwrap();
    spans::install();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _worker = rt.block_on(async {
        let backend = Redis::builder(url).prefix(prefix).connect().await.unwrap();
        Worker::builder(backend).activity(traced_step).start().await.unwrap()
    });
    println!("READY");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    let captured = spans::captured();
    println!("COUNT {}", captured.len());
    for s in captured {
        println!("SPAN {}", s.to_json_line());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_is_one_trace_across_processes_on_redis() {
    spans::install();
    let server = RedisServer::start();
    let prefix = "trace";
    let env = [("DURABLE_TRACE_URL", server.url()), ("DURABLE_TRACE_PREFIX", prefix.to_string())];
    let mut activities = ChildProcess::spawn("activity_worker_process", &env);
    activities.expect_line("READY", PATIENCE);
    let backend = Redis::builder(server.url()).prefix(prefix).connect().await.unwrap();
    // This process steps orchestrations and entities only: every activity runs in the child.
    let worker = Worker::builder(backend.clone())
        .orchestrator(traced)
        .orchestrator(traced_child)
        .entity::<Tally>()
        .start()
        .await
        .unwrap();
    let client = Client::new(backend.clone());
    let id = run_traced(&client).await;
    worker.shutdown().await.unwrap();
    activities.send_line("DUMP");
    let count: usize = activities.expect_line("COUNT ", PATIENCE)["COUNT ".len()..].trim().parse().unwrap();
    let mut all = spans::captured();
    for _ in 0..count {
        let line = activities.expect_line("SPAN {", PATIENCE);
        all.push(CapturedSpan::from_json_line(&line["SPAN ".len()..]).expect("a span line"));
    }
    let tree = check_trace(&all, &id, activities.pid());
    assert!(all.iter().any(|s| s.pid != std::process::id()), "spans from the other process");
    println!("{tree}");
    let _ = backend.now();
}
