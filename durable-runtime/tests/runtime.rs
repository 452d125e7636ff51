//! The backend conformance suite: the runtime end to end (worker, client, engine, with the
//! shared fixtures of `durable-test-support`), every test run on the memory backend and on the
//! Redis backend (each Redis test on a `redis-server` of its own).

use durable_runtime::backend::{Backend, InstanceMessage};
use durable_runtime::engine::{self, EngineConfig, Registry, replay_orchestrator};
use durable_runtime::messages::TaskMessage;
use durable_runtime::{Client, Error, EventKind, InstanceId, InstanceQuery, RuntimeStatus, Worker, WorkerHandle};
use durable_test_support::backends::TestBackend;
use durable_test_support::fixtures::*;
use durable_test_support::wait::{PATIENCE, eventually, running, settle, wait_until};
use std::time::Duration;

/// Step one instance by hand (no worker): fetch, process, commit. `false` if there was no work.
async fn step_once<B: Backend>(backend: &B, registry: &Registry) -> bool {
    let Some(item) = backend.fetch_orchestration_work(Duration::ZERO).await.unwrap() else {
        return false;
    };
    let history = if engine::needs_history(&item) { backend.history(&item.instance_id).await.unwrap() } else { None };
    let commit = engine::process(registry, &item, history.as_deref(), backend.now(), &EngineConfig::default());
    backend.commit(commit).await.unwrap();
    true
}

/// Without a worker: start `hello` for Oslo and Rome, and run its first step by hand (it
/// schedules the greeting of Oslo). The registry, a client and the instance id.
async fn hello_oslo_rome_stepped_once<B: TestBackend>(backend: &B) -> (Registry, Client, InstanceId) {
    let mut registry = Registry::new();
    registry.register::<hello>();
    let client = Client::new(backend.clone());
    let id = client.start(hello, vec!["Oslo".into(), "Rome".into()]).await.unwrap();
    assert!(step_once(backend, &registry).await);
    (registry, client, id)
}

async fn worker<B: TestBackend>(backend: &B) -> WorkerHandle {
    Worker::builder(backend.clone())
        .orchestrator(hello)
        .orchestrator(sleeper)
        .orchestrator(wait_event)
        .orchestrator(retrying)
        .orchestrator(call_panicky)
        .orchestrator(calls_unknown)
        .orchestrator(panics)
        .orchestrator(counts_to_three)
        .orchestrator(parent)
        .activity(say_hello)
        .activity(fails_attempts)
        .activity(panicky)
        .start()
        .await
        .unwrap()
}

fn cities() -> Vec<String> {
    vec!["Tokyo".into(), "Seattle".into(), "London".into()]
}

async fn start_activity_complete<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    let id = client.start(hello, cities()).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Completed);
    assert_eq!(done.output::<Vec<String>>().unwrap(), vec!["Hello Tokyo!", "Hello Seattle!", "Hello London!"]);
    assert_eq!(done.name, "hello");
    assert!(done.updated_ms >= done.created_ms);

    let history = client.history(&id).await.unwrap();
    let kinds: Vec<&str> = history
        .iter()
        .map(|e| match &e.kind {
            EventKind::ExecutionStarted { .. } => "started",
            EventKind::OrchestratorStarted => "step",
            EventKind::TaskScheduled { .. } => "scheduled",
            EventKind::TaskCompleted { .. } => "completed",
            EventKind::ExecutionCompleted { .. } => "done",
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "started",
            "step",
            "scheduled",
            "step",
            "completed",
            "scheduled",
            "step",
            "completed",
            "scheduled",
            "step",
            "completed",
            "done"
        ]
    );
    assert!(history.iter().enumerate().all(|(i, e)| e.seq == i as u64));

    // The history replays through the same code, and not through drifted code.
    let replayed = replay_orchestrator::<hello>(&id, &history).unwrap();
    assert!(matches!(replayed.finished, Some(EventKind::ExecutionCompleted { .. })));
    assert_eq!(replayed.steps, 4);
    let err = replay_orchestrator::<hello_drifted>(&id, &history).unwrap_err();
    assert!(matches!(err, Error::Nondeterminism(_)));
    let msg = err.to_string();
    assert!(msg.contains("history event #2") && msg.contains("TOKYO"), "{msg}");

    // Not found / no output errors are clear.
    assert!(matches!(client.history("nope").await, Err(Error::InstanceNotFound(_))));
    w.shutdown().await.unwrap();
}

async fn timer_of_72_hours_fires_on_advance_never_early<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    let t0 = backend.now();
    let id = client.start(sleeper, 72).await.unwrap();
    wait_until(&client, &id, running).await;
    eventually("one timer pending", async || backend.pending_timers().await == 1).await;

    backend.advance(Duration::from_secs(72 * 3600) - Duration::from_millis(1));
    settle().await;
    assert_eq!(client.status(&id).await.unwrap().unwrap().runtime_status, RuntimeStatus::Running);
    assert_eq!(backend.pending_timers().await, 1);

    backend.advance(Duration::from_millis(1));
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    let now_seen: u64 = done.output().unwrap();
    assert!(now_seen >= t0 + 72 * 3600 * 1000, "ctx.now() is the step time");
    let history = client.history(&id).await.unwrap();
    assert!(history.iter().any(|e| matches!(e.kind, EventKind::TimerCreated { .. })));
    assert!(history.iter().any(|e| matches!(e.kind, EventKind::TimerFired { .. })));
    replay_orchestrator::<sleeper>(&id, &history).unwrap();
    w.shutdown().await.unwrap();
}

async fn real_time_timer_fires<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    let id = client.start(wait_event, 1).await.unwrap();
    client.raise_event(&id, "go", "after a real second").await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<String>().unwrap(), "after a real second");
    w.shutdown().await.unwrap();
}

async fn events_raised_before_the_wait_are_kept<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    // Raised right after start, before the first step even ran.
    let early = client.start(wait_event, 0).await.unwrap();
    client.raise_event(&early, "go", "early bird").await.unwrap();
    // Raised while the orchestrator sleeps on a timer, before it waits.
    let sleeping = client.start(wait_event, 3600).await.unwrap();
    let s = wait_until(&client, &sleeping, running).await;
    assert_eq!(s.custom_status::<String>().unwrap().as_deref(), Some("waiting"));
    client.raise_event(&sleeping, "other", 1).await.unwrap();
    client.raise_event(&sleeping, "go", "kept").await.unwrap();
    settle().await;
    assert_eq!(client.status(&sleeping).await.unwrap().unwrap().runtime_status, RuntimeStatus::Running);
    backend.advance(Duration::from_secs(3600));

    let done = client.wait_for_completion(&early, PATIENCE).await.unwrap();
    assert_eq!(done.output::<String>().unwrap(), "early bird");
    let done = client.wait_for_completion(&sleeping, PATIENCE).await.unwrap();
    assert_eq!(done.output::<String>().unwrap(), "kept");
    let history = client.history(&sleeping).await.unwrap();
    replay_orchestrator::<wait_event>(&sleeping, &history).unwrap();
    w.shutdown().await.unwrap();
}

async fn retries_follow_the_policy_with_backoff_timers<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    // Fails twice, 3 attempts allowed: succeeds on the third, after 10 s and 20 s.
    let id = client.start(retrying, (2, 3)).await.unwrap();
    eventually("one timer pending", async || backend.pending_timers().await == 1).await;
    let first_retry = backend.next_timer().await.unwrap();
    backend.advance(Duration::from_secs(9));
    settle().await;
    assert_eq!(backend.pending_timers().await, 1, "backoff not over yet");
    backend.advance(Duration::from_secs(1));
    eventually("the second retry timer", async || backend.next_timer().await.is_some_and(|t| t > first_retry)).await;
    let second = backend.next_timer().await.unwrap().duration_since(backend.time()).unwrap();
    assert_eq!(second, Duration::from_secs(20));
    backend.advance(Duration::from_secs(20));
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<String>().unwrap(), "ok after 3");
    let history = client.history(&id).await.unwrap();
    let failed = history.iter().filter(|e| matches!(e.kind, EventKind::TaskFailed { .. })).count();
    let retries: Vec<u32> = history
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::TaskRetryScheduled { next_attempt, .. } => Some(next_attempt),
            _ => None,
        })
        .collect();
    assert_eq!((failed, retries), (2, vec![2, 3]));
    replay_orchestrator::<retrying>(&id, &history).unwrap();

    // Out of attempts: the task fails with the activity's message.
    let id = client.start(retrying, (5, 2)).await.unwrap();
    eventually("one timer pending", async || backend.pending_timers().await == 1).await;
    backend.advance(Duration::from_secs(10));
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("flaky failed: attempt 2 failed"));
    assert!(matches!(done.output::<String>(), Err(Error::NoOutput { .. })));
    w.shutdown().await.unwrap();
}

async fn activity_panic_fails_the_task_and_the_worker_goes_on<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    let id = client.start(call_panicky, "kaboom".to_string()).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Failed);
    let err = done.error.unwrap();
    assert!(err.contains("activity `panicky` panicked: kaboom"), "{err}");

    let unknown = client.start(calls_unknown, ()).await.unwrap();
    let done = client.wait_for_completion(&unknown, PATIENCE).await.unwrap();
    let err = done.error.unwrap();
    assert!(err.contains("unknown activity `no_such_activity`") && err.contains("`say_hello`"), "{err}");

    let id = client.start(hello, cities()).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Completed);
    w.shutdown().await.unwrap();
}

async fn orchestrator_panic_fails_the_instance_only<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    let bad = client.start(panics, ()).await.unwrap();
    let good = client.start(hello, cities()).await.unwrap();
    let done = client.wait_for_completion(&bad, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("orchestrator `panics` panicked: boom in the orchestrator"));
    let done = client.wait_for_completion(&good, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Completed);
    w.shutdown().await.unwrap();
}

async fn terminate_and_purge<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    let id = client.start(wait_event, 0).await.unwrap();
    wait_until(&client, &id, running).await;
    let err = client.purge(&id).await.unwrap_err();
    assert!(matches!(err, Error::InvalidState { .. }), "{err}");
    client.terminate(&id, "no longer needed").await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Terminated);
    assert_eq!(done.reason.as_deref(), Some("no longer needed"));
    let history = client.history(&id).await.unwrap();
    assert!(matches!(history.last().unwrap().kind, EventKind::ExecutionTerminated { .. }));
    // Finished: terminating again, or raising an event, is a clear error.
    assert!(matches!(client.terminate(&id, "again").await, Err(Error::InvalidState { .. })));
    assert!(matches!(client.raise_event(&id, "go", 1).await, Err(Error::InvalidState { .. })));

    assert!(client.purge(&id).await.unwrap());
    assert!(client.status(&id).await.unwrap().is_none());
    assert!(!client.purge(&id).await.unwrap());
    assert!(matches!(client.terminate(&id, "gone").await, Err(Error::InstanceNotFound(_))));
    w.shutdown().await.unwrap();
}

async fn suspend_holds_messages_until_resume<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    let id = client.start(wait_event, 0).await.unwrap();
    wait_until(&client, &id, running).await;
    client.suspend(&id, "maintenance").await.unwrap();
    let s = wait_until(&client, &id, |s| s.runtime_status == RuntimeStatus::Suspended).await;
    assert_eq!(s.reason.as_deref(), Some("maintenance"));
    client.raise_event(&id, "go", "after resume").await.unwrap();
    settle().await;
    assert_eq!(client.status(&id).await.unwrap().unwrap().runtime_status, RuntimeStatus::Suspended);
    client.resume(&id, "done").await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<String>().unwrap(), "after resume");
    let history = client.history(&id).await.unwrap();
    assert!(history.iter().any(|e| matches!(e.kind, EventKind::ExecutionSuspended { .. })));
    assert!(history.iter().any(|e| matches!(e.kind, EventKind::ExecutionResumed { .. })));
    replay_orchestrator::<wait_event>(&id, &history).unwrap();
    w.shutdown().await.unwrap();
}

async fn duplicate_activity_completion_is_ignored<B: TestBackend>(backend: B) {
    let (registry, client, id) = hello_oslo_rome_stepped_once(&backend).await;
    let item = backend.fetch_activity_work(Duration::ZERO).await.unwrap().unwrap();
    assert_eq!(item.request.name, "say_hello");
    backend.complete_activity_work(item.clone(), Ok("\"Hi Oslo\"".into())).await.unwrap();
    backend.complete_activity_work(item.clone(), Ok("\"Hi again\"".into())).await.unwrap();
    // A duplicate that got through the backend (at-least-once delivery) is dropped by the engine.
    let dup = item.request.result_message(Ok("\"Hi thrice\"".into()));
    backend.send_message(&id, dup).await.unwrap();
    assert!(step_once(&backend, &registry).await);
    let item = backend.fetch_activity_work(Duration::ZERO).await.unwrap().unwrap();
    assert_eq!(item.request.input, "\"Rome\"");
    backend.complete_activity_work(item, Ok("\"Hi Rome\"".into())).await.unwrap();
    assert!(step_once(&backend, &registry).await);
    // The duplicate may have been read after the step it arrived behind (a reader polls on a
    // cluster): it is then stepped on its own, and dropped.
    let mut extra = 0;
    while step_once(&backend, &registry).await {
        extra += 1;
        assert!(extra <= 1, "only the duplicate may be left to step");
    }
    let done = client.status(&id).await.unwrap().unwrap();
    assert_eq!(done.output::<Vec<String>>().unwrap(), vec!["Hi Oslo", "Hi Rome"]);
    let history = client.history(&id).await.unwrap();
    let completions = history.iter().filter(|e| matches!(e.kind, EventKind::TaskCompleted { .. })).count();
    assert_eq!(completions, 2);
}

async fn bad_input_and_bad_ids_give_clear_errors<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone()).with_max_payload_bytes(1000);

    let id = client.start_by_name("hello", serde_json::json!(42)).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Failed);
    let err = done.error.unwrap();
    assert!(err.contains("the input of orchestrator `hello` does not deserialize"), "{err}");

    let id = client.start_by_name("nope", serde_json::json!(null)).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    let err = done.error.unwrap();
    assert!(err.contains("unknown orchestrator `nope`") && err.contains("`hello`"), "{err}");

    let err = client.start_with_id(hello, "", vec![]).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInstanceId { .. }) && err.to_string().contains("empty"), "{err}");
    let err = client.start_with_id(hello, "x".repeat(257), vec![]).await.unwrap_err();
    assert!(err.to_string().contains("over the limit of 256 bytes"), "{err}");
    client.start_with_id(hello, "y".repeat(256), vec![]).await.unwrap();

    let err = client.start(hello, vec!["z".repeat(2000)]).await.unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge { limit: 1000, .. }), "{err}");

    let id = client.start_with_id(wait_event, "fixed", 0).await.unwrap();
    assert_eq!(id, "fixed");
    let err = client.start_with_id(wait_event, "fixed", 0).await.unwrap_err();
    assert!(matches!(err, Error::InstanceAlreadyExists(_)), "{err}");
    let err = client.raise_event(&id, "go", "z".repeat(2000)).await.unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge { .. }), "{err}");
    client.raise_event(&id, "go", "x").await.unwrap();
    client.wait_for_completion(&id, PATIENCE).await.unwrap();
    // A finished instance's id can be used again.
    client.start_with_id(wait_event, "fixed", 0).await.unwrap();
    let err = client.wait_for_completion("fixed", Duration::from_millis(50)).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    w.shutdown().await.unwrap();
}

async fn other_code_version_leaves_the_instance_waiting_until_matching_code_returns<B: TestBackend>(backend: B) {
    let client = Client::new(backend.clone());
    let v1 = Worker::builder(backend.clone()).orchestrator(wait_event).start().await.unwrap();
    let id = client.start(wait_event, 0).await.unwrap();
    wait_until(&client, &id, running).await;
    eventually("no activity pending", async || backend.pending_activities().await == 0).await;
    v1.shutdown().await.unwrap();

    let v2 = Worker::builder(backend.clone())
        .orchestrator(wait_event_v2)
        .blocked_retry(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    client.raise_event(&id, "go", "eventually").await.unwrap();
    let s = wait_until(&client, &id, |s| s.reason.is_some()).await;
    assert_eq!(s.runtime_status, RuntimeStatus::Running);
    let reason = s.reason.unwrap();
    assert!(s.blocked, "{reason}");
    assert!(reason.contains("no code registered on this worker can resume it (orchestrator `wait_event`"), "{reason}");
    assert!(reason.contains("the local `label` is live at `ctx.wait_for_event::<String>(\"go\")`"), "{reason}");
    assert!(reason.contains("replaying its history through version 1"), "{reason}");
    assert!(reason.contains("register the code that wrote its state"), "{reason}");
    v2.shutdown().await.unwrap();

    let v1 = Worker::builder(backend.clone()).orchestrator(wait_event).start().await.unwrap();
    backend.advance(Duration::from_secs(5));
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<String>().unwrap(), "eventually");
    assert_eq!(done.reason, None);
    assert!(!done.blocked);
    v1.shutdown().await.unwrap();
}

async fn continue_as_new_restarts_history_and_carries_events<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    let id = client.start(counts_to_three, 0).await.unwrap();
    for _ in 0..3 {
        client.raise_event(&id, "inc", ()).await.unwrap();
    }
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<u32>().unwrap(), 3);
    assert_eq!(done.input, "3");
    let history = client.history(&id).await.unwrap();
    assert!(matches!(&history[0].kind, EventKind::ExecutionStarted { input, .. } if input == "3"), "{history:?}");
    assert_eq!(history[0].seq, 0);
    replay_orchestrator::<counts_to_three>(&id, &history).unwrap();
    w.shutdown().await.unwrap();
}

async fn sub_orchestration_reports_to_its_parent<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    let id = client.start(parent, vec!["Paris".into(), "Lima".into()]).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<String>().unwrap(), "Hello Paris! Hello Lima!");
    let child = format!("{id}:0");
    let child = client.status(&child).await.unwrap().unwrap();
    assert_eq!(child.runtime_status, RuntimeStatus::Completed);
    assert_eq!(child.parent.unwrap().instance_id, id.as_str());
    w.shutdown().await.unwrap();
}

async fn rewind_runs_the_failed_activity_again<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    // Fails attempt 1, no retries: the instance fails. Rewound, attempt 2 succeeds.
    let id = client.start(retrying, (1, 1)).await.unwrap();
    let failed = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(failed.runtime_status, RuntimeStatus::Failed);
    assert!(matches!(client.rewind("nope", "x").await, Err(Error::InstanceNotFound(_))));
    client.rewind(&id, "fixed the flake").await.unwrap();
    wait_until(&client, &id, |s| s.runtime_status != RuntimeStatus::Failed).await;
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<String>().unwrap(), "ok after 2");
    assert_eq!(done.error, None);
    let history = client.history(&id).await.unwrap();
    assert!(history.iter().any(|e| matches!(e.kind, EventKind::ExecutionRewound { .. })));
    let replayed = replay_orchestrator::<retrying>(&id, &history).unwrap();
    assert!(matches!(replayed.finished, Some(EventKind::ExecutionCompleted { .. })));
    assert!(matches!(client.rewind(&id, "again").await, Err(Error::InvalidState { .. })));
    w.shutdown().await.unwrap();
}

async fn lost_snapshot_is_rebuilt_from_history<B: TestBackend>(backend: B) {
    let (registry, _client, id) = hello_oslo_rome_stepped_once(&backend).await;
    let act = backend.fetch_activity_work(Duration::ZERO).await.unwrap().unwrap();
    backend.complete_activity_work(act, Ok("\"Hi Oslo\"".into())).await.unwrap();
    // Step by hand without the snapshot: the engine replays the history.
    let mut item = backend.fetch_orchestration_work(Duration::ZERO).await.unwrap().unwrap();
    item.snapshot = None;
    assert!(engine::needs_history(&item));
    let history = backend.history(&id).await.unwrap().unwrap();
    let commit = engine::process(&registry, &item, Some(&history), backend.now(), &Default::default());
    assert!(
        commit
            .new_events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::TaskScheduled { input, .. } if input == "\"Rome\""))
    );
    backend.commit(commit).await.unwrap();
}

async fn messages_for_an_old_execution_are_dropped<B: TestBackend>(backend: B) {
    let mut registry = Registry::new();
    registry.register::<wait_event>();
    let client = Client::new(backend.clone());
    let id = client.start(wait_event, 0).await.unwrap();
    assert!(step_once(&backend, &registry).await);
    let stale = InstanceMessage::TaskResult {
        execution_id: "old".into(),
        result: TaskMessage::EventRaised { name: "go".into(), data: "\"stale\"".into() },
    };
    backend.send_message(&id, stale).await.unwrap();
    assert!(step_once(&backend, &registry).await);
    assert_eq!(client.status(&id).await.unwrap().unwrap().runtime_status, RuntimeStatus::Running);
}

async fn list_filters_and_pages<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(client.start_with_id(wait_event, format!("w{i}"), 0).await.unwrap());
        backend.advance(Duration::from_millis(1));
    }
    let done = client.start(hello, cities()).await.unwrap();
    client.wait_for_completion(&done, PATIENCE).await.unwrap();
    for id in &ids {
        wait_until(&client, id, running).await;
    }
    let page = client.list(InstanceQuery::new().with_status(RuntimeStatus::Running).with_limit(2)).await.unwrap();
    assert_eq!(page.instances.iter().map(|s| s.instance_id.as_str()).collect::<Vec<_>>(), ["w0", "w1"]);
    let c = page.continuation.unwrap();
    let page = client
        .list(InstanceQuery::new().with_status(RuntimeStatus::Running).with_limit(2).with_continuation(c))
        .await
        .unwrap();
    assert_eq!(page.instances.iter().map(|s| s.instance_id.as_str()).collect::<Vec<_>>(), ["w2", "w3"]);
    let all = client.list(InstanceQuery::new()).await.unwrap();
    assert_eq!(all.instances.len(), 6);
    assert!(all.continuation.is_none());
    let completed = client.list(InstanceQuery::new().with_status(RuntimeStatus::Completed)).await.unwrap();
    assert_eq!(completed.instances.len(), 1);
    let named = client.list(InstanceQuery::new().with_name("hello")).await.unwrap();
    assert_eq!(named.instances.len(), 1);
    w.shutdown().await.unwrap();
}

async fn sub_orchestration_with_a_live_id_fails_the_parent_task<B: TestBackend>(backend: B) {
    let w = Worker::builder(backend.clone()).orchestrator(wait_event).orchestrator(fixed_child).start().await.unwrap();
    let client = Client::new(backend.clone());
    client.start_with_id(wait_event, "child", 0).await.unwrap();
    let id = client.start(fixed_child, ()).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    let err = done.error.unwrap();
    assert!(err.contains("instance \"child\" already exists"), "{err}");

    // Terminating a child fails its parent's task with the reason.
    client.terminate("child", "stop").await.unwrap();
    client.wait_for_completion("child", PATIENCE).await.unwrap();
    let id = client.start(fixed_child, ()).await.unwrap();
    wait_until(&client, "child", running).await;
    client.terminate("child", "not needed").await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    let err = done.error.unwrap();
    assert!(err.contains("was terminated: not needed"), "{err}");
    w.shutdown().await.unwrap();
}

async fn shutdown_hands_back_activities_that_do_not_finish<B: TestBackend>(backend: B) {
    let client = Client::new(backend.clone());
    let w = Worker::builder(backend.clone())
        .orchestrator(call_slow)
        .activity(slow)
        .shutdown_grace(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let id = client.start(call_slow, 60_000).await.unwrap();
    eventually("the activity pending", async || backend.pending_activities().await == 1).await;
    settle().await;
    w.shutdown().await.unwrap();
    let item = backend.fetch_activity_work(Duration::ZERO).await.unwrap().expect("handed back");
    assert_eq!(item.request.name, "slow");
    backend.abandon_activity_work(item).await.unwrap();

    // Another worker picks it up; a short activity finishes within the grace period.
    let w = Worker::builder(backend.clone())
        .orchestrator(call_slow)
        .activity(slow)
        .shutdown_grace(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let quick = client.start(call_slow, 10).await.unwrap();
    let done = client.wait_for_completion(&quick, PATIENCE).await.unwrap();
    assert_eq!(done.output::<u64>().unwrap(), 10);
    client.terminate(&id, "too slow").await.unwrap();
    w.shutdown().await.unwrap();
}

async fn many_instances_in_parallel<B: TestBackend>(backend: B) {
    let w = Worker::builder(backend.clone())
        .orchestrator(hello)
        .activity(say_hello)
        .max_concurrent_orchestrations(8)
        .max_concurrent_activities(8)
        .start()
        .await
        .unwrap();
    let client = Client::new(backend.clone());
    let mut ids = Vec::new();
    for i in 0..200 {
        ids.push(client.start(hello, vec![format!("a{i}"), format!("b{i}")]).await.unwrap());
    }
    for (i, id) in ids.iter().enumerate() {
        let done = client.wait_for_completion(id, Duration::from_secs(20)).await.unwrap();
        assert_eq!(done.output::<Vec<String>>().unwrap(), [format!("Hello a{i}!"), format!("Hello b{i}!")]);
    }
    w.shutdown().await.unwrap();
}

async fn batches_fetch_commit_and_fence<B: TestBackend>(backend: B) {
    let mut registry = Registry::new();
    registry.register::<hello>();
    let client = Client::new(backend.clone());
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(client.start(hello, vec![format!("b{i}")]).await.unwrap());
    }
    let items = backend.fetch_orchestration_work_batch(10, Duration::ZERO).await.unwrap();
    assert_eq!(items.len(), 5);
    let mut fetched: Vec<_> = items.iter().map(|i| i.instance_id.clone()).collect();
    fetched.sort();
    let mut expected: Vec<_> = ids.iter().map(|i| i.to_string()).collect();
    expected.sort();
    assert_eq!(fetched, expected);
    let mut commits: Vec<_> =
        items.iter().map(|item| engine::process(&registry, item, None, backend.now(), &Default::default())).collect();
    // A commit with a lock token that was never handed out is refused; the others go through.
    let mut forged = commits[0].clone();
    forged.lock = forged.lock.wrapping_add(1_000_000);
    commits.insert(0, forged);
    let results = backend.commit_batch(commits).await.unwrap();
    assert_eq!(results.len(), 6);
    assert!(matches!(results[0], Err(Error::LockLost(_))), "{:?}", results[0]);
    assert!(results[1..].iter().all(|r| r.is_ok()), "{results:?}");

    let acts = backend.fetch_activity_work_batch(10, Duration::ZERO).await.unwrap();
    assert_eq!(acts.len(), 5);
    for a in acts {
        let out = format!("\"Hi {}\"", a.request.input.trim_matches('"'));
        backend.complete_activity_work(a, Ok(out)).await.unwrap();
    }
    let items = backend.fetch_orchestration_work_batch(10, Duration::from_secs(5)).await.unwrap();
    let mut all = items;
    while all.len() < 5 {
        all.extend(backend.fetch_orchestration_work_batch(10, Duration::from_secs(5)).await.unwrap());
    }
    let commits =
        all.iter().map(|item| engine::process(&registry, item, None, backend.now(), &Default::default())).collect();
    assert!(backend.commit_batch(commits).await.unwrap().iter().all(|r| r.is_ok()));
    for (i, id) in ids.iter().enumerate() {
        let s = client.status(id).await.unwrap().unwrap();
        assert_eq!(s.output::<Vec<String>>().unwrap(), [format!("Hi b{i}")]);
    }
}

durable_test_support::on_both_backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    start_activity_complete,
    timer_of_72_hours_fires_on_advance_never_early: Virtual,
    real_time_timer_fires,
    events_raised_before_the_wait_are_kept: Virtual,
    retries_follow_the_policy_with_backoff_timers: Virtual,
    activity_panic_fails_the_task_and_the_worker_goes_on,
    orchestrator_panic_fails_the_instance_only,
    terminate_and_purge,
    suspend_holds_messages_until_resume,
    duplicate_activity_completion_is_ignored,
    bad_input_and_bad_ids_give_clear_errors,
    other_code_version_leaves_the_instance_waiting_until_matching_code_returns: Virtual,
    continue_as_new_restarts_history_and_carries_events,
    sub_orchestration_reports_to_its_parent,
    rewind_runs_the_failed_activity_again,
    lost_snapshot_is_rebuilt_from_history,
    messages_for_an_old_execution_are_dropped,
    list_filters_and_pages: Virtual,
    sub_orchestration_with_a_live_id_fails_the_parent_task,
    shutdown_hands_back_activities_that_do_not_finish,
    many_instances_in_parallel,
    batches_fetch_commit_and_fence,
}

/// A worker keeps a large snapshot decoded between two steps (`engine::SnapshotCache`): a step
/// from the kept value commits exactly what a step from the decoded bytes commits, and a kept
/// value is used only for the very bytes it stands for.
#[tokio::test]
async fn a_snapshot_kept_decoded_steps_exactly_like_one_decoded_again() {
    use durable_runtime::engine::{SnapshotCache, Stepped, prepare_with, step_with};
    let backend = durable_test_support::backends::memory(durable_test_support::backends::Clock::Virtual);
    let mut registry = Registry::new();
    registry.register::<hello_all>();
    let client = Client::new(backend.clone());
    let cities: Vec<String> = (0..3000).map(|i| format!("city number {i}")).collect();
    let id = client.start(hello_all, cities.clone()).await.unwrap();
    let cache = SnapshotCache::new(64 << 20);
    let config = EngineConfig::default();
    let step = |item: &durable_runtime::backend::OrchestrationWorkItem| {
        let prepared = prepare_with(item, Some(&cache));
        match step_with(&registry, item, prepared, None, backend.now(), &config, Some(&cache)) {
            Stepped::Commit(c) => c,
            Stepped::NeedsHistory(_) => panic!("the step asked for the history"),
        }
    };
    // The first step schedules 3,000 greetings: its snapshot is large, and kept.
    let item = backend.fetch_orchestration_work(Duration::ZERO).await.unwrap().unwrap();
    let first = step(&item);
    backend.commit(first).await.unwrap();
    let (kept, bytes) = cache.len_and_bytes();
    assert_eq!(kept, 1, "the first step's snapshot ({bytes} bytes) was kept");
    assert!(bytes >= SnapshotCache::MIN_BYTES, "{bytes} bytes");
    for round in 0..3 {
        for _ in 0..500 {
            let a = backend.fetch_activity_work(Duration::ZERO).await.unwrap().unwrap();
            let out = format!("\"Hello {}!\"", serde_json::from_str::<String>(&a.request.input).unwrap());
            backend.complete_activity_work(a, Ok(out)).await.unwrap();
        }
        let item = backend.fetch_orchestration_work(Duration::ZERO).await.unwrap().unwrap();
        assert_eq!(item.instance_id, id.as_str());
        let decoded_again = engine::process(&registry, &item, None, backend.now(), &config);
        let from_kept = step(&item);
        assert_eq!(from_kept, decoded_again, "round {round}: the same commit from the kept snapshot");
        assert_eq!(cache.len_and_bytes().0, 1, "round {round}: the new snapshot is kept");
        backend.commit(from_kept).await.unwrap();
    }
    // A kept value does not stand for other bytes: the instance's snapshot as stored now is
    // the one kept; a work item with the snapshot before it is decoded, not taken from the cache.
    let mut item = backend.fetch_orchestration_work(Duration::ZERO).await.unwrap();
    assert!(item.is_none(), "nothing to step until more greetings complete");
    let a = backend.fetch_activity_work(Duration::ZERO).await.unwrap().unwrap();
    let out = format!("\"Hello {}!\"", serde_json::from_str::<String>(&a.request.input).unwrap());
    backend.complete_activity_work(a, Ok(out)).await.unwrap();
    item = backend.fetch_orchestration_work(Duration::ZERO).await.unwrap();
    let mut item = item.unwrap();
    let stored = item.snapshot.clone().unwrap();
    item.snapshot.as_mut().unwrap().push(0);
    let _ = prepare_with(&item, Some(&cache));
    assert_eq!(cache.len_and_bytes().0, 1, "the kept value stays for its own bytes");
    item.snapshot = Some(stored);
    let _ = prepare_with(&item, Some(&cache));
    assert_eq!(cache.len_and_bytes().0, 0, "its own bytes take it");
    backend.abandon_orchestration_work(&item.instance_id, item.lock).await.unwrap();
}
