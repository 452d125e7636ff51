//! A snapshot written by one body of an orchestrator: the same body resumes it at its program
//! counter; a changed body resumes it when it still has the snapshot's suspension point with the
//! same live locals, and otherwise refuses it with a clear error before running any user code.

use durable::Orchestrator;
use durable::orchestrator::{StepInput, StepResult};
use durable::prelude::*;
use durable::state::RuntimeState;

#[activity]
async fn work(n: u32) -> Result<u32, ActivityError> {
    Ok(n)
}

mod v1 {
    use super::*;
    #[orchestrator(name = "billing")]
    pub async fn billing(ctx: OrchestrationContext, n: u32) -> Result<u32, OrchestrationError> {
        let a = ctx.call_activity(work, n).await?;
        Ok(a + 1)
    }
}

mod v2 {
    use super::*;
    #[orchestrator(name = "billing")]
    pub async fn billing(ctx: OrchestrationContext, n: u32) -> Result<u32, OrchestrationError> {
        let a = ctx.call_activity(work, n).await?;
        let b = ctx.call_activity(work, a).await?;
        Ok(a + b)
    }
}

mod v3 {
    use super::*;
    #[orchestrator(name = "billing")]
    pub async fn billing(ctx: OrchestrationContext, n: u32) -> Result<u32, OrchestrationError> {
        let a = ctx.call_activity(work, n + 1).await?;
        Ok(a + 1)
    }
}

fn first_snapshot<O: Orchestrator>() -> Vec<u8> {
    let ctx = OrchestrationContext::new("i-1", 0, RuntimeState::default());
    match O::__step(&ctx, StepInput::Start("5")) {
        StepResult::Suspended(bytes) => bytes,
        other => panic!("expected a suspension, got {other:?}"),
    }
}

#[test]
fn changed_body_resumes_at_an_unchanged_suspension_point() {
    assert_eq!(v1::billing::NAME, v2::billing::NAME);
    assert_ne!(v1::billing::FINGERPRINT, v2::billing::FINGERPRINT);
    let snapshot = first_snapshot::<v1::billing>();
    let ctx = OrchestrationContext::new("i-1", 0, RuntimeState::default());
    // v2 still awaits `ctx.call_activity(work, n)` first, with the same locals live there.
    match v2::billing::__step(&ctx, StepInput::Resume(&snapshot)) {
        StepResult::Suspended(again) => {
            let st = durable::payload::state_to_json(&again);
            assert_eq!(st["at"], "ctx.call_activity(work, n)", "{st}");
        }
        other => panic!("v2 must resume v1's snapshot, got {other:?}"),
    }
}

#[test]
fn changed_body_refuses_a_snapshot_at_a_point_it_does_not_have() {
    let snapshot = first_snapshot::<v1::billing>();
    let ctx = OrchestrationContext::new("i-1", 0, RuntimeState::default());
    match v3::billing::__step(&ctx, StepInput::Resume(&snapshot)) {
        StepResult::BadState(msg) => {
            assert!(msg.contains("suspended at `ctx.call_activity(work, n)` (line "), "{msg}");
            assert!(msg.contains("does not await any more"), "{msg}");
            assert!(msg.contains("`ctx.call_activity(work, n + 1)`"), "{msg}");
        }
        other => panic!("a body without the suspension point must refuse the snapshot, got {other:?}"),
    }
    assert!(ctx.take_commands().is_empty(), "a refused snapshot must not schedule anything");
}

#[test]
fn same_body_resumes_its_snapshot() {
    let snapshot = first_snapshot::<v1::billing>();
    let ctx = OrchestrationContext::new("i-1", 0, RuntimeState::default());
    // Not ready yet: suspends again at the same point without scheduling anything new.
    match v1::billing::__step(&ctx, StepInput::Resume(&snapshot)) {
        StepResult::Suspended(again) => {
            let a = durable::payload::state_to_json(&snapshot);
            let b = durable::payload::state_to_json(&again);
            assert_eq!(a, b);
            assert_eq!(a["at"], "ctx.call_activity(work, n)");
        }
        other => panic!("expected a suspension, got {other:?}"),
    }
}

#[test]
fn corrupt_snapshot_is_a_clear_error() {
    let ctx = OrchestrationContext::new("i-1", 0, RuntimeState::default());
    match v1::billing::__step(&ctx, StepInput::Resume(b"not a snapshot")) {
        StepResult::BadState(msg) => assert!(msg.contains("billing"), "{msg}"),
        other => panic!("expected BadState, got {other:?}"),
    }
}

#[test]
fn bad_input_names_the_type() {
    let ctx = OrchestrationContext::new("i-1", 0, RuntimeState::default());
    match v1::billing::__step(&ctx, StepInput::Start("\"five\"")) {
        StepResult::BadInput(msg) => {
            assert!(msg.contains("billing") && msg.contains("u32"), "{msg}");
        }
        other => panic!("expected BadInput, got {other:?}"),
    }
}
