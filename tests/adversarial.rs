//! Adversarial tests of the orchestrator compiler: bodies in the styles real users write
//! (ported service code, awaits deep inside expressions, local items, odd types), each run as the
//! generated state machine and as plain async Rust, with concrete expected outputs.

#![allow(clippy::all, unused_variables, unused_mut, unused_assignments, dead_code)]

use durable::context::Command;
use durable::prelude::*;
use durable::testing::{Mock, Reply, Trace, run_direct, run_state_machine};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Activity mock: `double(n)`, `add((a, b))`, `greet(s)`, `fail(_)`, `len(s)`, …
fn mock<'a>() -> Mock<'a> {
    Mock::new(|name, input| {
        let v: serde_json::Value = serde_json::from_str(input).unwrap();
        match name {
            "double" => Reply::ok(v.as_i64().unwrap() * 2),
            "add" => Reply::ok(v[0].as_i64().unwrap() + v[1].as_i64().unwrap()),
            "mul3" => Reply::ok(v[0].as_i64().unwrap() * v[1].as_i64().unwrap() * v[2].as_i64().unwrap()),
            "greet" => Reply::ok(format!("Hello {}!", v.as_str().unwrap())),
            "fail" => Reply::err(format!("failed on {v}")),
            "len" => Reply::ok(v.as_str().unwrap().len()),
            "child" => Reply::ok(format!("child({v})")),
            "grumpy_child" => Reply::err(format!("child refused {v}")),
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
            "half" => Reply::ok(v.as_f64().unwrap() / 2.0),
            "tick" => Reply::ok(7),
            "wide" => Reply::ok(v.as_u64().unwrap().wrapping_add(1)),
            "upper" => Reply::ok(v.as_str().unwrap().to_uppercase()),
            "words" => Reply::ok(v.as_str().unwrap().split_whitespace().collect::<Vec<_>>()),
            "flaky" => {
                // fails until the attempt number (the input) reaches 3
                let n = v.as_i64().unwrap();
                if n < 3 { Reply::err(format!("flaky {n}")) } else { Reply::ok(n * 100) }
            }
            "page" => {
                // cursor-based pagination: pages of two items, four pages in all
                let c = v.as_i64().unwrap();
                let items = vec![c * 10, c * 10 + 1];
                let next = if c < 3 { Some(c + 1) } else { None };
                Reply::ok((items, next))
            }
            other => Reply::err(format!("unknown activity {other}")),
        }
    })
}

/// The scheduled commands, compactly.
fn calls(t: &Trace) -> Vec<String> {
    t.commands
        .iter()
        .map(|c| match c {
            Command::ScheduleActivity { name, input, .. } => format!("{name}({input})"),
            Command::CreateTimer { .. } => "timer".to_string(),
            Command::CancelTimer { .. } => "cancel".to_string(),
            Command::StartSubOrchestration { name, input, .. } => format!("sub {name}({input})"),
            Command::SendEvent { name, .. } => format!("send {name}"),
            other => format!("{other:?}"),
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

// ---------------------------------------------------------------- activities

#[activity]
async fn double(n: i64) -> Result<i64, ActivityError> {
    Ok(n * 2)
}

#[activity]
async fn add(a: i64, b: i64) -> Result<i64, ActivityError> {
    Ok(a + b)
}

#[activity]
async fn mul3(a: i64, b: i64, c: i64) -> Result<i64, ActivityError> {
    Ok(a * b * c)
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
async fn half(x: f64) -> Result<f64, ActivityError> {
    Ok(x / 2.0)
}

#[activity]
async fn tick() -> Result<i64, ActivityError> {
    Ok(7)
}

#[activity]
async fn wide(n: u64) -> Result<u64, ActivityError> {
    Ok(n.wrapping_add(1))
}

#[activity]
async fn upper(s: String) -> Result<String, ActivityError> {
    Ok(s.to_uppercase())
}

#[activity]
async fn words(s: String) -> Result<Vec<String>, ActivityError> {
    Ok(s.split_whitespace().map(String::from).collect())
}

#[activity]
async fn flaky(attempt: i64) -> Result<i64, ActivityError> {
    if attempt < 3 { Err(format!("flaky {attempt}").into()) } else { Ok(attempt * 100) }
}

#[activity]
async fn page(cursor: i64) -> Result<(Vec<i64>, Option<i64>), ActivityError> {
    Ok((vec![cursor * 10, cursor * 10 + 1], if cursor < 3 { Some(cursor + 1) } else { None }))
}

#[orchestrator]
async fn child(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
    let d = ctx.call_activity(double, n).await?;
    Ok(format!("child({d})"))
}

#[orchestrator]
async fn grumpy_child(_ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
    Err(OrchestrationError::new(format!("child refused {n}")))
}

fn pair(a: i64, b: i64) -> i64 {
    a * 10 + b
}

fn combine(a: i64, b: i64) -> i64 {
    a * 100 + b
}

fn pick<T: Clone>(v: &[T], i: usize) -> T {
    v[i % v.len()].clone()
}

fn apply_twice<F: Fn(i64) -> i64>(f: F, x: i64) -> i64 {
    f(f(x))
}

const LIMIT: i64 = 3;
static PREFIXES: [&str; 3] = ["a", "b", "c"];

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Point {
    x: i64,
    y: i64,
}

impl Point {
    fn manhattan(&self) -> i64 {
        self.x.abs() + self.y.abs()
    }
}

// ---------------------------------------------------------------- awaits deep inside expressions

#[orchestrator(differential)]
async fn nested_calls(ctx: OrchestrationContext, n: i64) -> Result<(i64, String, i64), OrchestrationError> {
    let a = combine(
        pair(ctx.call_activity(double, n).await?, ctx.call_activity(add, (n, 1)).await?),
        ctx.call_activity(double, 1).await?,
    );
    let s = ctx
        .call_activity(greet, ctx.call_activity(upper, "bob".to_string()).await?)
        .await?
        .chars()
        .rev()
        .collect::<String>();
    let m = std::cmp::max(
        pair(1, ctx.call_activity(double, n).await?),
        ctx.call_activity(add, (pair(2, 3), ctx.call_activity(double, 4).await?)).await?,
    );
    Ok((a, s, m))
}

#[test]
fn awaits_nested_in_call_arguments_and_receivers() {
    let t = diff!(nested_calls, 2);
    assert_eq!(t.output::<(i64, String, i64)>(), (4302, "!BOB olleH".to_string(), 31));
    assert_eq!(
        calls(&t),
        ["double(2)", "add([2,1])", "double(1)", "upper(\"bob\")", "greet(\"BOB\")", "double(2)", "double(4)", "add([23,8])"]
    );
}

#[orchestrator(differential)]
async fn literal_shapes(
    ctx: OrchestrationContext,
    n: i64,
) -> Result<(Vec<i64>, i64, i64, i64, Vec<i64>), OrchestrationError> {
    let v = [ctx.call_activity(double, n).await?, n, ctx.call_activity(double, n + 1).await?]
        .iter()
        .map(|x| x * 10)
        .collect::<Vec<_>>();
    let t = (ctx.call_activity(double, 1).await?, "x".to_string()).0 + 1;
    let p = Point { x: ctx.call_activity(add, (n, -10)).await?, y: -ctx.call_activity(double, n).await? }.manhattan();
    let s: i64 = vec![ctx.call_activity(tick, ()).await?, ctx.call_activity(tick, ()).await?].into_iter().sum();
    let rep = vec![ctx.call_activity(double, 3).await?; 3];
    Ok((v, t, p, s, rep))
}

#[test]
fn awaits_in_array_tuple_struct_literals_inside_method_chains() {
    let t = diff!(literal_shapes, 2);
    assert_eq!(t.output::<(Vec<i64>, i64, i64, i64, Vec<i64>)>(), (vec![40, 20, 60], 3, 12, 14, vec![6, 6, 6]));
    assert_eq!(
        calls(&t),
        ["double(2)", "double(3)", "double(1)", "add([2,-10])", "double(2)", "tick(null)", "tick(null)", "double(3)"]
    );
}

#[orchestrator(differential)]
async fn format_variants(ctx: OrchestrationContext, name: String) -> Result<Vec<String>, OrchestrationError> {
    let mut out = vec![];
    out.push(format!(
        "{0}-{0}-{1:>5}|",
        ctx.call_activity(double, 21).await?,
        ctx.call_activity(len, name.clone()).await?
    ));
    // Two named arguments, the second awaiting, do not compile (see report): one named only.
    let v = ctx.call_activity(half, 3.0).await?;
    out.push(format!("{n:<6}|{v:08.3}|{name}", n = ctx.call_activity(len, name.clone()).await?));
    out.push(format!(
        "{:>w$}|{:#x}|{:?}",
        name,
        ctx.call_activity(double, 127).await?,
        ctx.call_activity(lookup, name.clone()).await?,
        w = ctx.call_activity(double, 3).await? as usize
    ));
    // `{:^w$}` with a local `w` next to an await does not compile (see report): `{:^4}`.
    out.push(format!("{:^4}|{name:?}|{}", ctx.call_activity(double, 1).await?, ctx.call_activity(upper, name.clone()).await?));
    Ok(out)
}

#[test]
fn format_with_positional_named_width_and_inline_args_next_to_awaits() {
    let t = diff!(format_variants, "a".to_string());
    assert_eq!(t.output::<Vec<String>>(), ["42-42-    1|", "1     |0001.500|a", "     a|0xfe|Some(\"alpha\")", " 2  |\"a\"|A"]);
    assert_eq!(
        calls(&t),
        [
            "double(21)",
            "len(\"a\")",
            "half(3.0)",
            "len(\"a\")",
            "double(127)",
            "lookup(\"a\")",
            "double(3)",
            "double(1)",
            "upper(\"a\")"
        ]
    );
}

#[orchestrator(differential)]
async fn arithmetic_precedence(ctx: OrchestrationContext, n: i64) -> Result<(i64, i64, i32, bool, i64), OrchestrationError> {
    let x = (ctx.call_activity(double, n).await? + 1) * ctx.call_activity(double, 2).await?
        - ctx.call_activity(tick, ()).await? % 4;
    let y = ctx.call_activity(double, n).await?.pow(2).max(ctx.call_activity(add, (1, 1)).await?);
    let z = -(ctx.call_activity(double, n).await?) as i32;
    let b = !ctx.call_activity(is_even, n).await? ^ true;
    let v = 1 + match n {
        0 => ctx.call_activity(double, 50).await?,
        _ => 2,
    } * 3;
    Ok((x, y, z, b, v))
}

#[test]
fn awaits_as_operands_keep_precedence() {
    let t = diff!(arithmetic_precedence, 3);
    assert_eq!(t.output::<(i64, i64, i32, bool, i64)>(), (25, 36, -6, false, 7));
    let t = diff!(arithmetic_precedence, 0);
    assert_eq!(t.output::<(i64, i64, i32, bool, i64)>(), (1 * 4 - 3, 0i64.max(2), 0, true, 301));
}

#[orchestrator(differential)]
async fn odd_positions(ctx: OrchestrationContext, xs: Vec<i64>) -> Result<(i64, Vec<i64>, Vec<i64>), OrchestrationError> {
    let pick = xs[ctx.call_activity(double, 1).await? as usize];
    let mut r = vec![];
    for i in ctx.call_activity(tick, ()).await? - 5..ctx.call_activity(double, 2).await? {
        r.push(i);
    }
    let zeros = vec![0; ctx.call_activity(add, (1, 1)).await? as usize];
    Ok((pick, r, zeros))
}

#[test]
fn awaits_in_index_range_bounds_and_repeat_length() {
    let t = diff!(odd_positions, vec![5, 6, 7]);
    assert_eq!(t.output::<(i64, Vec<i64>, Vec<i64>)>(), (7, vec![2, 3], vec![0, 0]));
    assert_eq!(calls(&t), ["double(1)", "tick(null)", "double(2)", "add([1,1])"]);
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
enum Shape {
    Circle(i64),
    Rect { w: i64, h: i64 },
    Empty,
}

#[orchestrator(differential)]
async fn constructors(
    ctx: OrchestrationContext,
    n: i64,
) -> Result<(Option<i64>, Box<i64>, Shape, Result<i64, String>, Vec<Shape>), OrchestrationError> {
    let o = Some(ctx.call_activity(double, n).await?);
    let b = Box::new(ctx.call_activity(add, (n, 1)).await?);
    let s = Shape::Rect { w: ctx.call_activity(double, 1).await?, h: ctx.call_activity(double, 2).await? };
    let r = Ok::<i64, String>(ctx.call_activity(tick, ()).await?);
    let v = vec![Shape::Circle(ctx.call_activity(double, 5).await?), Shape::Empty];
    Ok((o, b, s, r, v))
}

#[test]
fn awaits_inside_variant_and_box_constructors() {
    let t = diff!(constructors, 4);
    assert_eq!(
        t.output::<(Option<i64>, Box<i64>, Shape, Result<i64, String>, Vec<Shape>)>(),
        (Some(8), Box::new(5), Shape::Rect { w: 2, h: 4 }, Ok(7), vec![Shape::Circle(10), Shape::Empty])
    );
}

#[orchestrator(differential)]
async fn nested_blocks(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let v = {
        let a = {
            let b = { ctx.call_activity(double, n).await? };
            b + ctx.call_activity(tick, ()).await?
        };
        a * { ctx.call_activity(add, (a, 1)).await? }
    };
    Ok(v)
}

#[test]
fn awaits_at_every_level_of_nested_blocks() {
    // b = 4, a = 11, a * (a + 1) = 132
    assert_eq!(diff!(nested_blocks, 2).output::<i64>(), 132);
}

// ---------------------------------------------------------------- if let ladders, matches

#[orchestrator(differential)]
async fn if_let_ladder(ctx: OrchestrationContext, input: (String, i64)) -> Result<String, OrchestrationError> {
    let (key, n) = input;
    let r = if let Some(v) = ctx.call_activity(lookup, key.clone()).await? {
        ctx.call_activity(greet, v).await?
    } else if let Some(w) = ctx.call_activity(maybe, n).await? {
        format!("m{}", ctx.call_activity(double, w).await?)
    } else if let Ok(x) = ctx.call_activity(fail, key.clone()).await {
        format!("x{x}")
    } else if let (Some(a), true) = (ctx.call_activity(maybe, n - 3).await?, ctx.call_activity(is_even, n).await?) {
        format!("pair {a}")
    } else {
        ctx.call_activity(greet, format!("nobody {key}")).await?
    };
    Ok(r)
}

#[test]
fn if_let_else_if_let_ladder_awaiting_in_every_condition_and_branch() {
    let t = diff!(if_let_ladder, ("a".to_string(), 0));
    assert_eq!(t.output::<String>(), "Hello alpha!");
    assert_eq!(calls(&t), ["lookup(\"a\")", "greet(\"alpha\")"]);
    assert_eq!(diff!(if_let_ladder, ("z".to_string(), 1)).output::<String>(), "m20");
    let t = diff!(if_let_ladder, ("z".to_string(), 4));
    assert_eq!(t.output::<String>(), "pair 10");
    assert_eq!(calls(&t), ["lookup(\"z\")", "maybe(4)", "fail(\"z\")", "maybe(1)", "is_even(4)"]);
    assert_eq!(diff!(if_let_ladder, ("z".to_string(), 5)).output::<String>(), "Hello nobody z!");
}

#[orchestrator(differential)]
async fn match_patterns(ctx: OrchestrationContext, xs: Vec<i64>) -> Result<Vec<String>, OrchestrationError> {
    let mut out = vec![];
    match (ctx.call_activity(double, xs.len() as i64).await?, ctx.call_activity(greet, "p".to_string()).await?, xs.clone()) {
        (n @ 0..=4, ref mut s, ref v) if v.is_empty() => {
            s.push('?');
            out.push(format!("empty {n} {s}"));
        }
        (n @ 0..=4, ref mut s, ref v) => {
            s.push_str(&v.len().to_string());
            let line = format!("small {n} {s}");
            out.push(ctx.call_activity(upper, line).await?);
        }
        (n, s, v) => out.push(format!("big {n} {s} {}", v.len())),
    }
    for row in vec![xs.clone(), vec![], vec![5]] {
        let s = match row.as_slice() {
            [] => ctx.call_activity(greet, "none".to_string()).await?,
            [only] => format!("one {}", ctx.call_activity(double, *only).await?),
            [first, .., last] => {
                let (f, l) = (*first, *last);
                format!("{f}..{l}={}", ctx.call_activity(add, (f, l)).await?)
            }
        };
        out.push(s);
    }
    Ok(out)
}

#[test]
fn match_on_tuples_with_ref_ref_mut_at_and_slice_patterns() {
    let t = diff!(match_patterns, vec![1, 2]);
    assert_eq!(t.output::<Vec<String>>(), ["SMALL 4 HELLO P!2", "1..2=3", "Hello none!", "one 10"]);
    let t = diff!(match_patterns, vec![]);
    assert_eq!(t.output::<Vec<String>>(), ["empty 0 Hello p!?", "Hello none!", "Hello none!", "one 10"]);
    let t = diff!(match_patterns, vec![1, 2, 3]);
    assert_eq!(t.output::<Vec<String>>(), ["big 6 Hello p! 3", "1..3=4", "Hello none!", "one 10"]);
}

#[orchestrator(differential)]
async fn nested_match_bindings(ctx: OrchestrationContext, xs: Vec<Option<i64>>) -> Result<Vec<String>, OrchestrationError> {
    let mut out = vec![];
    for x in xs {
        let s = match x {
            Some(v @ 0..=9) => match ctx.call_activity(maybe, v).await? {
                Some(d) if d > v => format!("{v}<{d}"),
                Some(d) => format!("{v}>={d}"),
                None => format!("{v}:none:{}", ctx.call_activity(double, v).await?),
            },
            Some(v) => format!("big {v}"),
            None => String::from("nothing"),
        };
        out.push(s);
    }
    Ok(out)
}

#[test]
fn outer_match_binding_live_across_inner_awaited_match() {
    let t = diff!(nested_match_bindings, vec![Some(1), Some(0), Some(5), Some(20), None]);
    assert_eq!(t.output::<Vec<String>>(), ["1<10", "0>=0", "5:none:10", "big 20", "nothing"]);
}

#[orchestrator(differential)]
async fn match_on_temp_str(ctx: OrchestrationContext, names: Vec<String>) -> Result<Vec<i64>, OrchestrationError> {
    let mut out = vec![];
    for n in names {
        let v = match ctx.call_activity(greet, n).await?.as_str() {
            "Hello a!" => ctx.call_activity(tick, ()).await?,
            s if s.len() > 9 => ctx.call_activity(len, s.to_string()).await? as i64,
            _ => 0,
        };
        out.push(v);
    }
    Ok(out)
}

#[test]
fn match_on_a_borrow_of_an_awaited_temporary_with_awaiting_arms() {
    let t = diff!(match_on_temp_str, vec!["a".to_string(), "bbbb".into(), "c".into()]);
    assert_eq!(t.output::<Vec<i64>>(), [7, 11, 0]);
    assert_eq!(calls(&t), ["greet(\"a\")", "tick(null)", "greet(\"bbbb\")", "len(\"Hello bbbb!\")", "greet(\"c\")"]);
}

#[orchestrator(differential)]
async fn match_result_nested(ctx: OrchestrationContext, keys: Vec<String>) -> Result<Vec<String>, OrchestrationError> {
    let mut out = vec![];
    for k in keys {
        let s = match ctx.call_activity(lookup, k.clone()).await {
            Ok(Some(ref s)) if s.starts_with('a') => ctx.call_activity(upper, s.clone()).await?,
            Ok(Some(s)) => s,
            Ok(None) => match ctx.call_activity(fail, k).await {
                Ok(n) => n.to_string(),
                Err(e) => e.to_string(),
            },
            Err(e) => return Err(e.into()),
        };
        out.push(s);
    }
    Ok(out)
}

#[test]
fn match_on_awaited_result_of_option_with_ref_binding_and_guard() {
    let t = diff!(match_result_nested, vec!["a".to_string(), "b".into(), "q".into()]);
    assert_eq!(t.output::<Vec<String>>(), ["ALPHA", "beta", "failed on \"q\""]);
}
