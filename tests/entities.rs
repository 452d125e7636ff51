//! Durable entities on both backends: the Counter, calls and signals from
//! orchestrations, failures that leave state unchanged, exact sums under concurrency, locks.

use durable::RuntimeStatus;
use durable::prelude::*;
use durable_test_support::backends::TestBackend;
use durable_test_support::fixtures::{Counter, report};
use durable_test_support::wait::{PATIENCE, eventually};

#[orchestrator]
async fn use_counter(ctx: OrchestrationContext, key: String) -> Result<(i64, String), OrchestrationError> {
    ctx.signal::<Counter>(key.clone()).add(5);
    let v = ctx.entity::<Counter>(key.clone()).get().await?;
    let err = match ctx.entity::<Counter>(key.clone()).explode(100).await {
        Ok(_) => "no error".to_string(),
        Err(e) => e.to_string(),
    };
    let after = ctx.entity::<Counter>(key).get().await?;
    assert_eq!(v, after, "a failed operation leaves the state as it was");
    Ok((v, err))
}

#[orchestrator]
async fn transfer(ctx: OrchestrationContext, from: String, to: String) -> Result<i64, OrchestrationError> {
    let guard = ctx.lock([EntityId::of::<Counter>(from.clone()), EntityId::of::<Counter>(to.clone())]).await?;
    let have = ctx.entity::<Counter>(from.clone()).get().await?;
    ctx.timer(Duration::from_millis(5)).await?;
    ctx.entity::<Counter>(from).add(-1).await?;
    ctx.entity::<Counter>(to).add(1).await?;
    ctx.unlock(guard);
    Ok(have)
}

#[orchestrator]
async fn lock_then_fail(ctx: OrchestrationContext, key: String) -> Result<(), OrchestrationError> {
    let _guard = ctx.lock([EntityId::of::<Counter>(key.clone())]).await?;
    ctx.entity::<Counter>(key).add(1).await?;
    Err("failing while holding the lock".into())
}

async fn setup<B: TestBackend>(backend: &B) -> (durable::WorkerHandle, Client) {
    let worker = Worker::builder(backend.clone())
        .entity::<Counter>()
        .orchestrator(use_counter)
        .orchestrator(transfer)
        .orchestrator(lock_then_fail)
        .orchestrator(report)
        .start()
        .await
        .unwrap();
    (worker, Client::new(backend.clone()))
}

async fn value(client: &Client, key: &str) -> Option<i64> {
    client.entity_state::<Counter>(key).await.unwrap().map(|c| c.value)
}

async fn counter_is_absent_until_used_and_signals_add_up<B: TestBackend>(backend: B) {
    let (worker, client) = setup(&backend).await;
    assert_eq!(client.entity_state::<Counter>("QConSF2019").await.unwrap(), None);
    client.signal_entity::<Counter>("QConSF2019").add(10).await.unwrap();
    client.signal_entity::<Counter>("QConSF2019").add(10).await.unwrap();
    eventually("20", async || value(&client, "QConSF2019").await == Some(20)).await;
    client.signal_entity::<Counter>("QConSF2019").reset().await.unwrap();
    eventually("reset", async || value(&client, "QConSF2019").await == Some(0)).await;
    worker.shutdown().await.unwrap();
}

async fn orchestration_calls_and_signals_and_a_panic_leaves_state_unchanged<B: TestBackend>(backend: B) {
    let (worker, client) = setup(&backend).await;
    client.signal_entity::<Counter>("c1").add(7).await.unwrap();
    let id = client.start(use_counter, "c1".to_string()).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    let (v, err) = done.output::<(i64, String)>().unwrap();
    assert_eq!(v, 12);
    assert!(err.contains("counter exploded at 112"), "{err}");
    assert_eq!(value(&client, "c1").await, Some(12));
    worker.shutdown().await.unwrap();
}

async fn a_failing_operation_reports_the_error_and_keeps_the_state<B: TestBackend>(backend: B) {
    let (worker, client) = setup(&backend).await;
    client.signal_entity::<Counter>("lim").add_checked(900).await.unwrap();
    client.signal_entity::<Counter>("lim").add_checked(200).await.unwrap();
    eventually("error recorded", async || {
        client.entity("counter", "lim").await.unwrap().and_then(|s| s.last_error).is_some()
    })
    .await;
    let st = client.entity("counter", "lim").await.unwrap().unwrap();
    assert!(st.last_error.unwrap().contains("1100 is over the limit"));
    assert_eq!(value(&client, "lim").await, Some(900));
    worker.shutdown().await.unwrap();
}

async fn unknown_operations_and_bad_inputs_by_name_leave_the_state_unchanged<B: TestBackend>(backend: B) {
    let (worker, client) = setup(&backend).await;
    client.signal_entity_by_name("counter", "n", "add", serde_json::json!(3)).await.unwrap();
    client.signal_entity_by_name("counter", "n", "multiply", serde_json::json!(3)).await.unwrap();
    eventually("unknown op reported", async || {
        client.entity("counter", "n").await.unwrap().and_then(|s| s.last_error).is_some_and(|e| e.contains("multiply"))
    })
    .await;
    let err = client.entity("counter", "n").await.unwrap().unwrap().last_error.unwrap();
    assert!(err.contains("no operation `multiply`") && err.contains("`add`"), "{err}");
    client.signal_entity_by_name("counter", "n", "add", serde_json::json!("three")).await.unwrap();
    eventually("bad input reported", async || {
        client.entity("counter", "n").await.unwrap().and_then(|s| s.last_error).is_some_and(|e| e.contains("i64"))
    })
    .await;
    assert_eq!(value(&client, "n").await, Some(3));
    let err = client.signal_entity_by_name("counter@x", "n", "add", serde_json::json!(1)).await.unwrap_err();
    assert!(err.to_string().contains("must not contain `@`"), "{err}");
    worker.shutdown().await.unwrap();
}

async fn a_thousand_concurrent_signals_sum_exactly<B: TestBackend>(backend: B) {
    let (worker, client) = setup(&backend).await;
    let mut senders = Vec::new();
    for s in 0..10 {
        let c = Client::new(backend.clone());
        senders.push(tokio::spawn(async move {
            for i in 0..100 {
                c.signal_entity::<Counter>("hot").add(s * 100 + i).await.unwrap();
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let expected: i64 = (0..1000).sum();
    eventually("exact sum", async || value(&client, "hot").await == Some(expected)).await;
    worker.shutdown().await.unwrap();
}

async fn entity_context_signals_deletes_and_starts_orchestrations<B: TestBackend>(backend: B) {
    let (worker, client) = setup(&backend).await;
    client.signal_entity::<Counter>("a").forward("b".to_string(), 4).await.unwrap();
    eventually("forwarded", async || value(&client, "b").await == Some(4)).await;
    assert_eq!(value(&client, "a").await, Some(4));

    client.signal_entity::<Counter>("a").start_report().await.unwrap();
    eventually("report started", async || {
        let page = client.list(durable::InstanceQuery::new().with_name("report")).await.unwrap();
        page.instances
            .iter()
            .any(|s| s.runtime_status == RuntimeStatus::Completed && s.output.as_deref() == Some("\"a=4\""))
    })
    .await;

    client.signal_entity::<Counter>("a").remove().await.unwrap();
    eventually("deleted", async || value(&client, "a").await.is_none()).await;
    let listed = client.list_entities(Some("counter"), 100).await.unwrap();
    assert!(listed.iter().any(|e| e.id.key == "b") && !listed.iter().any(|e| e.id.key == "a"));
    assert!(client.purge_entity("counter", "b").await.unwrap());
    assert_eq!(value(&client, "b").await, None);
    worker.shutdown().await.unwrap();
}

async fn locks_in_opposite_orders_do_not_deadlock<B: TestBackend>(backend: B) {
    let (worker, client) = setup(&backend).await;
    client.signal_entity::<Counter>("x").add(10).await.unwrap();
    client.signal_entity::<Counter>("y").add(10).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..6 {
        let (from, to) = if i % 2 == 0 { ("x", "y") } else { ("y", "x") };
        ids.push(client.start(transfer, (from.to_string(), to.to_string())).await.unwrap());
    }
    for id in &ids {
        let done = client.wait_for_completion(id, PATIENCE).await.unwrap();
        assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{:?}", done.error);
    }
    // Transfers were serialized by the locks: nothing lost, nothing created.
    assert_eq!(value(&client, "x").await.unwrap() + value(&client, "y").await.unwrap(), 20);
    worker.shutdown().await.unwrap();
}

async fn a_failing_orchestration_releases_its_locks<B: TestBackend>(backend: B) {
    let (worker, client) = setup(&backend).await;
    let id = client.start(lock_then_fail, "held".to_string()).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Failed);
    // If the lock were still held, this signal would wait forever.
    client.signal_entity::<Counter>("held").add(100).await.unwrap();
    eventually("unlocked", async || value(&client, "held").await == Some(101)).await;
    // And another orchestration can lock it.
    let id = client.start(transfer, ("held".to_string(), "other".to_string())).await.unwrap();
    assert_eq!(client.wait_for_completion(&id, PATIENCE).await.unwrap().output::<i64>().unwrap(), 101);
    worker.shutdown().await.unwrap();
}

async fn the_journal_keeps_the_last_operations_with_sender_and_outcome<B: TestBackend>(backend: B) {
    let worker = Worker::builder(backend.clone())
        .entity::<Counter>()
        .orchestrator(use_counter)
        .entity_journal(4)
        .start()
        .await
        .unwrap();
    let client = Client::new(backend.clone());
    assert!(matches!(client.entity_journal("counter", "j").await, Err(durable::Error::InstanceNotFound(_))));
    for n in 1..=3 {
        client.signal_entity::<Counter>("j").add(n).await.unwrap();
    }
    eventually("6", async || value(&client, "j").await == Some(6)).await;
    let journal = client.entity_journal("counter", "j").await.unwrap();
    let ops: Vec<(&str, &str, Option<&str>)> =
        journal.iter().map(|e| (e.op.as_str(), e.input.as_str(), e.sender.as_deref())).collect();
    assert_eq!(ops, [("add", "1", None), ("add", "2", None), ("add", "3", None)]);
    assert!(journal.iter().all(|e| e.result.as_deref() == Some("null") && e.error.is_none()), "{journal:?}");

    // An orchestration's signal, calls and failing call: the client's entries make room.
    let id = client.start(use_counter, "j".to_string()).await.unwrap();
    client.wait_for_completion(&id, PATIENCE).await.unwrap();
    let journal = client.entity_journal("counter", "j").await.unwrap();
    let ops: Vec<(&str, Option<&str>)> = journal.iter().map(|e| (e.op.as_str(), e.sender.as_deref())).collect();
    let me = Some(id.as_str());
    assert_eq!(ops, [("add", me), ("get", me), ("explode", me), ("get", me)], "{journal:?}");
    assert_eq!(journal[0].input, "5");
    assert_eq!(journal[1].result.as_deref(), Some("11"));
    assert!(journal[2].error.as_deref().is_some_and(|e| e.contains("exploded")), "{journal:?}");
    assert!(journal.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
    worker.shutdown().await.unwrap();
}

durable_test_support::on_both_backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    the_journal_keeps_the_last_operations_with_sender_and_outcome,
    counter_is_absent_until_used_and_signals_add_up,
    orchestration_calls_and_signals_and_a_panic_leaves_state_unchanged,
    a_failing_operation_reports_the_error_and_keeps_the_state,
    unknown_operations_and_bad_inputs_by_name_leave_the_state_unchanged,
    a_thousand_concurrent_signals_sum_exactly,
    entity_context_signals_deletes_and_starts_orchestrations,
    locks_in_opposite_orders_do_not_deadlock,
    a_failing_orchestration_releases_its_locks,
}
