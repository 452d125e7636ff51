//! Differential tests of the orchestrator compiler: each orchestrator runs (1) as the generated
//! state machine, its state serialized and deserialized at every suspension, and (2) as plain
//! async Rust; both must schedule exactly the same tasks in the same order and give the same
//! outcome.

use durable::prelude::*;
use durable::testing::{Mock, Reply, Trace, run_direct, run_state_machine};

/// Activity mock used by every body: `double(n)`, `add((a, b))`, `greet(s)`, `fail(_)`, `len(s)`.
fn mock<'a>() -> Mock<'a> {
    Mock::new(|name, input| {
        let v: serde_json::Value = serde_json::from_str(input).unwrap();
        match name {
            "double" => Reply::ok(v.as_i64().unwrap() * 2),
            "add" => Reply::ok(v[0].as_i64().unwrap() + v[1].as_i64().unwrap()),
            "greet" => Reply::ok(format!("Hello {}!", v.as_str().unwrap())),
            "fail" => Reply::err(format!("failed on {v}")),
            "len" => Reply::ok(v.as_str().unwrap().len()),
            "echo" => Reply::Ok(input.to_string()),
            "child" => Reply::ok(format!("child({v})")),
            other => Reply::err(format!("unknown activity {other}")),
        }
    })
}

fn same(sm: Trace, direct: Trace) -> Trace {
    assert_eq!(sm.commands, direct.commands, "scheduled tasks differ");
    assert_eq!(sm.outcome, direct.outcome, "outcomes differ");
    assert_eq!(sm.continued_as_new, direct.continued_as_new, "continue_as_new differs");
    assert_eq!(sm.steps, direct.steps, "step counts differ");
    sm
}

macro_rules! diff {
    ($orch:ident, $input:expr) => {
        diff!($orch, $input, mock())
    };
    ($orch:ident, $input:expr, $mock:expr) => {{
        let sm = run_state_machine::<$orch>($input, $mock);
        let direct = run_direct($orch::__durable_direct, $input, $mock);
        same(sm, direct)
    }};
}

#[activity]
async fn double(n: i64) -> Result<i64, ActivityError> {
    Ok(n * 2)
}

#[activity]
async fn add(a: i64, b: i64) -> Result<i64, ActivityError> {
    Ok(a + b)
}

#[activity]
async fn greet(name: String) -> Result<String, ActivityError> {
    Ok(format!("Hello {name}!"))
}

#[activity]
async fn fail(what: String) -> Result<i64, ActivityError> {
    Err(format!("failed on {what}").into())
}

#[activity]
async fn len(s: String) -> Result<usize, ActivityError> {
    Ok(s.len())
}

// ---------------------------------------------------------------- bodies

#[orchestrator(differential)]
async fn straight_line(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let a = ctx.call_activity(double, n).await?;
    let b = ctx.call_activity(double, a).await?;
    Ok(a + b)
}

#[test]
fn straight_line_chains_results() {
    let t = diff!(straight_line, 5);
    assert_eq!(t.output::<i64>(), 30);
    assert_eq!(t.commands.len(), 2);
}

#[orchestrator(differential)]
async fn for_loop_collects(ctx: OrchestrationContext, cities: Vec<String>) -> Result<Vec<String>, OrchestrationError> {
    let mut greetings = Vec::new();
    for city in cities {
        greetings.push(ctx.call_activity(greet, city).await?);
    }
    Ok(greetings)
}

#[test]
fn for_loop_over_vec() {
    let t = diff!(for_loop_collects, vec!["Tokyo".to_string(), "Seattle".into(), "London".into()]);
    assert_eq!(t.output::<Vec<String>>(), vec!["Hello Tokyo!", "Hello Seattle!", "Hello London!"]);
}
