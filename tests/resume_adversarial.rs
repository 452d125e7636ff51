//! Adversarial review of resuming in-flight instances with changed code.
//!
//! Each test states the behaviour the design promises ("never resumed wrongly, never stranded
//! silently", design README §3). The review found eight problems; all are fixed and
//! their tests pass (repeated keys and positional temporaries are never matched across code —
//! the replay decides; a blocked start keeps its message; the same code's snapshot falls back
//! like any other; `pc` is trusted only with its key; a checkpoint name is unique; reasons speak
//! of "the awaited task", not of temporaries; a failed instance keeps the state it failed
//! from, so it is rewound even when its history no longer replays through its code).
//!
//! Two builds of one orchestrator are two `#[orchestrator(name = "…")]` functions in different
//! modules; a deploy is a worker with the old one shut down and one with the new one started on
//! the same `Memory` backend (as in `tests/versioning.rs`).

use durable::backend::{Backend, Memory};
use durable::orchestrator::{StepInput, StepResult};
use durable::prelude::*;
use durable::state::RuntimeState;
use durable::{EventKind, ExportedInstance, InstanceStatus, Orchestrator, RuntimeStatus};
use durable_test_support::wait::{eventually_some, parked_at};
use std::sync::Arc;

const WAIT: Duration = durable_test_support::wait::PATIENCE;

fn memory() -> Arc<dyn Backend> {
    Arc::new(Memory::new())
}

fn worker(backend: &Arc<dyn Backend>) -> durable::WorkerBuilder {
    Worker::builder_arc(backend.clone())
        .activity(record)
        .activity(refund)
        .activity(charge)
        .activity(double)
        .activity(fetch)
        .activity(flaky)
        .blocked_retry(Duration::from_millis(50))
}

/// Its status once it finished, or blocked, whichever comes first.
async fn settled(client: &Client, id: &str) -> InstanceStatus {
    eventually_some(&format!("{id} finished or blocked"), async || {
        client.status(id).await.unwrap().filter(|s| s.blocked || s.runtime_status.is_terminal())
    })
    .await
}

#[activity]
async fn record(what: String) -> Result<String, ActivityError> {
    Ok(what)
}

#[activity]
async fn refund(n: i64) -> Result<String, ActivityError> {
    Ok(format!("refunded {n}"))
}

#[activity]
async fn charge(n: i64) -> Result<String, ActivityError> {
    Ok(format!("charged {n}"))
}

#[activity]
async fn double(n: i64) -> Result<i64, ActivityError> {
    Ok(n * 2)
}

// =====================================================================================
// Finding 1: the `#n` numbering of repeated keys moves an instance to another await when
// an identical await is added (or removed) earlier in the body — an edit "elsewhere".
// =====================================================================================

const NEXT: &str = "ctx.wait_for_event(\"next\")";

mod steps_old {
    use super::*;
    #[orchestrator(name = "steps")]
    pub async fn steps(ctx: OrchestrationContext, _n: u32) -> Result<Vec<String>, OrchestrationError> {
        let mut log: Vec<String> = Vec::new();
        let _: () = ctx.wait_for_event("next").await?;
        log.push(ctx.call_activity(record, "a".to_string()).await?);
        let _: () = ctx.wait_for_event("next").await?;
        log.push(ctx.call_activity(record, "b".to_string()).await?);
        Ok(log)
    }
}

/// A new first step ("pre") in front of the old ones; nothing else changed.
mod steps_new {
    use super::*;
    #[orchestrator(name = "steps")]
    pub async fn steps(ctx: OrchestrationContext, _n: u32) -> Result<Vec<String>, OrchestrationError> {
        let mut log: Vec<String> = Vec::new();
        let _: () = ctx.wait_for_event("next").await?;
        log.push(ctx.call_activity(record, "pre".to_string()).await?);
        let _: () = ctx.wait_for_event("next").await?;
        log.push(ctx.call_activity(record, "a".to_string()).await?);
        let _: () = ctx.wait_for_event("next").await?;
        log.push(ctx.call_activity(record, "b".to_string()).await?);
        Ok(log)
    }
}

fn scheduled(history: &[durable::HistoryEvent], input: &str) -> usize {
    history.iter().filter(|e| matches!(&e.kind, EventKind::TaskScheduled { input: i, .. } if i == input)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_await_added_earlier_does_not_move_the_instance() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let old = worker(&backend).orchestrator(steps_old::steps).start().await.unwrap();
    let id = client.start(steps_old::steps, 0).await.unwrap().into_string();
    parked_at(&client, &id, NEXT).await;
    client.raise_event(&id, "next", ()).await.unwrap();
    // "a" done; parked at the second `wait_for_event("next")` with log = ["a"].
    parked_at(&client, &id, &format!("{NEXT}#1")).await;
    old.shutdown().await.unwrap();

    let new = worker(&backend).orchestrator(steps_new::steps).start().await.unwrap();
    client.raise_event(&id, "next", ()).await.unwrap();
    let s = eventually_some("resumed or blocked", async || {
        let s = client.status(&id).await.unwrap()?;
        if s.blocked {
            return Some(s);
        }
        let st = client.state(&id).await.unwrap()?;
        (st["at"].as_str() == Some(&format!("{NEXT}#2"))).then_some(s)
    })
    .await;
    let history = client.history(&id).await.unwrap();
    if !s.blocked {
        client.raise_event(&id, "next", ()).await.unwrap();
        let done = client.wait_for_completion(&id, WAIT).await.unwrap();
        println!("new code resumed it: output {:?}", done.output::<serde_json::Value>().unwrap());
    } else {
        println!("blocked: {:?}", s.reason);
    }
    let history = if s.blocked { history } else { client.history(&id).await.unwrap() };
    assert_eq!(scheduled(&history, "\"a\""), 1, "step \"a\" ran twice: the instance was resumed at the wrong await");
    new.shutdown().await.unwrap();
}

// =====================================================================================
// Finding 2: the same await text in two branches; swapping the branches (a refactor that
// keeps the meaning: `if x {A} else {B}` → `if !x {B} else {A}`) resumes an instance that
// waits in branch A into branch B.
// =====================================================================================

mod pay_old {
    use super::*;
    #[orchestrator(name = "pay")]
    pub async fn pay(ctx: OrchestrationContext, is_refund: bool) -> Result<String, OrchestrationError> {
        if is_refund {
            let amount: i64 = ctx.wait_for_event("amount").await?;
            Ok(ctx.call_activity(refund, amount).await?)
        } else {
            let amount: i64 = ctx.wait_for_event("amount").await?;
            Ok(ctx.call_activity(charge, amount).await?)
        }
    }
}

mod pay_new {
    use super::*;
    #[orchestrator(name = "pay")]
    pub async fn pay(ctx: OrchestrationContext, is_refund: bool) -> Result<String, OrchestrationError> {
        if !is_refund {
            let amount: i64 = ctx.wait_for_event("amount").await?;
            Ok(ctx.call_activity(charge, amount).await?)
        } else {
            let amount: i64 = ctx.wait_for_event("amount").await?;
            Ok(ctx.call_activity(refund, amount).await?)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_branches_with_the_same_await_do_not_cross_over() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let old = worker(&backend).orchestrator(pay_old::pay).start().await.unwrap();
    let id = client.start(pay_old::pay, true).await.unwrap().into_string();
    parked_at(&client, &id, "ctx.wait_for_event(\"amount\")").await;
    old.shutdown().await.unwrap();

    let new = worker(&backend).orchestrator(pay_new::pay).start().await.unwrap();
    client.raise_event(&id, "amount", 5).await.unwrap();
    let s = settled(&client, &id).await;
    println!("status: {:?} output {:?} reason {:?}", s.runtime_status, s.output, s.reason);
    if s.runtime_status == RuntimeStatus::Completed {
        assert_eq!(s.output.as_deref(), Some("\"refunded 5\""), "a refund instance was charged");
    }
    new.shutdown().await.unwrap();
}

/// The same, checked the way CI is told to check a deploy: `check_resume` approves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_resume_approves_the_swapped_branches() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let old = worker(&backend).orchestrator(pay_old::pay).start().await.unwrap();
    let id = client.start(pay_old::pay, true).await.unwrap().into_string();
    parked_at(&client, &id, "ctx.wait_for_event(\"amount\")").await;
    old.shutdown().await.unwrap();
    let line = serde_json::to_string(&client.export_in_flight(Some("pay")).await.unwrap()[0]).unwrap();
    let check = durable::testing::check_resume::<pay_new::pay>(&line);
    println!("check_resume: {check:?}");
    // Resuming by the snapshot is wrong here; resuming by the history replayed is right (the
    // replay through the new code goes down the refund branch).
    assert!(!matches!(check, Ok(ref c) if !c.by_replay), "check_resume approves a wrong resume: {check:?}");
}

// =====================================================================================
// Finding 3: an instance started on a version the worker that takes its first step does not
// register is stranded: the `Start` message is acknowledged while the instance is blocked,
// so deploying that version later never starts it.
// =====================================================================================

#[orchestrator(name = "late", version = 1)]
async fn late_v1(_ctx: OrchestrationContext, n: u32) -> Result<String, OrchestrationError> {
    Ok(format!("v1 {n}"))
}

#[orchestrator(name = "late", version = 2)]
async fn late_v2(_ctx: OrchestrationContext, n: u32) -> Result<String, OrchestrationError> {
    Ok(format!("v2 {n}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_on_an_unregistered_version_starts_once_that_version_is_deployed() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    // A client built from the new code starts version 2 while the workers still run version 1.
    let w1 = worker(&backend).orchestrator(late_v1).start().await.unwrap();
    let id = client.start(late_v2, 7).await.unwrap().into_string();
    let s = eventually_some("blocked", async || client.status(&id).await.unwrap().filter(|s| s.blocked)).await;
    println!("blocked on the old worker: {:?} {:?}", s.runtime_status, s.reason);
    assert!(s.reason.as_deref().unwrap_or_default().contains("waits until then"), "{s:?}");
    w1.shutdown().await.unwrap();
    // Version 2 is deployed: the message above promised the instance would run now.
    let w2 = worker(&backend).orchestrator(late_v1).orchestrator(late_v2).start().await.unwrap();
    let done = client.wait_for_completion(&id, Duration::from_secs(3)).await;
    println!("after deploying version 2: {done:?}");
    println!("history: {:?}", client.history(&id).await.unwrap());
    let done = done.expect("the instance never started after version 2 was deployed");
    assert_eq!(done.output::<String>().unwrap(), "v2 7");
    w2.shutdown().await.unwrap();
}

// =====================================================================================
// Finding 4: a snapshot of the very same body (same fingerprint) is never probed, so the
// replay fallback and newer versions are never tried for it, and `check_resume` approves a
// snapshot that the worker then refuses. Example: the body is unchanged, a struct kept in a
// local gained a field. (Two builds with the same type path are simulated: `Order` of the old
// module, its type name rewritten to the new module's path, as after a real redeploy where
// the struct kept its path.)
// =====================================================================================

mod shape_old {
    use super::*;
    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub struct Order {
        pub id: u32,
    }
    impl Order {
        pub fn new(id: u32) -> Self {
            Order { id }
        }
    }
    #[orchestrator(name = "shape")]
    pub async fn shape(ctx: OrchestrationContext, id: u32) -> Result<u32, OrchestrationError> {
        let order = Order::new(id);
        let _: () = ctx.wait_for_event("go").await?;
        Ok(order.id)
    }
}

mod shape_new {
    use super::*;
    #[derive(Serialize, Deserialize, Debug, Clone)]
    pub struct Order {
        pub id: u32,
        pub qty: u32,
    }
    impl Order {
        pub fn new(id: u32) -> Self {
            Order { id, qty: 1 }
        }
    }
    #[orchestrator(name = "shape")]
    pub async fn shape(ctx: OrchestrationContext, id: u32) -> Result<u32, OrchestrationError> {
        let order = Order::new(id);
        let _: () = ctx.wait_for_event("go").await?;
        Ok(order.id)
    }
}

/// Rewrite the type names a snapshot records (`from` → `to`), as a redeploy would see them.
fn retype_state(state: &[u8], from: &str, to: &str) -> Vec<u8> {
    let mut st: durable::payload::Snapshot = durable::payload::from_state(state).unwrap();
    for t in &mut st.types {
        *t = t.replace(from, to);
    }
    durable::payload::to_state(&st).unwrap()
}

fn retype_exported(line: &str, from: &str, to: &str) -> String {
    let mut e: ExportedInstance = serde_json::from_str(line).unwrap();
    let bytes = e.snapshot_bytes().unwrap().unwrap();
    let mut snap = durable::state::Snapshot::from_bytes(&bytes).unwrap();
    snap.state = retype_state(&snap.state, from, to);
    let out = snap.to_bytes().unwrap();
    e.snapshot = Some(out.iter().map(|b| format!("{b:02x}")).collect());
    serde_json::to_string(&e).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_body_snapshot_that_does_not_decode_is_checked_and_falls_back_to_replay() {
    assert_eq!(shape_old::shape::FINGERPRINT, shape_new::shape::FINGERPRINT, "same body, same fingerprint");
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let old = worker(&backend).orchestrator(shape_old::shape).start().await.unwrap();
    let id = client.start(shape_old::shape, 3).await.unwrap().into_string();
    parked_at(&client, &id, "ctx.wait_for_event(\"go\")").await;
    old.shutdown().await.unwrap();
    let line = serde_json::to_string(&client.export_in_flight(Some("shape")).await.unwrap()[0]).unwrap();
    let line = retype_exported(&line, "shape_old::Order", "shape_new::Order");

    // What the worker's step does with it: refuses it (the struct does not decode).
    let e: ExportedInstance = serde_json::from_str(&line).unwrap();
    let snap = durable::state::Snapshot::from_bytes(&e.snapshot_bytes().unwrap().unwrap()).unwrap();
    let ctx = OrchestrationContext::new(&id, 0, snap.runtime.clone());
    let stepped = shape_new::shape::__step(&ctx, StepInput::Resume(&snap.state));
    println!("the step: {stepped:?}");
    assert!(matches!(stepped, StepResult::BadState(_)), "{stepped:?}");
    // The history replays through the new code without trouble.
    let replayed = durable::engine::replay_orchestrator::<shape_new::shape>(&id, &e.history).unwrap();
    assert!(replayed.snapshot.is_some());
    // So a worker should resume it by replay; `check_resume` (what the worker decides) says
    // it resumes from the snapshot, which the step then refuses: the worker blocks it.
    let check = durable::testing::check_resume::<shape_new::shape>(&line);
    println!("check_resume: {check:?}");
    assert_eq!(check, Ok(durable::testing::ResumeCheck { version: 1, by_replay: true }));
}

mod helper_old {
    use super::*;
    pub fn limit() -> u32 {
        10
    }
    #[orchestrator(name = "limit")]
    pub async fn limited(ctx: OrchestrationContext, _n: u32) -> Result<String, OrchestrationError> {
        let max = limit();
        let got: u32 = ctx.wait_for_event("go").await?;
        Ok(format!("{got} of {max}"))
    }
}

/// The orchestrator's body is token for token the same; only a helper outside it changed its
/// return type. Same fingerprint, so the snapshot is taken as "same code".
mod helper_new {
    use super::*;
    pub fn limit() -> u64 {
        10
    }
    #[orchestrator(name = "limit")]
    pub async fn limited(ctx: OrchestrationContext, _n: u32) -> Result<String, OrchestrationError> {
        let max = limit();
        let got: u32 = ctx.wait_for_event("go").await?;
        Ok(format!("{got} of {max}"))
    }
}

/// End to end, no simulation: a helper outside the body changed the type of a live local.
/// The worker blocks the instance although the history replays through the new code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_body_whose_local_changed_type_resumes_by_replay() {
    assert_eq!(helper_old::limited::FINGERPRINT, helper_new::limited::FINGERPRINT);
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let old = worker(&backend).orchestrator(helper_old::limited).start().await.unwrap();
    let id = client.start(helper_old::limited, 0).await.unwrap().into_string();
    parked_at(&client, &id, "ctx.wait_for_event(\"go\")").await;
    old.shutdown().await.unwrap();
    let line = serde_json::to_string(&client.export_in_flight(Some("limit")).await.unwrap()[0]).unwrap();
    let e: ExportedInstance = serde_json::from_str(&line).unwrap();
    assert!(durable::engine::replay_orchestrator::<helper_new::limited>(&id, &e.history).unwrap().snapshot.is_some());
    println!("check_resume: {:?}", durable::testing::check_resume::<helper_new::limited>(&line));
    let new = worker(&backend).orchestrator(helper_new::limited).start().await.unwrap();
    client.raise_event(&id, "go", 3).await.unwrap();
    let s = settled(&client, &id).await;
    println!("status: {:?} output {:?} blocked {} reason {:?}", s.runtime_status, s.output, s.blocked, s.reason);
    assert_eq!(s.output.as_deref(), Some("\"3 of 10\""));
    new.shutdown().await.unwrap();
}

/// The same, for a wide fan-out whose task table is kept apart from its snapshot: the step of
/// the same code takes the table and refuses the snapshot; the table is read again and the
/// instance resumes by replay, each activity's result counted once.
mod wide_old {
    use super::*;
    #[activity]
    pub async fn triple(x: u64) -> Result<u64, ActivityError> {
        Ok(3 * x)
    }
    pub fn limit() -> u32 {
        10
    }
    #[orchestrator(name = "wide_limit")]
    pub async fn wide_limited(ctx: OrchestrationContext, n: u64) -> Result<String, OrchestrationError> {
        let max = limit();
        let tasks: Vec<_> = (1..=n).map(|i| ctx.call_activity(triple, i)).collect();
        let got = ctx.when_all(tasks).await?;
        Ok(format!("{} of {max}", got.iter().sum::<u64>()))
    }
}

mod wide_new {
    pub use super::wide_old::triple;
    use super::*;
    pub fn limit() -> u64 {
        10
    }
    #[orchestrator(name = "wide_limit")]
    pub async fn wide_limited(ctx: OrchestrationContext, n: u64) -> Result<String, OrchestrationError> {
        let max = limit();
        let tasks: Vec<_> = (1..=n).map(|i| ctx.call_activity(triple, i)).collect();
        let got = ctx.when_all(tasks).await?;
        Ok(format!("{} of {max}", got.iter().sum::<u64>()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wide_fan_out_whose_own_code_refuses_its_split_snapshot_resumes_by_replay() {
    assert_eq!(wide_old::wide_limited::FINGERPRINT, wide_new::wide_limited::FINGERPRINT);
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    // Parked on 40 activities no worker runs yet: its table (40 open tasks) kept apart.
    let old = Worker::builder_arc(backend.clone())
        .orchestrator(wide_old::wide_limited)
        .task_table_apart_from(4)
        .start()
        .await
        .unwrap();
    let id = client.start(wide_old::wide_limited, 40).await.unwrap().into_string();
    parked_at(&client, &id, "ctx.when_all(tasks)").await;
    let bytes = eventually_some("the split snapshot", async || {
        backend.snapshot_table(&id).await.ok().filter(|t| t.len() == 40)
    })
    .await;
    assert_eq!(bytes.len(), 40);
    old.shutdown().await.unwrap();
    let new = worker(&backend)
        .orchestrator(wide_new::wide_limited)
        .activity(wide_new::triple)
        .task_table_apart_from(4)
        .start()
        .await
        .unwrap();
    let s = settled(&client, &id).await;
    assert_eq!(s.output.as_deref(), Some(format!("\"{} of 10\"", 3 * 40 * 41 / 2).as_str()), "{s:?}");
    let history = client.history(&id).await.unwrap();
    let completed = history.iter().filter(|e| matches!(e.kind, EventKind::TaskCompleted { .. })).count();
    assert_eq!(completed, 40, "{history:?}");
    new.shutdown().await.unwrap();
}

/// The same fast path with the very same code: `std::any::type_name` is documented as unstable
/// across compiler releases; a toolchain upgrade that renders a type name differently
/// (simulated: the saved `durable_runtime::task::Task<u32>` written as an older rustc might
/// have, `Task<u32>`) blocks every in-flight instance, and neither the replay nor any other
/// version is tried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_code_after_a_toolchain_upgrade_falls_back_to_replay() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let w = worker(&backend).orchestrator(evt_u32::evt).start().await.unwrap();
    let id = client.start(evt_u32::evt, 1).await.unwrap().into_string();
    parked_at(&client, &id, "ctx.wait_for_event(\"e\")").await;
    w.shutdown().await.unwrap();
    let line = serde_json::to_string(&client.export_in_flight(Some("evt")).await.unwrap()[0]).unwrap();
    let line = retype_exported(&line, "durable_runtime::task::Task<u32>", "Task<u32>");
    let e: ExportedInstance = serde_json::from_str(&line).unwrap();
    let snap = durable::state::Snapshot::from_bytes(&e.snapshot_bytes().unwrap().unwrap()).unwrap();
    let ctx = OrchestrationContext::new(&id, 0, snap.runtime.clone());
    let stepped = evt_u32::evt::__step(&ctx, StepInput::Resume(&snap.state));
    println!("the step: {stepped:?}");
    assert!(matches!(stepped, StepResult::BadState(_)));
    assert!(durable::engine::replay_orchestrator::<evt_u32::evt>(&id, &e.history).unwrap().snapshot.is_some());
    let check = durable::testing::check_resume::<evt_u32::evt>(&line);
    println!("check_resume: {check:?}");
    assert_eq!(check, Ok(durable::testing::ResumeCheck { version: 1, by_replay: true }));
}

// =====================================================================================
// Finding 5: with the same fingerprint, `load_state` trusts `pc` alone and never checks that
// the site at `pc` has the snapshot's key. A lowering change in a new release of the macro
// crate (same body text, other program counters) would resume at the wrong await.
// Simulated by pointing a snapshot's `pc` at another site of the same body.
// =====================================================================================

mod two_sites {
    use super::*;
    #[orchestrator(name = "two_sites")]
    pub async fn two_sites(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
        let _: () = ctx.wait_for_event("first").await?;
        let _: () = ctx.wait_for_event("second").await?;
        Ok(n)
    }
}

#[test]
fn a_snapshot_whose_pc_disagrees_with_its_key_resumes_at_its_key() {
    let ctx = OrchestrationContext::new("i-1", 0, RuntimeState::default());
    let StepResult::Suspended(bytes) = two_sites::two_sites::__step(&ctx, StepInput::Start("5")) else { panic!() };
    let mut st: durable::payload::Snapshot = durable::payload::from_state(&bytes).unwrap();
    assert_eq!(st.at, "ctx.wait_for_event(\"first\")");
    // Another pc of this body (the resume block of an await): try them all.
    let original = st.pc;
    let mut accepted = Vec::new();
    for pc in 0..64u32 {
        if pc == original {
            continue;
        }
        st.pc = pc;
        let forged = durable::payload::to_state(&st).unwrap();
        let ctx = OrchestrationContext::new("i-1", 0, RuntimeState::default());
        match two_sites::two_sites::__step(&ctx, StepInput::Resume(&forged)) {
            StepResult::BadState(_) => {}
            StepResult::Suspended(again) => {
                let at = durable::payload::state_to_json(&again)["at"].clone();
                if at != "ctx.wait_for_event(\"first\")" {
                    accepted.push(format!("pc {pc} resumed; now at {at}"));
                }
            }
            other => accepted.push(format!("pc {pc}: {other:?}")),
        }
    }
    // Fixed: a `pc` that does not hold the saved key is not trusted; the key decides.
    println!("{accepted:#?}");
    assert!(accepted.is_empty(), "a snapshot at `first` was resumed elsewhere: {accepted:?}");
}

// =====================================================================================
// Finding 6 (fixed): a checkpoint name used twice is a compile error
// (tests/ui/orchestrator/fail/checkpoint-name-used-twice.rs).
// =====================================================================================

// =====================================================================================
// Finding 7 (message): the reason names the lowering's temporaries (`__durable_task`) and full
// type paths of the runtime's task type, not "the awaited task's result type changed".
// =====================================================================================

mod evt_u32 {
    use super::*;
    #[orchestrator(name = "evt")]
    pub async fn evt(ctx: OrchestrationContext, n: u32) -> Result<String, OrchestrationError> {
        let v: u32 = ctx.wait_for_event("e").await?;
        Ok(format!("{n} {v}"))
    }
}

mod evt_string {
    use super::*;
    #[orchestrator(name = "evt")]
    pub async fn evt(ctx: OrchestrationContext, n: u32) -> Result<String, OrchestrationError> {
        let v: String = ctx.wait_for_event("e").await?;
        Ok(format!("{n} {v}"))
    }
}

#[test]
fn the_awaited_tasks_output_type_changed_is_refused_in_words() {
    let ctx = OrchestrationContext::new("i-1", 0, RuntimeState::default());
    let StepResult::Suspended(s) = evt_u32::evt::__step(&ctx, StepInput::Start("1")) else { panic!() };
    let ctx = OrchestrationContext::new("i-1", 0, RuntimeState::default());
    match evt_string::evt::__step(&ctx, StepInput::Resume(&s)) {
        StepResult::BadState(msg) => {
            println!("reason: {msg}");
            assert!(msg.contains("the awaited task at `ctx.wait_for_event(\"e\")`"), "{msg}");
            assert!(!msg.contains("__durable_task"), "{msg}");
        }
        other => panic!("a task of another output type must be refused: {other:?}"),
    }
}

// =====================================================================================
// Finding 1b (same root cause as 1: positional names): the iterator states of nested `for`
// loops are saved as `__durable_iter` and `__durable_iter#1` by nesting position. Swapping
// the nesting of two loops keeps the key, the user's local names and all types, so the
// instance resumes with the outer loop's remaining range driving the inner loop and back:
// it processes a `round` that does not exist and repeats pairs.
// =====================================================================================

mod grid_old {
    use super::*;
    #[orchestrator(name = "grid")]
    pub async fn grid(ctx: OrchestrationContext, _n: u32) -> Result<Vec<(u32, u32)>, OrchestrationError> {
        let mut done: Vec<(u32, u32)> = Vec::new();
        for round in 0..2u32 {
            for item in 0..3u32 {
                let _: () = ctx.wait_for_event("tick").await?;
                done.push((round, item));
            }
        }
        Ok(done)
    }
}

mod grid_new {
    use super::*;
    #[orchestrator(name = "grid")]
    pub async fn grid(ctx: OrchestrationContext, _n: u32) -> Result<Vec<(u32, u32)>, OrchestrationError> {
        let mut done: Vec<(u32, u32)> = Vec::new();
        for item in 0..3u32 {
            for round in 0..2u32 {
                let _: () = ctx.wait_for_event("tick").await?;
                done.push((round, item));
            }
        }
        Ok(done)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_loop_nesting_does_not_cross_the_iterator_states() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let old = worker(&backend).orchestrator(grid_old::grid).start().await.unwrap();
    let id = client.start(grid_old::grid, 0).await.unwrap().into_string();
    parked_at(&client, &id, "ctx.wait_for_event(\"tick\")").await;
    client.raise_event(&id, "tick", ()).await.unwrap();
    eventually_some("(0, 0) done", async || {
        let st = client.state(&id).await.unwrap()?;
        (st["locals"]["done"].as_array()?.len() == 1).then_some(())
    })
    .await;
    println!("old state: {}", client.state(&id).await.unwrap().unwrap());
    old.shutdown().await.unwrap();

    let new = worker(&backend).orchestrator(grid_new::grid).start().await.unwrap();
    let mut status = None;
    for _ in 0..10 {
        client.raise_event(&id, "tick", ()).await.unwrap();
        let s = settled_soon(&client, &id).await;
        if let Some(s) = s {
            status = Some(s);
            break;
        }
    }
    let s = status.expect("neither finished nor blocked after 10 ticks");
    println!("status: {:?} output {:?} reason {:?}", s.runtime_status, s.output, s.reason);
    if s.runtime_status == RuntimeStatus::Completed {
        let mut pairs: Vec<(u32, u32)> = serde_json::from_str(s.output.as_deref().unwrap()).unwrap();
        pairs.sort();
        assert_eq!(pairs, vec![(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)], "each pair exactly once");
    }
    new.shutdown().await.unwrap();
}

/// Finished or blocked within a short while, else `None`.
async fn settled_soon(client: &Client, id: &str) -> Option<InstanceStatus> {
    for _ in 0..40 {
        if let Some(s) = client.status(id).await.unwrap().filter(|s| s.blocked || s.runtime_status.is_terminal()) {
            return Some(s);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

// =====================================================================================
// Finding 3b: the same stranding for a sub-orchestration whose version the worker that takes
// the child's first step does not register: the child never starts, the parent waits forever.
// =====================================================================================

#[orchestrator(name = "parent_of_late")]
async fn parent_of_late(ctx: OrchestrationContext, n: u32) -> Result<String, OrchestrationError> {
    Ok(ctx.call_orchestrator(late_v2, n).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_on_an_unregistered_version_starts_once_that_version_is_deployed() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let w1 = worker(&backend).orchestrator(parent_of_late).orchestrator(late_v1).start().await.unwrap();
    let id = client.start(parent_of_late, 4).await.unwrap().into_string();
    let child = eventually_some("the child is blocked", async || {
        let page = client.list(durable::InstanceQuery::default()).await.unwrap();
        page.instances.into_iter().find(|s| s.name == "late" && s.blocked)
    })
    .await;
    println!("child blocked: {:?}", child.reason);
    w1.shutdown().await.unwrap();
    let w2 = worker(&backend)
        .orchestrator(parent_of_late)
        .orchestrator(late_v1)
        .orchestrator(late_v2)
        .start()
        .await
        .unwrap();
    let done = client.wait_for_completion(&id, Duration::from_secs(3)).await;
    println!("parent after deploying version 2: {done:?}");
    assert_eq!(done.expect("the parent never finished").output::<String>().unwrap(), "v2 4");
    w2.shutdown().await.unwrap();
}

// =====================================================================================
// Finding 1c (same root cause): spilled operands are saved as `__durable_arg`, `__durable_arg#1`
// by position. Reordering a helper's parameters together with its call (a refactor that keeps
// the meaning) keeps the key of the last await, the names and the types: the instance resumes
// with the two values crossed.
// =====================================================================================

#[activity]
async fn fetch(what: String) -> Result<i64, ActivityError> {
    Ok(match what.as_str() {
        "base" => 1,
        "tax" => 2,
        _ => 0,
    })
}

/// `base * 100 + tax * 10 + fee`.
fn price(base: i64, tax: i64, fee: i64) -> i64 {
    base * 100 + tax * 10 + fee
}

/// The same, parameters reordered.
fn price_tax_first(tax: i64, base: i64, fee: i64) -> i64 {
    base * 100 + tax * 10 + fee
}

mod price_old {
    use super::*;
    #[orchestrator(name = "price")]
    pub async fn quote(ctx: OrchestrationContext, _n: u32) -> Result<i64, OrchestrationError> {
        Ok(price(
            ctx.call_activity(fetch, "base".to_string()).await?,
            ctx.call_activity(fetch, "tax".to_string()).await?,
            ctx.wait_for_event("fee").await?,
        ))
    }
}

mod price_new {
    use super::*;
    #[orchestrator(name = "price")]
    pub async fn quote(ctx: OrchestrationContext, _n: u32) -> Result<i64, OrchestrationError> {
        Ok(price_tax_first(
            ctx.call_activity(fetch, "tax".to_string()).await?,
            ctx.call_activity(fetch, "base".to_string()).await?,
            ctx.wait_for_event("fee").await?,
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_operands_are_not_crossed() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let old = worker(&backend).orchestrator(price_old::quote).start().await.unwrap();
    let id = client.start(price_old::quote, 0).await.unwrap().into_string();
    parked_at(&client, &id, "ctx.wait_for_event(\"fee\")").await;
    println!("old state: {}", client.state(&id).await.unwrap().unwrap());
    old.shutdown().await.unwrap();
    let new = worker(&backend).orchestrator(price_new::quote).start().await.unwrap();
    client.raise_event(&id, "fee", 3).await.unwrap();
    let s = settled(&client, &id).await;
    println!("status: {:?} output {:?} reason {:?}", s.runtime_status, s.output, s.reason);
    if s.runtime_status == RuntimeStatus::Completed {
        assert_eq!(s.output.as_deref(), Some("123"), "base and tax crossed");
    }
    new.shutdown().await.unwrap();
}

// =====================================================================================
// Finding 8: an instance resumed by the snapshot's key with code that differs before the
// suspension point (the designed case) can no longer be rewound: rewind replays the whole
// history through the current code, which no longer reproduces the first steps.
// =====================================================================================

static FLAKY_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Fails the first time it runs, then succeeds.
#[activity]
async fn flaky(n: i64) -> Result<i64, ActivityError> {
    if !FLAKY_FAILED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Err("first attempt fails".into());
    }
    Ok(n)
}

mod rw_old {
    use super::*;
    #[orchestrator(name = "rw")]
    pub async fn rw(ctx: OrchestrationContext, _n: u32) -> Result<i64, OrchestrationError> {
        let b: i64 = ctx.wait_for_event("go").await?;
        Ok(ctx.call_activity(flaky, b).await?)
    }
}

/// A custom status added before the suspension point: resumed by key (as designed).
mod rw_new {
    use super::*;
    #[orchestrator(name = "rw")]
    pub async fn rw(ctx: OrchestrationContext, _n: u32) -> Result<i64, OrchestrationError> {
        ctx.set_custom_status("waiting for go");
        let b: i64 = ctx.wait_for_event("go").await?;
        Ok(ctx.call_activity(flaky, b).await?)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_resumed_by_key_can_be_rewound() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let old = worker(&backend).orchestrator(rw_old::rw).start().await.unwrap();
    let id = client.start(rw_old::rw, 0).await.unwrap().into_string();
    parked_at(&client, &id, "ctx.wait_for_event(\"go\")").await;
    old.shutdown().await.unwrap();
    let new = worker(&backend).orchestrator(rw_new::rw).start().await.unwrap();
    client.raise_event(&id, "go", 5).await.unwrap();
    let failed = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(failed.runtime_status, RuntimeStatus::Failed, "{failed:?}");
    client.rewind(&id, "the activity is fixed").await.unwrap();
    let s = eventually_some("rewound or refused", async || {
        let s = client.status(&id).await.unwrap()?;
        (s.runtime_status != RuntimeStatus::Failed || s.reason.is_some()).then_some(s)
    })
    .await;
    println!("after rewind: {:?} reason {:?}", s.runtime_status, s.reason);
    let done = client.wait_for_completion(&id, Duration::from_secs(3)).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{done:?}");
    new.shutdown().await.unwrap();
}

// =====================================================================================
// What held up (these pass).
// =====================================================================================

mod sum_old {
    use super::*;
    #[orchestrator(name = "sum")]
    pub async fn sum(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
        let a = ctx.call_activity(double, n).await?;
        let b: i64 = ctx.wait_for_event("go").await?;
        Ok(a + b)
    }
}

/// The local renamed (the snapshot does not fit) and the activity's input changed: the replay
/// fallback compares inputs, so neither resumes it.
mod sum_other_input {
    use super::*;
    #[orchestrator(name = "sum")]
    pub async fn sum(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
        let first = ctx.call_activity(double, n + 1).await?;
        let b: i64 = ctx.wait_for_event("go").await?;
        Ok(first + b)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_replay_compares_activity_inputs() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let old = worker(&backend).orchestrator(sum_old::sum).start().await.unwrap();
    let id = client.start(sum_old::sum, 5).await.unwrap().into_string();
    parked_at(&client, &id, "ctx.wait_for_event(\"go\")").await;
    old.shutdown().await.unwrap();
    let line = serde_json::to_string(&client.export_in_flight(Some("sum")).await.unwrap()[0]).unwrap();
    let refused = durable::testing::check_resume::<sum_other_input::sum>(&line).unwrap_err();
    println!("refused: {refused}");
    assert!(refused.contains("the local `a`") || refused.contains("local `first`"), "{refused}");
    assert!(refused.contains("replaying its history through version 1"), "{refused}");
    assert!(refused.contains("\\\"6\\\"") || refused.contains("6"), "{refused}");
}

#[orchestrator(name = "gap", version = 1)]
async fn gap_v1(ctx: OrchestrationContext, n: u32) -> Result<String, OrchestrationError> {
    let s: String = ctx.wait_for_event("go").await?;
    Ok(format!("v1 {n} {s}"))
}

#[orchestrator(name = "gap", version = 2)]
async fn gap_v2(ctx: OrchestrationContext, n: u32) -> Result<String, OrchestrationError> {
    let s: String = ctx.wait_for_event("go").await?;
    Ok(format!("v2 {n} {s}"))
}

#[orchestrator(name = "gap", version = 3)]
async fn gap_v3(ctx: OrchestrationContext, n: u32) -> Result<String, OrchestrationError> {
    let s: String = ctx.wait_for_event("go").await?;
    Ok(format!("v3 {n} {s}"))
}

/// An instance on version 2 with versions 1 and 3 registered: version 3 (newer) resumes it,
/// never version 1; then a worker with version 2 only refuses it, naming version 3; version 3
/// deployed again finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_versions_move_forward_only_and_say_so() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let w = worker(&backend).orchestrator(gap_v2).start().await.unwrap();
    let id = client.start(gap_v2, 1).await.unwrap().into_string();
    parked_at(&client, &id, "ctx.wait_for_event(\"go\")").await;
    w.shutdown().await.unwrap();
    // Versions 1 and 3: an event that does not finish it (another name) moves it to version 3.
    let w = worker(&backend).orchestrator(gap_v1).orchestrator(gap_v3).start().await.unwrap();
    client.raise_event(&id, "other", ()).await.unwrap();
    eventually_some("moved to version 3", async || {
        client.status(&id).await.unwrap().filter(|s| s.version == 3 && !s.blocked).map(|_| ())
    })
    .await;
    w.shutdown().await.unwrap();
    // Version 2 only: refused, with the version to deploy.
    let w = worker(&backend).orchestrator(gap_v2).start().await.unwrap();
    client.raise_event(&id, "go", "x").await.unwrap();
    let s = eventually_some("blocked", async || client.status(&id).await.unwrap().filter(|s| s.blocked)).await;
    let reason = s.reason.unwrap();
    println!("blocked: {reason}");
    assert!(reason.contains("version 3"), "{reason}");
    w.shutdown().await.unwrap();
    let w = worker(&backend).orchestrator(gap_v3).start().await.unwrap();
    let done = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(done.output::<String>().unwrap(), "v3 1 x");
    w.shutdown().await.unwrap();
}

/// `start_by_name` binds the version when the first step runs, on the worker that runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_start_by_name_binds_the_version_at_the_first_step() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let id = client.start_by_name("gap", serde_json::json!(9)).await.unwrap().into_string();
    assert_eq!(client.status(&id).await.unwrap().unwrap().version, 0);
    let w = worker(&backend).orchestrator(gap_v1).orchestrator(gap_v2).start().await.unwrap();
    parked_at(&client, &id, "ctx.wait_for_event(\"go\")").await;
    assert_eq!(client.status(&id).await.unwrap().unwrap().version, 2);
    w.shutdown().await.unwrap();
    let w = worker(&backend).orchestrator(gap_v2).orchestrator(gap_v3).start().await.unwrap();
    client.raise_event(&id, "go", "y").await.unwrap();
    assert_eq!(client.wait_for_completion(&id, WAIT).await.unwrap().output::<String>().unwrap(), "v2 9 y");
    w.shutdown().await.unwrap();
}

/// Same key, the awaited task's output type changed through the `let` annotation (no
/// turbofish): the snapshot is refused (the task's type name differs), and the replay (no
/// command differs) resumes it; the event's data is then decoded as the new type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_an_event_type_changed_by_annotation_is_not_decoded_as_the_old_one() {
    let backend = memory();
    let client = Client::from_arc(backend.clone());
    let w = worker(&backend).orchestrator(evt_u32::evt).start().await.unwrap();
    let id = client.start(evt_u32::evt, 1).await.unwrap().into_string();
    parked_at(&client, &id, "ctx.wait_for_event(\"e\")").await;
    w.shutdown().await.unwrap();
    let line = serde_json::to_string(&client.export_in_flight(Some("evt")).await.unwrap()[0]).unwrap();
    let check = durable::testing::check_resume::<evt_string::evt>(&line).unwrap();
    assert!(check.by_replay, "{check:?}");
    let w = worker(&backend).orchestrator(evt_string::evt).start().await.unwrap();
    client.raise_event(&id, "e", 7).await.unwrap();
    let done = client.wait_for_completion(&id, WAIT).await.unwrap();
    println!("{:?} {:?}", done.runtime_status, done.error);
    assert_eq!(done.runtime_status, RuntimeStatus::Failed);
    assert!(done.error.unwrap().contains("event `e`"));
    w.shutdown().await.unwrap();
}
