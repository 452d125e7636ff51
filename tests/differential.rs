//! Differential tests of the orchestrator compiler: each orchestrator runs (1) as the generated
//! state machine, its state serialized and deserialized at every suspension, and (2) as plain
//! async Rust; both must schedule exactly the same tasks in the same order and give the same
//! outcome.

use durable::prelude::*;
use durable::context::Command;
use durable::testing::{Mock, Reply, Trace, run_direct, run_state_machine};
use std::collections::BTreeMap;

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
            "is_even" => Reply::ok(v.as_i64().unwrap() % 2 == 0),
            "lookup" => match v.as_str().unwrap() {
                "a" => Reply::ok(Some("alpha")),
                "b" => Reply::ok(Some("beta")),
                _ => Reply::ok(None::<String>),
            },
            "maybe" => {
                let n = v.as_i64().unwrap();
                Reply::ok(if n < 3 { Some(n * 10) } else { None })
            }
            "reserve" => {
                let s = v.as_str().unwrap();
                if s.starts_with("bad") { Reply::err(format!("cannot reserve {s}")) } else { Reply::ok(format!("reserved {s}")) }
            }
            "undo" => Reply::ok(format!("undone {}", v.as_str().unwrap())),
            "concat" => Reply::ok(format!("{}{}", v[0].as_str().unwrap(), v[1].as_str().unwrap())),
            "sum" => Reply::ok(v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).sum::<i64>()),
            "half" => Reply::ok(v.as_f64().unwrap() / 2.0),
            other => Reply::err(format!("unknown activity {other}")),
        }
    })
}

/// The scheduled commands, compactly: `name(json input)`, `timer`, `cancel`, `sub name(json)`.
fn calls(t: &Trace) -> Vec<String> {
    t.commands
        .iter()
        .map(|c| match c {
            Command::ScheduleActivity { name, input, .. } => format!("{name}({input})"),
            Command::CreateTimer { .. } => "timer".to_string(),
            Command::CancelTimer { .. } => "cancel".to_string(),
            Command::StartSubOrchestration { name, input, .. } => format!("sub {name}({input})"),
            Command::SendEvent { name, .. } => format!("send {name}"),
        })
        .collect()
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

#[activity]
async fn is_even(n: i64) -> Result<bool, ActivityError> {
    Ok(n % 2 == 0)
}

#[activity]
async fn lookup(key: String) -> Result<Option<String>, ActivityError> {
    Ok(match key.as_str() {
        "a" => Some("alpha".to_string()),
        "b" => Some("beta".to_string()),
        _ => None,
    })
}

#[activity]
async fn maybe(n: i64) -> Result<Option<i64>, ActivityError> {
    Ok(if n < 3 { Some(n * 10) } else { None })
}

#[activity]
async fn reserve(item: String) -> Result<String, ActivityError> {
    if item.starts_with("bad") { Err(format!("cannot reserve {item}").into()) } else { Ok(format!("reserved {item}")) }
}

#[activity]
async fn undo(item: String) -> Result<String, ActivityError> {
    Ok(format!("undone {item}"))
}

#[activity]
async fn concat(a: String, b: String) -> Result<String, ActivityError> {
    Ok(format!("{a}{b}"))
}

#[activity]
async fn sum(v: Vec<i64>) -> Result<i64, ActivityError> {
    Ok(v.iter().sum())
}

#[activity]
async fn half(x: f64) -> Result<f64, ActivityError> {
    Ok(x / 2.0)
}

#[orchestrator]
async fn child(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
    // (Has an await: an orchestrator without any `.await` does not compile, see the report.)
    let d = ctx.call_activity(double, n).await?;
    Ok(format!("child({d})"))
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
enum Shape {
    Circle(i64),
    Rect { w: i64, h: i64 },
    Empty,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Report {
    name: String,
    doubled: i64,
    sum: i64,
    tags: Vec<String>,
}

fn combine(a: i64, b: i64, c: i64) -> i64 {
    a * 100 + b * 10 + c
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

// ---------------------------------------------------------------- let and shadowing

#[orchestrator(differential)]
async fn shadow_across_awaits(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let x = n;
    let x = ctx.call_activity(double, x).await?;
    let x = x + 1;
    // Naming the inner binding `x` too is rejected by the macro (see report: shadowing in an
    // inner block while the outer value is live across an `.await`).
    let y = {
        let x10 = x * 10;
        ctx.call_activity(double, x10).await?
    };
    let x = ctx.call_activity(add, (x, y)).await?;
    Ok(x)
}

#[test]
fn shadowing_across_awaits() {
    let t = diff!(shadow_across_awaits, 1);
    assert_eq!(t.output::<i64>(), 63);
    assert_eq!(calls(&t), ["double(1)", "double(30)", "add([3,60])"]);
}

#[orchestrator(differential)]
async fn shadow_inner_block(ctx: OrchestrationContext, n: i64) -> Result<(String, i64, Vec<String>), OrchestrationError> {
    let s = String::from("outer");
    let mut log = Vec::new();
    let k = n;
    {
        let s = ctx.call_activity(greet, "inner".to_string()).await?;
        log.push(s.clone());
        let k = ctx.call_activity(double, k).await?;
        log.push(format!("{s}:{k}"));
    }
    let k = k + 1;
    log.push(s.clone());
    Ok((s, k, log))
}

#[test]
fn shadowing_in_inner_block_restores_outer() {
    let t = diff!(shadow_inner_block, 5);
    assert_eq!(
        t.output::<(String, i64, Vec<String>)>(),
        ("outer".to_string(), 6, vec!["Hello inner!".to_string(), "Hello inner!:10".into(), "outer".into()])
    );
}

#[orchestrator(differential)]
async fn shadow_in_loop(ctx: OrchestrationContext, n: i64) -> Result<(i64, Vec<i64>), OrchestrationError> {
    let x = n;
    let mut acc = Vec::new();
    for i in 0..3 {
        let x = ctx.call_activity(add, (x, i)).await?;
        let x = x * 2;
        acc.push(x);
    }
    Ok((x, acc))
}

#[test]
fn shadowing_inside_loop_body() {
    let t = diff!(shadow_in_loop, 1);
    assert_eq!(t.output::<(i64, Vec<i64>)>(), (1, vec![2, 4, 6]));
}

// ---------------------------------------------------------------- if / if let / let else

#[orchestrator(differential)]
async fn if_else_chain(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
    let r = if ctx.call_activity(double, n).await? > 100 {
        ctx.call_activity(greet, "big".to_string()).await?
    } else if ctx.call_activity(is_even, n).await? {
        let d = ctx.call_activity(double, n).await?;
        format!("even {d}")
    } else if n < 0 {
        "negative".to_string()
    } else {
        ctx.call_activity(greet, format!("odd {n}")).await?
    };
    Ok(r)
}

#[test]
fn if_else_if_chain_with_awaited_conditions() {
    let t = diff!(if_else_chain, 60);
    assert_eq!(t.output::<String>(), "Hello big!");
    assert_eq!(calls(&t), ["double(60)", "greet(\"big\")"]);
    let t = diff!(if_else_chain, 4);
    assert_eq!(t.output::<String>(), "even 8");
    assert_eq!(calls(&t), ["double(4)", "is_even(4)", "double(4)"]);
    let t = diff!(if_else_chain, -3);
    assert_eq!(t.output::<String>(), "negative");
    assert_eq!(calls(&t).len(), 2);
    let t = diff!(if_else_chain, 7);
    assert_eq!(t.output::<String>(), "Hello odd 7!");
}

#[orchestrator(differential)]
async fn if_let_let_else(ctx: OrchestrationContext, key: String) -> Result<String, OrchestrationError> {
    let found = ctx.call_activity(lookup, key.clone()).await?;
    let mut out = String::new();
    if let Some(v) = ctx.call_activity(lookup, key.clone()).await? {
        out.push_str(&ctx.call_activity(greet, v).await?);
    } else {
        out.push_str("none;");
    }
    // An `.await` in the `else` block is rejected by the macro (see report).
    let Some(v) = found else {
        let n = key.len();
        return Ok(format!("{out}missing {n}"));
    };
    let g = ctx.call_activity(greet, v.clone()).await?;
    Ok(format!("{out}|{g}|{v}"))
}

#[test]
fn if_let_and_let_else() {
    let t = diff!(if_let_let_else, "a".to_string());
    assert_eq!(t.output::<String>(), "Hello alpha!|Hello alpha!|alpha");
    assert_eq!(calls(&t).len(), 4);
    let t = diff!(if_let_let_else, "zzz".to_string());
    assert_eq!(t.output::<String>(), "none;missing 3");
    assert_eq!(calls(&t), ["lookup(\"zzz\")", "lookup(\"zzz\")"]);
}

#[orchestrator(differential)]
async fn if_let_borrow(ctx: OrchestrationContext, key: String) -> Result<String, OrchestrationError> {
    let found = ctx.call_activity(lookup, key).await?;
    let mut out = String::new();
    if let Some(v) = &found {
        let g = ctx.call_activity(greet, v.clone()).await?;
        out.push_str(&g);
    }
    match &found {
        Some(v) if v.len() > 4 => {
            out.push('/');
            out.push_str(&v.to_uppercase());
        }
        Some(v) => {
            out.push('/');
            out.push_str(v);
        }
        None => out.push_str("none"),
    }
    let n = ctx.call_activity(len, out.clone()).await?;
    Ok(format!("{out}#{n}"))
}

#[test]
fn if_let_and_match_on_borrow_not_crossing_awaits() {
    let t = diff!(if_let_borrow, "a".to_string());
    assert_eq!(t.output::<String>(), "Hello alpha!/ALPHA#18");
    let t = diff!(if_let_borrow, "b".to_string());
    assert_eq!(t.output::<String>(), "Hello beta!/beta#16");
    let t = diff!(if_let_borrow, "c".to_string());
    assert_eq!(t.output::<String>(), "none#4");
}

// ---------------------------------------------------------------- match

#[orchestrator(differential)]
async fn match_await(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let r = match ctx.call_activity(double, n).await? {
        0 => -1,
        x if x > 100 => ctx.call_activity(add, (x, 1)).await?,
        2 | 4 | 6 => {
            let y = ctx.call_activity(double, n).await?;
            y * 100
        }
        x => {
            let d = ctx.call_activity(double, x).await?;
            d + x
        }
    };
    Ok(r)
}

#[test]
fn match_with_awaited_scrutinee_guards_and_or_patterns() {
    let t = diff!(match_await, 0);
    assert_eq!(t.output::<i64>(), -1);
    assert_eq!(calls(&t), ["double(0)"]);
    let t = diff!(match_await, 60);
    assert_eq!(t.output::<i64>(), 121);
    let t = diff!(match_await, 2);
    assert_eq!(t.output::<i64>(), 400);
    let t = diff!(match_await, 5);
    assert_eq!(t.output::<i64>(), 30);
    assert_eq!(calls(&t), ["double(5)", "double(10)"]);
}

#[orchestrator(differential)]
async fn match_bindings(ctx: OrchestrationContext, shapes: Vec<Shape>) -> Result<Vec<i64>, OrchestrationError> {
    let mut out = vec![];
    for s in shapes {
        let v = match s {
            Shape::Circle(r) => ctx.call_activity(double, r).await? + r,
            Shape::Rect { w, h } => {
                let a = ctx.call_activity(add, (w, h)).await?;
                let b = ctx.call_activity(double, w).await?;
                a * 100 + b + h
            }
            Shape::Empty => 0,
        };
        out.push(v);
    }
    Ok(out)
}

#[test]
fn match_bindings_by_value_live_across_awaits() {
    let t = diff!(match_bindings, vec![Shape::Circle(5), Shape::Rect { w: 2, h: 3 }, Shape::Empty]);
    assert_eq!(t.output::<Vec<i64>>(), vec![15, 507, 0]);
    assert_eq!(calls(&t), ["double(5)", "add([2,3])", "double(2)"]);
}

#[orchestrator(differential)]
async fn match_ref_names(ctx: OrchestrationContext, names: Vec<String>) -> Result<Vec<String>, OrchestrationError> {
    let mut out = Vec::new();
    for name in names {
        let kind = match &name {
            s if s.is_empty() => "empty".to_string(),
            s if s.starts_with('x') => "x".to_string(),
            _ => "plain".to_string(),
        };
        let g = ctx.call_activity(greet, name.clone()).await?;
        match &g {
            s if s.len() > 10 => out.push(format!("{kind}:long:{s}")),
            s => out.push(format!("{kind}:short:{s}")),
        }
    }
    Ok(out)
}

#[test]
fn match_on_reference_with_guards() {
    let t = diff!(match_ref_names, vec!["".to_string(), "xy".into(), "Bob".into(), "Alexander".into()]);
    assert_eq!(
        t.output::<Vec<String>>(),
        vec!["empty:short:Hello !", "x:short:Hello xy!", "plain:short:Hello Bob!", "plain:long:Hello Alexander!"]
    );
}

#[orchestrator(differential)]
async fn match_tuple_scrutinee(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
    let r = match (ctx.call_activity(double, n).await?, ctx.call_activity(is_even, n).await?) {
        (d, true) if d > 10 => format!("big even {d}"),
        // `format!("…", task.await?)` does not compile (see report): bind first.
        (d, true) => {
            let a = ctx.call_activity(add, (d, 1)).await?;
            format!("small even {a}")
        }
        (_, false) => {
            let g = ctx.call_activity(greet, n.to_string()).await?;
            g
        }
    };
    Ok(r)
}

#[test]
fn match_on_tuple_of_awaits() {
    let t = diff!(match_tuple_scrutinee, 8);
    assert_eq!(t.output::<String>(), "big even 16");
    let t = diff!(match_tuple_scrutinee, 2);
    assert_eq!(t.output::<String>(), "small even 5");
    assert_eq!(calls(&t), ["double(2)", "is_even(2)", "add([4,1])"]);
    let t = diff!(match_tuple_scrutinee, 3);
    assert_eq!(t.output::<String>(), "Hello 3!");
}

// ---------------------------------------------------------------- loops

#[orchestrator(differential)]
async fn loop_break_value(ctx: OrchestrationContext, n: i64) -> Result<(i64, i64), OrchestrationError> {
    let mut x = n;
    let mut count = 0;
    let r = loop {
        x = ctx.call_activity(double, x).await?;
        count += 1;
        if x > 100 {
            break x - 100;
        }
    };
    Ok((r, count))
}

#[test]
fn loop_with_break_value() {
    let t = diff!(loop_break_value, 3);
    assert_eq!(t.output::<(i64, i64)>(), (92, 6));
    assert_eq!(t.steps, 7);
}

#[orchestrator(differential)]
async fn while_await_cond(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let mut x = n;
    let mut steps = 0;
    while ctx.call_activity(double, x).await? < 50 {
        x = ctx.call_activity(add, (x, 7)).await?;
        steps += 1;
    }
    Ok(x * 1000 + steps)
}

#[test]
fn while_with_awaited_condition() {
    let t = diff!(while_await_cond, 1);
    assert_eq!(t.output::<i64>(), 29004);
    assert_eq!(calls(&t).len(), 9);
}

#[orchestrator(differential)]
async fn while_and_cond(ctx: OrchestrationContext, n: i64) -> Result<Vec<i64>, OrchestrationError> {
    let mut i = 0;
    let mut out = vec![];
    while i < n && !ctx.call_activity(is_even, i * 3 + 1).await? {
        i += 1;
        if i == 2 {
            continue;
        }
        out.push(ctx.call_activity(double, i).await?);
    }
    Ok(out)
}

#[test]
fn while_condition_with_short_circuit_await_and_continue() {
    // i*3+1 is odd for even i, so the loop stops at the first odd i.
    let t = diff!(while_and_cond, 10);
    assert_eq!(t.output::<Vec<i64>>(), vec![2]);
    assert_eq!(calls(&t), ["is_even(1)", "double(1)", "is_even(4)"]);
    let t = diff!(while_and_cond, 0);
    assert_eq!(t.output::<Vec<i64>>(), Vec::<i64>::new());
    assert!(calls(&t).is_empty());
}

#[orchestrator(differential)]
async fn while_let_pop(ctx: OrchestrationContext, v: Vec<i64>) -> Result<Vec<i64>, OrchestrationError> {
    let mut stack = v;
    let mut out = vec![];
    while let Some(top) = stack.pop() {
        if top < 0 {
            continue;
        }
        let d = ctx.call_activity(double, top).await?;
        if d > 100 {
            break;
        }
        out.push(d);
    }
    Ok(out)
}

#[test]
fn while_let_over_a_stack() {
    let t = diff!(while_let_pop, vec![60, 1, -2, 3]);
    assert_eq!(t.output::<Vec<i64>>(), vec![6, 2]);
    assert_eq!(calls(&t), ["double(3)", "double(1)", "double(60)"]);
}

#[orchestrator(differential)]
async fn while_let_await(ctx: OrchestrationContext, _n: i64) -> Result<(i64, Vec<i64>), OrchestrationError> {
    let mut i = 0;
    let mut acc = vec![];
    while let Some(v) = ctx.call_activity(maybe, i).await? {
        acc.push(v);
        i += 1;
    }
    Ok((i, acc))
}

#[test]
fn while_let_with_awaited_scrutinee() {
    let t = diff!(while_let_await, 0);
    assert_eq!(t.output::<(i64, Vec<i64>)>(), (3, vec![0, 10, 20]));
    assert_eq!(calls(&t).len(), 4);
}

#[orchestrator(differential)]
async fn labeled_loops(ctx: OrchestrationContext, n: i64) -> Result<Vec<(i64, i64)>, OrchestrationError> {
    let mut hits = vec![];
    'outer: for i in 0..n {
        let mut j = 0;
        'inner: loop {
            j += 1;
            if j > 3 {
                break 'inner;
            }
            if (i + j) % 2 == 0 {
                continue 'inner;
            }
            let s = ctx.call_activity(add, (i, j)).await?;
            if s == 5 {
                continue 'outer;
            }
            if s > 6 {
                break 'outer;
            }
            hits.push((i, s));
        }
    }
    Ok(hits)
}

#[test]
fn labeled_break_and_continue_across_nested_loops() {
    let t = diff!(labeled_loops, 10);
    assert_eq!(t.output::<Vec<(i64, i64)>>(), vec![(0, 1), (0, 3), (1, 3), (2, 3)]);
    assert_eq!(
        calls(&t),
        ["add([0,1])", "add([0,3])", "add([1,2])", "add([2,1])", "add([2,3])", "add([3,2])", "add([4,1])", "add([5,2])"]
    );
}

#[orchestrator(differential)]
async fn break_outer_from_plain_inner(ctx: OrchestrationContext, v: Vec<Vec<i64>>) -> Result<(i64, i64), OrchestrationError> {
    let mut total = 0;
    let mut rows = 0;
    'rows: for row in v {
        let d = ctx.call_activity(double, row.len() as i64).await?;
        total += d;
        for x in row {
            if x < 0 {
                break 'rows;
            }
            if x == 0 {
                continue 'rows;
            }
            total += x;
        }
        rows += 1;
    }
    Ok((total, rows))
}

#[test]
fn break_to_awaited_outer_loop_from_inner_loop_without_await() {
    let t = diff!(break_outer_from_plain_inner, vec![vec![1, 2], vec![0, 5], vec![3], vec![4, -1, 9], vec![100]]);
    assert_eq!(t.output::<(i64, i64)>(), (26, 2));
    assert_eq!(calls(&t), ["double(2)", "double(2)", "double(1)", "double(3)"]);
}

#[orchestrator(differential)]
async fn break_value_labeled(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let mut x = n;
    let r = 'outer: loop {
        let mut tries = 0;
        loop {
            x = ctx.call_activity(add, (x, 3)).await?;
            tries += 1;
            if x > 20 {
                break 'outer x * 10 + tries;
            }
            if tries == 2 {
                break;
            }
        }
        x = ctx.call_activity(double, x).await?;
    };
    Ok(r)
}

#[test]
fn labeled_break_with_value_from_inner_loop() {
    let t = diff!(break_value_labeled, 1);
    assert_eq!(t.output::<i64>(), 431);
    assert_eq!(calls(&t).len(), 7);
}

#[orchestrator(differential)]
async fn early_return(ctx: OrchestrationContext, v: Vec<i64>) -> Result<String, OrchestrationError> {
    for x in v {
        let d = ctx.call_activity(double, x).await?;
        match d {
            0 => return Ok("zero".into()),
            d if d > 50 => {
                let g = ctx.call_activity(greet, format!("{d}")).await?;
                return Ok(g);
            }
            _ => {}
        }
    }
    Ok("none".into())
}

#[test]
fn early_return_from_match_inside_loop() {
    let t = diff!(early_return, vec![1, 2, 30, 0]);
    assert_eq!(t.output::<String>(), "Hello 60!");
    assert_eq!(calls(&t).len(), 4);
    let t = diff!(early_return, vec![1, 0, 99]);
    assert_eq!(t.output::<String>(), "zero");
    assert_eq!(calls(&t).len(), 2);
    let t = diff!(early_return, vec![]);
    assert_eq!(t.output::<String>(), "none");
}
