//! Adversarial tests of the orchestrator compiler: bodies in the styles real users write
//! (ported service code, awaits deep inside expressions, local items, odd types), each run as the
//! generated state machine and as plain async Rust, with concrete expected outputs.

#![allow(clippy::all, unused_variables, unused_mut, unused_assignments, dead_code)]

use durable::prelude::*;
use durable_test_support::diff;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
// Named, not a glob: a body here binds a local `sum`, which the activity `sum` would shadow.
use durable_test_support::differential::{
    add, calls, child, double, fail, flaky, greet, grumpy_child, half, is_even, len, lookup, maybe, mock, page,
    run_direct, run_state_machine, same, tick, upper, wide, words,
};

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
        [
            "double(2)",
            "add([2,1])",
            "double(1)",
            "upper(\"bob\")",
            "greet(\"BOB\")",
            "double(2)",
            "double(4)",
            "add([23,8])"
        ]
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
    out.push(format!(
        "{:^4}|{name:?}|{}",
        ctx.call_activity(double, 1).await?,
        ctx.call_activity(upper, name.clone()).await?
    ));
    Ok(out)
}

#[test]
fn format_with_positional_named_width_and_inline_args_next_to_awaits() {
    let t = diff!(format_variants, "a".to_string());
    assert_eq!(
        t.output::<Vec<String>>(),
        ["42-42-    1|", "1     |0001.500|a", "     a|0xfe|Some(\"alpha\")", " 2  |\"a\"|A"]
    );
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
async fn arithmetic_precedence(
    ctx: OrchestrationContext,
    n: i64,
) -> Result<(i64, i64, i32, bool, i64), OrchestrationError> {
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
async fn odd_positions(
    ctx: OrchestrationContext,
    xs: Vec<i64>,
) -> Result<(i64, Vec<i64>, Vec<i64>), OrchestrationError> {
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
    match (
        ctx.call_activity(double, xs.len() as i64).await?,
        ctx.call_activity(greet, "p".to_string()).await?,
        xs.clone(),
    ) {
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
async fn nested_match_bindings(
    ctx: OrchestrationContext,
    xs: Vec<Option<i64>>,
) -> Result<Vec<String>, OrchestrationError> {
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

// ---------------------------------------------------------------- `?` chains, closures, iterators

#[orchestrator(differential)]
async fn nested_option_result(ctx: OrchestrationContext, keys: Vec<String>) -> Result<Vec<i64>, OrchestrationError> {
    let mut out = vec![];
    for k in keys {
        let parsed: Option<Result<i64, std::num::ParseIntError>> =
            ctx.call_activity(lookup, k.clone()).await?.map(|s| s.len().to_string().parse::<i64>());
        let n = parsed.ok_or_else(|| format!("no key {k}"))??;
        let m = ctx.call_activity(maybe, n - 4).await?.map(Ok::<i64, String>).transpose()?.unwrap_or(-1);
        out.push(ctx.call_activity(add, (n, m)).await?);
    }
    Ok(out)
}

#[test]
fn double_question_mark_on_option_of_result_between_awaits() {
    let t = diff!(nested_option_result, vec!["a".to_string(), "b".into()]);
    assert_eq!(t.output::<Vec<i64>>(), [15, 4]);
    let t = diff!(nested_option_result, vec!["a".to_string(), "q".into(), "b".into()]);
    assert_eq!(t.outcome, Err("no key q".to_string()));
    assert_eq!(calls(&t), ["lookup(\"a\")", "maybe(1)", "add([5,10])", "lookup(\"q\")"]);
}

#[orchestrator(differential)]
async fn question_in_closures(ctx: OrchestrationContext, csv: String) -> Result<(i64, Vec<i64>), OrchestrationError> {
    let nums = csv.split(',').map(|x| x.trim().parse::<i64>()).collect::<Result<Vec<_>, _>>()?;
    let parse2 = |s: &str| -> Result<i64, std::num::ParseIntError> { Ok(s.parse::<i64>()? * 2) };
    let extra = parse2("21")?;
    let doubled = ctx.when_all(nums.iter().map(|&n| ctx.call_activity(double, n))).await?;
    let checked: Vec<i64> =
        doubled.iter().map(|&d| if d > 100 { Err(format!("too big {d}")) } else { Ok(d) }).collect::<Result<_, _>>()?;
    let total = ctx.call_activity(add, (checked.iter().sum(), extra)).await?;
    Ok((total, checked))
}

#[test]
fn question_mark_inside_closures_that_do_not_await() {
    let t = diff!(question_in_closures, "1, 2,3".to_string());
    assert_eq!(t.output::<(i64, Vec<i64>)>(), (54, vec![2, 4, 6]));
    let t = diff!(question_in_closures, "1,x".to_string());
    assert_eq!(t.outcome, Err("invalid digit found in string".to_string()));
    assert!(t.commands.is_empty());
    let t = diff!(question_in_closures, "1,60".to_string());
    assert_eq!(t.outcome, Err("too big 120".to_string()));
    assert_eq!(calls(&t), ["double(1)", "double(60)"]);
}

#[orchestrator(differential)]
async fn adaptors(
    ctx: OrchestrationContext,
    xs: Vec<i64>,
) -> Result<(i64, Vec<(usize, i64)>, String), OrchestrationError> {
    let tasks: Vec<_> = xs.iter().map(|x| ctx.call_activity(double, *x)).collect();
    let best = ctx
        .when_all(tasks)
        .await?
        .into_iter()
        .enumerate()
        .filter(|(_, d)| d % 4 == 0)
        .map(|(i, d)| (i, d / 4))
        .collect::<Vec<_>>();
    let total = ctx
        .call_activity(words, "a bb ccc".to_string())
        .await?
        .iter()
        .map(String::len)
        .fold(0i64, |acc, l| acc * 10 + l as i64);
    let joined = ctx.call_activity(words, "x y".to_string()).await?.into_iter().rev().collect::<Vec<_>>().join("+");
    Ok((total, best, joined))
}

#[test]
fn iterator_adaptors_over_awaited_results() {
    let t = diff!(adaptors, vec![1, 2, 3, 4]);
    assert_eq!(t.output::<(i64, Vec<(usize, i64)>, String)>(), (123, vec![(1, 1), (3, 2)], "y+x".to_string()));
}

// ---------------------------------------------------------------- loops that mutate several locals

#[orchestrator(differential)]
async fn bookkeeping(
    ctx: OrchestrationContext,
    xs: Vec<i64>,
) -> Result<(i64, Vec<i64>, BTreeMap<String, i64>, BTreeSet<i64>, i64), OrchestrationError> {
    let mut total = 0;
    let mut seen = Vec::new();
    let mut by_kind: BTreeMap<String, i64> = BTreeMap::new();
    let mut uniq = BTreeSet::new();
    let mut max = i64::MIN;
    for x in xs {
        let d = ctx.call_activity(double, x).await?;
        total += d;
        seen.push(d);
        *by_kind.entry(if d % 4 == 0 { "four".into() } else { "two".into() }).or_insert(0) +=
            ctx.call_activity(add, (d, 0)).await?;
        uniq.insert(d);
        seen.retain(|s| *s != 6);
        max = max.max(d);
        total -= 1;
    }
    Ok((total, seen, by_kind, uniq, max))
}

#[test]
fn loop_mutating_several_locals_with_compound_assignment_into_a_map_entry() {
    let t = diff!(bookkeeping, vec![1, 3, 2, 3, 5]);
    assert_eq!(
        t.output::<(i64, Vec<i64>, BTreeMap<String, i64>, BTreeSet<i64>, i64)>(),
        (
            23,
            vec![2, 4, 10],
            BTreeMap::from([("four".to_string(), 4), ("two".to_string(), 24)]),
            BTreeSet::from([2, 4, 6, 10]),
            10
        )
    );
}

#[orchestrator(differential)]
async fn while_complex(ctx: OrchestrationContext, n: i64) -> Result<(i64, i64, Vec<String>), OrchestrationError> {
    let mut i = 0;
    let mut j = n;
    let mut log = vec![];
    while (i < 4 && ctx.call_activity(is_even, i).await?) || (j > 0 && !ctx.call_activity(is_even, j).await?) {
        log.push(format!("{i}/{j}"));
        i += 1;
        j -= 2;
    }
    Ok((i, j, log))
}

#[test]
fn while_condition_with_awaits_on_both_sides_of_or() {
    let t = diff!(while_complex, 5);
    assert_eq!(t.output::<(i64, i64, Vec<String>)>(), (3, -1, vec!["0/5".to_string(), "1/3".into(), "2/1".into()]));
    assert_eq!(calls(&t), ["is_even(0)", "is_even(1)", "is_even(3)", "is_even(2)", "is_even(3)"]);
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Phase {
    Idle,
    Running { count: i64, log: Vec<String> },
    Paused(Box<Phase>),
}

#[orchestrator(differential)]
async fn phase_machine(ctx: OrchestrationContext, _: ()) -> Result<String, OrchestrationError> {
    let mut phase = Phase::Idle;
    let out = loop {
        phase = match phase {
            Phase::Idle => {
                let e: String = ctx.wait_for_event("ev").await?;
                if e == "start" { Phase::Running { count: 0, log: vec![] } } else { Phase::Idle }
            }
            Phase::Running { count, mut log } => match ctx.wait_for_event::<String>("ev").await?.as_str() {
                "tick" => {
                    log.push("t".into());
                    Phase::Running { count: count + ctx.call_activity(tick, ()).await?, log }
                }
                "pause" => Phase::Paused(Box::new(Phase::Running { count, log })),
                "stop" => break format!("stopped at {count} after {}", log.join("")),
                _ => Phase::Running { count, log },
            },
            Phase::Paused(inner) => {
                let e = ctx.wait_for_event::<String>("ev").await?;
                if e == "resume" { *inner } else { Phase::Paused(inner) }
            }
        };
    };
    Ok(out)
}

#[test]
fn loop_match_state_machine_driven_by_events() {
    let script = || {
        ["noise", "start", "tick", "pause", "tick", "resume", "tick", "bogus", "stop"]
            .iter()
            .fold(mock(), |m, e| m.event("ev", e))
    };
    let t = same(
        run_state_machine::<phase_machine>((), script()),
        run_direct(phase_machine::__durable_direct, (), script()),
    );
    assert_eq!(t.output::<String>(), "stopped at 14 after tt");
    assert_eq!(calls(&t), ["tick(null)", "tick(null)"]);
}

#[orchestrator(differential)]
async fn nested_return(ctx: OrchestrationContext, rounds: Vec<Vec<i64>>) -> Result<String, OrchestrationError> {
    let mut round = 0;
    let mut seen = 0;
    loop {
        if round >= rounds.len() {
            break;
        }
        for x in rounds[round].clone() {
            match ctx.call_activity(maybe, x).await? {
                Some(v) if v >= 20 => return Ok(format!("found {v} in round {round} after {seen}")),
                Some(_) => seen += 1,
                None => {
                    ctx.call_activity(fail, "x".to_string()).await.ok();
                    continue;
                }
            }
            seen += 10;
        }
        round += 1;
    }
    Ok(format!("none after {seen}"))
}

#[test]
fn early_return_from_match_inside_for_inside_loop() {
    let t = diff!(nested_return, vec![vec![0, 5], vec![1, 2, 0]]);
    assert_eq!(t.output::<String>(), "found 20 in round 1 after 22");
    assert_eq!(calls(&t), ["maybe(0)", "maybe(5)", "fail(\"x\")", "maybe(1)", "maybe(2)"]);
    assert_eq!(diff!(nested_return, vec![vec![5]]).output::<String>(), "none after 0");
}

#[orchestrator(differential)]
async fn labeled_block_await(ctx: OrchestrationContext, n: i64) -> Result<(i64, i64), OrchestrationError> {
    let a = 'calc: {
        if n < 0 {
            break 'calc ctx.call_activity(double, -n).await?;
        }
        if ctx.call_activity(is_even, n).await? {
            break 'calc ctx.call_activity(add, (n, 1000)).await? * 2;
        }
        n
    };
    let b = loop {
        if a > 0 {
            break ctx.call_activity(double, a).await? + 1;
        }
        break -1;
    };
    Ok((a, b))
}

#[test]
fn break_with_an_awaited_value_from_labeled_blocks_and_loops() {
    assert_eq!(diff!(labeled_block_await, -3).output::<(i64, i64)>(), (6, 13));
    assert_eq!(diff!(labeled_block_await, 4).output::<(i64, i64)>(), (2008, 4017));
    assert_eq!(diff!(labeled_block_await, 3).output::<(i64, i64)>(), (3, 7));
}

#[orchestrator(differential)]
async fn shadow_types(ctx: OrchestrationContext, s: String) -> Result<(String, Vec<i64>), OrchestrationError> {
    let x = s.clone();
    let x: i64 = x.trim().parse()?;
    let x = ctx.call_activity(double, x).await?;
    let x = vec![x; 2];
    let s = ctx.call_activity(greet, s).await?;
    let s = s.len();
    let x = {
        let mut x = x;
        x.push(ctx.call_activity(double, s as i64).await?);
        x
    };
    let s = format!("{s}");
    Ok((s, x))
}

#[test]
fn shadowing_that_changes_the_type_across_awaits() {
    let t = diff!(shadow_types, " 5".to_string());
    assert_eq!(t.output::<(String, Vec<i64>)>(), ("9".to_string(), vec![10, 10, 18]));
}

// `.await` inside an `if let … &&` chain is rejected (see report); here the chains themselves do
// not await, their bodies and the statements around them do.
#[orchestrator(differential)]
async fn let_chains(ctx: OrchestrationContext, keys: Vec<String>) -> Result<Vec<String>, OrchestrationError> {
    let mut out = vec![];
    for k in keys {
        let found = ctx.call_activity(lookup, k.clone()).await?;
        if let Some(v) = found.clone()
            && v.len() > 4
            && let Some(m) = v.len().checked_sub(4)
        {
            out.push(format!("{v}:{}", ctx.call_activity(maybe, m as i64).await?.unwrap_or(-1)));
        } else if let Ok(n) = k.parse::<i64>()
            && n % 2 == 0
        {
            let d = ctx.call_activity(double, n).await?;
            out.push(format!("even {d}"));
        } else {
            out.push(format!("none {found:?}"));
        }
    }
    Ok(out)
}

#[test]
fn let_chains_next_to_awaits() {
    let t = diff!(let_chains, vec!["a".to_string(), "b".into(), "4".into(), "5".into()]);
    assert_eq!(t.output::<Vec<String>>(), ["alpha:10", "none Some(\"beta\")", "even 8", "none None"]);
    assert_eq!(
        calls(&t),
        ["lookup(\"a\")", "maybe(1)", "lookup(\"b\")", "lookup(\"4\")", "double(4)", "lookup(\"5\")"]
    );
}

#[orchestrator(differential)]
async fn generic_helpers(ctx: OrchestrationContext, n: i64) -> Result<(String, i64, i64), OrchestrationError> {
    let tags: Vec<String> = PREFIXES.iter().map(|p| p.to_string()).collect();
    let d = ctx.call_activity(double, n).await?;
    let tag = pick(&tags, d as usize);
    // `apply_twice(|x| x * LIMIT, ctx.call_activity(..).await?)` does not compile (see report).
    let s = ctx.call_activity(add, (d, LIMIT)).await?;
    let t = apply_twice(|x| x * LIMIT, s);
    let max = std::cmp::max::<i64>(pick(&[d, t], 1), ctx.call_activity(double, LIMIT).await?);
    Ok((format!("{tag}{}", pick(&tags, 4)), t, max))
}

#[test]
fn generic_helpers_consts_and_statics_with_awaited_arguments() {
    let t = diff!(generic_helpers, 1);
    assert_eq!(t.output::<(String, i64, i64)>(), ("cb".to_string(), 45, 45));
}

#[orchestrator(differential)]
async fn local_items(ctx: OrchestrationContext, n: i64) -> Result<(i64, String, String), OrchestrationError> {
    const STEP: i64 = 10;
    #[derive(Serialize, Deserialize, Debug, Clone)]
    struct Acc {
        total: i64,
        notes: Vec<String>,
    }
    impl Acc {
        fn push(&mut self, v: i64) {
            self.total += v;
            self.notes.push(format!("+{v}"));
        }
    }
    #[derive(Serialize, Deserialize, Debug)]
    enum Mode {
        Fast,
        Slow(i64),
    }
    fn label(m: &Mode) -> String {
        match m {
            Mode::Fast => "fast".into(),
            Mode::Slow(k) => format!("slow{k}"),
        }
    }
    use std::collections::BTreeMap as Map;
    let mut seen = Map::new();
    let mut acc = Acc { total: 0, notes: vec![] };
    let mut mode = Mode::Fast;
    for i in 0..n {
        acc.push(ctx.call_activity(double, i * STEP).await?);
        seen.insert(i, label(&mode));
        if acc.total > 15 {
            mode = Mode::Slow(ctx.call_activity(tick, ()).await?);
        }
    }
    Ok((acc.total, acc.notes.join(""), format!("{} {seen:?}", label(&mode))))
}

#[test]
fn local_struct_enum_impl_fn_const_and_use_declared_in_the_body() {
    let t = diff!(local_items, 3);
    assert_eq!(
        t.output::<(i64, String, String)>(),
        (60, "+0+20+40".to_string(), "slow7 {0: \"fast\", 1: \"fast\", 2: \"slow7\"}".to_string())
    );
    assert_eq!(calls(&t), ["double(0)", "double(10)", "tick(null)", "double(20)", "tick(null)"]);
}

// ---------------------------------------------------------------- signatures, unit, big numbers, floats

#[orchestrator(differential)]
async fn unit_things(ctx: OrchestrationContext, n: i64) -> Result<(), OrchestrationError> {
    ctx.timer(Duration::from_secs(1)).await?;
    let () = ctx.timer(Duration::from_secs(2)).await?;
    let u = ctx.timer(Duration::from_secs(3)).await?;
    let v: Vec<()> = ctx.when_all(vec![ctx.timer(Duration::from_secs(1))]).await?;
    assert_eq!(v.len(), 1);
    if n > 0 {
        return Ok(u);
    }
    {
        ctx.call_activity(double, n).await?;
    }
    Ok(())
}

#[test]
fn unit_results_of_timers_and_a_unit_output() {
    let t = diff!(unit_things, 1);
    assert_eq!(t.outcome, Ok("null".to_string()));
    assert_eq!(calls(&t), ["timer", "timer", "timer", "timer"]);
    let t = diff!(unit_things, 0);
    assert_eq!(t.outcome, Ok("null".to_string()));
    assert_eq!(calls(&t), ["timer", "timer", "timer", "timer", "double(0)"]);
}

#[orchestrator(differential)]
async fn no_input(ctx: OrchestrationContext) -> Result<i64, OrchestrationError> {
    let t = ctx.call_activity(tick, ()).await?;
    Ok(t * 6)
}

#[orchestrator(differential)]
async fn three_params(ctx: OrchestrationContext, a: i64, b: String, c: bool) -> Result<String, OrchestrationError> {
    let d = ctx.call_activity(double, a).await?;
    let g = if c { ctx.call_activity(greet, b.clone()).await? } else { b.clone() };
    Ok(format!("{d} {g} {b} {c}"))
}

#[orchestrator(differential)]
async fn pattern_params(
    ctx: OrchestrationContext,
    (mut a, Point { x, y }): (i64, Point),
) -> Result<(i64, i64), OrchestrationError> {
    a += ctx.call_activity(add, (x, y)).await?;
    let b = ctx.call_activity(double, x).await?;
    Ok((a, b + y))
}

#[orchestrator(differential)]
async fn mut_param(ctx: OrchestrationContext, mut n: i64) -> Result<i64, OrchestrationError> {
    while n < 100 {
        n = ctx.call_activity(double, n).await?;
    }
    Ok(n)
}

#[test]
fn zero_one_and_three_input_parameters_and_patterns_in_parameters() {
    assert_eq!(diff!(no_input, ()).output::<i64>(), 42);
    let t = diff!(three_params, (4, "x".to_string(), true));
    assert_eq!(t.output::<String>(), "8 Hello x! x true");
    assert_eq!(diff!(three_params, (4, "x".to_string(), false)).output::<String>(), "8 x x false");
    assert_eq!(diff!(pattern_params, (1, Point { x: 2, y: 3 })).output::<(i64, i64)>(), (6, 7));
    assert_eq!(diff!(mut_param, 3).output::<i64>(), 192);
}

#[orchestrator(differential)]
async fn big_numbers(ctx: OrchestrationContext, n: u64) -> Result<(u64, i64, u128, i128, u64, i8), OrchestrationError> {
    let big = u64::MAX;
    let small = i64::MIN;
    let huge: u128 = u128::MAX - 5;
    let neg: i128 = i128::MIN + 7;
    let w = ctx.call_activity(wide, n).await?;
    let tiny = i8::MIN;
    let d = ctx.call_activity(double, 1).await?;
    Ok((big.wrapping_add(w), small + d, huge, neg, w, tiny))
}

#[test]
fn extreme_integers_survive_suspension() {
    let t = diff!(big_numbers, u64::MAX - 1);
    assert_eq!(
        t.output::<(u64, i64, u128, i128, u64, i8)>(),
        (u64::MAX - 1, i64::MIN + 2, u128::MAX - 5, i128::MIN + 7, u64::MAX, i8::MIN)
    );
}

#[orchestrator(differential)]
async fn float_edge(
    ctx: OrchestrationContext,
    x: f64,
) -> Result<(Vec<Option<f64>>, usize, bool, String), OrchestrationError> {
    let nan = f64::NAN;
    let neg_zero = -0.0f64;
    let ninf = f64::NEG_INFINITY;
    let vals = vec![1.5, f64::NAN, 2.5];
    let tiny = f32::MIN_POSITIVE;
    let h = ctx.call_activity(half, x).await?;
    let nan_count = vals.iter().filter(|v| v.is_nan()).count();
    let s = format!("{} {} {} {:e} {}", neg_zero.is_sign_negative(), ninf, nan.is_nan(), tiny, h);
    let h2 = ctx.call_activity(half, h).await?;
    Ok((
        vals.iter().map(|v| if v.is_nan() { None } else { Some(*v + h2) }).collect(),
        nan_count,
        neg_zero.is_sign_negative(),
        s,
    ))
}

#[test]
fn nan_negative_zero_infinities_and_f32_survive_suspension() {
    let t = diff!(float_edge, 5.0);
    assert_eq!(
        t.output::<(Vec<Option<f64>>, usize, bool, String)>(),
        (vec![Some(2.75), None, Some(3.75)], 1, true, "true -inf true 1.1754944e-38 2.5".to_string())
    );
}

#[orchestrator(differential)]
async fn assert_macros(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    assert_eq!(ctx.call_activity(double, n).await?, n * 2, "double of {}", n);
    assert!(ctx.call_activity(is_even, n * 2).await?, "{n} should be even");
    assert_ne!(ctx.call_activity(add, (n, 1)).await?, n);
    let m = ctx.call_activity(maybe, n).await?;
    let small = matches!(m, Some(0..=20));
    Ok(if small { n } else { -n })
}

#[test]
fn assert_macros_with_awaits_inside() {
    let t = diff!(assert_macros, 1);
    assert_eq!(t.output::<i64>(), 1);
    assert_eq!(calls(&t), ["double(1)", "is_even(2)", "add([1,1])", "maybe(1)"]);
    assert_eq!(diff!(assert_macros, 5).output::<i64>(), -5);
}

#[orchestrator(differential)]
async fn when_all_sizes(
    ctx: OrchestrationContext,
    n: i64,
) -> Result<(Vec<i64>, Vec<i64>, Vec<i64>, Vec<Vec<i64>>), OrchestrationError> {
    let none: Vec<i64> = ctx.when_all(Vec::<durable::Task<i64>>::new()).await?;
    let one = ctx.when_all(vec![ctx.call_activity(double, n)]).await?;
    let many = ctx.when_all((0..n).map(|i| ctx.call_activity(add, (i, n)))).await?;
    let nested = ctx
        .when_all(vec![
            ctx.when_all(vec![ctx.call_activity(double, 1), ctx.call_activity(double, 2)]),
            ctx.when_all(Vec::new()),
        ])
        .await?;
    Ok((none, one, many, nested))
}

#[test]
fn when_all_of_zero_one_many_and_nested_when_all() {
    let t = diff!(when_all_sizes, 3);
    assert_eq!(
        t.output::<(Vec<i64>, Vec<i64>, Vec<i64>, Vec<Vec<i64>>)>(),
        (vec![], vec![6], vec![3, 4, 5], vec![vec![2, 4], vec![]])
    );
    assert_eq!(calls(&t), ["double(3)", "add([0,3])", "add([1,3])", "add([2,3])", "double(1)", "double(2)"]);
}

#[orchestrator(differential)]
async fn races(ctx: OrchestrationContext, n: i64) -> Result<Vec<String>, OrchestrationError> {
    let mut out = vec![];
    // when_any over selects mixing activities and timers
    let racers = vec![
        ctx.select(ctx.call_activity(double, n), ctx.timer(Duration::from_secs(5))),
        ctx.select(ctx.call_activity(add, (n, 1)), ctx.timer(Duration::from_secs(1))),
    ];
    let (i, r) = ctx.when_any(racers).await;
    out.push(match r {
        Either::Left(v) => format!("{i}: act {}", v?),
        Either::Right(_) => format!("{i}: timer"),
    });
    // select nested inside select
    let inner = ctx.select(ctx.wait_for_event::<String>("go"), ctx.call_activity(greet, "inner".to_string()));
    match ctx.select(inner, ctx.timer(Duration::from_secs(60))).await {
        Either::Left(Either::Left(e)) => out.push(format!("event {}", e?)),
        Either::Left(Either::Right(g)) => out.push(format!("greet {}", g?)),
        Either::Right(t) => {
            t?;
            out.push("timeout".into())
        }
    }
    // when_any of a single timer
    let (k, v) = ctx.when_any(vec![ctx.timer(Duration::from_secs(1))]).await;
    out.push(format!("{k} {}", v.is_ok()));
    Ok(out)
}

#[test]
fn when_any_over_selects_and_select_nested_in_select() {
    let t = diff!(races, 2);
    assert_eq!(t.output::<Vec<String>>(), ["0: act 4", "greet Hello inner!", "0 true"]);
}

#[orchestrator(differential)]
async fn timers_only_race(ctx: OrchestrationContext, _n: i64) -> Result<(usize, String), OrchestrationError> {
    let (i, _) = ctx
        .when_any(vec![
            ctx.timer(Duration::from_secs(30)),
            ctx.timer(Duration::from_secs(10)),
            ctx.timer(Duration::from_secs(20)),
        ])
        .await;
    let s = match ctx.select(ctx.timer(Duration::from_secs(1)), ctx.wait_for_event::<String>("never")).await {
        Either::Left(_) => "timer first".to_string(),
        Either::Right(e) => e?,
    };
    Ok((i, s))
}

#[test]
fn a_race_of_timers_only() {
    // The mock fires timers in the order they were created.
    let t = diff!(timers_only_race, 0);
    assert_eq!(t.output::<(usize, String)>(), (0, "timer first".to_string()));
}

#[derive(Serialize, Deserialize)]
struct Pending {
    a: durable::Task<i64>,
    b: durable::Task<String>,
    label: String,
}

#[orchestrator(differential)]
async fn tasks_in_struct(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
    let p = Pending { a: ctx.call_activity(double, n), b: ctx.call_activity(greet, "s".into()), label: "L".into() };
    let pair = (ctx.call_activity(add, (n, n)), ctx.timer(Duration::from_secs(1)));
    let mid = ctx.call_activity(tick, ()).await?;
    let Pending { a, b, label } = p;
    let (t1, t2) = pair;
    let bv = b.await?;
    t2.await?;
    let av = a.await?;
    Ok(format!("{label} {av} {bv} {} {mid}", t1.await?))
}

#[test]
fn tasks_kept_in_a_struct_field_and_a_tuple_awaited_later() {
    let t = diff!(tasks_in_struct, 3);
    assert_eq!(t.output::<String>(), "L 6 Hello s! 6 7");
    assert_eq!(calls(&t), ["double(3)", "greet(\"s\")", "add([3,3])", "timer", "tick(null)"]);
}

#[orchestrator(differential)]
async fn branch_tasks(ctx: OrchestrationContext, n: i64) -> Result<(i64, Vec<i64>), OrchestrationError> {
    let mut pending = Vec::new();
    let mut direct = 0;
    if n > 2 {
        pending.push(ctx.call_activity(double, n));
        direct += ctx.call_activity(add, (n, 1)).await?;
        pending.push(ctx.call_activity(double, n + 1));
    } else {
        match n {
            0 => {}
            _ => pending.push(ctx.call_activity(add, (n, n))),
        }
    }
    let got = ctx.when_all(pending).await?;
    Ok((direct, got))
}

#[test]
fn tasks_created_in_branches_and_joined_after() {
    let t = diff!(branch_tasks, 3);
    assert_eq!(t.output::<(i64, Vec<i64>)>(), (4, vec![6, 8]));
    assert_eq!(calls(&t), ["double(3)", "add([3,1])", "double(4)"]);
    assert_eq!(diff!(branch_tasks, 1).output::<(i64, Vec<i64>)>(), (0, vec![2]));
    assert_eq!(diff!(branch_tasks, 0).output::<(i64, Vec<i64>)>(), (0, vec![]));
}

#[orchestrator(differential)]
async fn sliding_window(ctx: OrchestrationContext, xs: Vec<i64>) -> Result<Vec<i64>, OrchestrationError> {
    let mut inflight = VecDeque::new();
    let mut out = vec![];
    for x in xs {
        if inflight.len() == 2 {
            out.push(inflight.pop_front().unwrap().await?);
        }
        inflight.push_back(ctx.call_activity(double, x));
    }
    while let Some(t) = inflight.pop_front() {
        out.push(t.await?);
    }
    Ok(out)
}

#[test]
fn bounded_parallelism_with_a_vecdeque_of_tasks() {
    let t = diff!(sliding_window, vec![1, 2, 3, 4, 5]);
    assert_eq!(t.output::<Vec<i64>>(), [2, 4, 6, 8, 10]);
    assert_eq!(t.commands.len(), 5);
}

#[orchestrator(differential)]
async fn for_over_tasks(ctx: OrchestrationContext, xs: Vec<i64>) -> Result<Vec<i64>, OrchestrationError> {
    let tasks: Vec<_> = xs.iter().map(|&x| ctx.call_activity(double, x)).collect();
    let mut out = vec![];
    for (i, t) in tasks.into_iter().enumerate() {
        if i == 1 {
            continue; // never awaited
        }
        out.push(t.await?);
    }
    Ok(out)
}

#[test]
fn awaiting_tasks_that_are_loop_variables() {
    let t = diff!(for_over_tasks, vec![1, 2, 3]);
    assert_eq!(t.output::<Vec<i64>>(), [2, 6]);
    assert_eq!(calls(&t), ["double(1)", "double(2)", "double(3)"]);
}

fn schedule_doubles(ctx: &OrchestrationContext, xs: &[i64]) -> Vec<durable::Task<i64>> {
    xs.iter().map(|x| ctx.call_activity(double, *x)).collect()
}

fn greet_task(ctx: &OrchestrationContext, who: &str) -> durable::Task<String> {
    ctx.call_activity(greet, who.to_string())
}

#[orchestrator(differential)]
async fn via_helpers(ctx: OrchestrationContext, xs: Vec<i64>) -> Result<(Vec<i64>, String), OrchestrationError> {
    let ds = ctx.when_all(schedule_doubles(&ctx, &xs)).await?;
    let g = greet_task(&ctx, "helper").await?;
    Ok((ds, g))
}

#[test]
fn tasks_built_by_plain_helper_functions_taking_the_context() {
    let t = diff!(via_helpers, vec![1, 2]);
    assert_eq!(t.output::<(Vec<i64>, String)>(), (vec![2, 4], "Hello helper!".to_string()));
}

#[orchestrator(differential)]
async fn uuids(ctx: OrchestrationContext, _: ()) -> Result<(bool, bool, usize, String), OrchestrationError> {
    let a = ctx.new_uuid();
    let b = ctx.new_uuid();
    let mut set = BTreeSet::new();
    set.insert(a);
    set.insert(b);
    let g = ctx.call_activity(greet, a.to_string()).await?;
    let c = ctx.new_uuid();
    set.insert(c);
    set.insert(a);
    let same_as_before = g == format!("Hello {a}!");
    let id = ctx.instance_id();
    Ok((a != b && b != c && a != c, same_as_before, set.len(), id))
}

#[test]
fn uuids_compared_and_kept_in_a_set_across_awaits() {
    let t = diff!(uuids, ());
    assert_eq!(t.output::<(bool, bool, usize, String)>(), (true, true, 3, "test-instance".to_string()));
}

#[orchestrator(differential)]
async fn subs(ctx: OrchestrationContext, n: i64) -> Result<Vec<String>, OrchestrationError> {
    let mut out = vec![];
    let all = ctx
        .when_all(
            (0..n).map(|i| ctx.call_orchestrator(child, i).with_instance_id(format!("{}-{i}", ctx.instance_id()))),
        )
        .await?;
    out.extend(all);
    match ctx.call_orchestrator(grumpy_child, n).await {
        Ok(s) => out.push(s),
        Err(e) => out.push(format!("err: {}", e.message())),
    }
    let r = ctx.select(ctx.call_orchestrator(child, 9), ctx.timer(Duration::from_secs(5))).await;
    if let Either::Left(Ok(s)) = r {
        out.push(s)
    }
    Ok(out)
}

#[test]
fn sub_orchestrations_fanned_out_failing_and_raced() {
    let t = diff!(subs, 2);
    assert_eq!(t.output::<Vec<String>>(), ["child(0)", "child(1)", "err: child refused 2", "child(9)"]);
    assert_eq!(calls(&t)[..4], ["sub child(0)", "sub child(1)", "sub grumpy_child(2)", "sub child(9)"]);
}

#[orchestrator(differential)]
async fn continue_loop(ctx: OrchestrationContext, input: (i64, Vec<i64>)) -> Result<Vec<i64>, OrchestrationError> {
    let (round, mut acc) = input;
    for i in 0..2 {
        acc.push(ctx.call_activity(add, (round * 10, i)).await?);
        if acc.len() >= 5 {
            return Ok(acc);
        }
    }
    if round < 10 {
        ctx.continue_as_new((round + 1, acc.clone()));
        return Ok(vec![]);
    }
    Ok(acc)
}

#[test]
fn continue_as_new_carrying_accumulated_state() {
    let t = diff!(continue_loop, (0, vec![]));
    assert_eq!(t.continued_as_new, Some("[1,[0,1]]".to_string()));
    let t = diff!(continue_loop, (2, vec![0, 1, 10, 11]));
    assert_eq!(t.continued_as_new, None);
    assert_eq!(t.output::<Vec<i64>>(), [0, 1, 10, 11, 20]);
}

// ---------------------------------------------------------------- code ported from services

#[orchestrator(differential)]
async fn retry_backoff(ctx: OrchestrationContext, start: i64) -> Result<(i64, Vec<String>), OrchestrationError> {
    let mut attempt = start;
    let mut errors = vec![];
    let result = loop {
        match ctx.call_activity(flaky, attempt).await {
            Ok(v) => break Ok(v),
            Err(e) if attempt < 5 => {
                errors.push(e.to_string());
                attempt += 1;
                ctx.timer(Duration::from_millis(100 * 2u64.pow(attempt as u32))).await?;
            }
            Err(e) => break Err(e),
        }
    };
    let v = result?;
    Ok((v, errors))
}

#[test]
fn hand_written_retry_loop_with_backoff_timers() {
    let t = diff!(retry_backoff, 1);
    assert_eq!(t.output::<(i64, Vec<String>)>(), (300, vec!["flaky 1".to_string(), "flaky 2".into()]));
    assert_eq!(calls(&t), ["flaky(1)", "timer", "flaky(2)", "timer", "flaky(3)"]);
}

#[orchestrator(differential)]
async fn paginate(ctx: OrchestrationContext, _: ()) -> Result<(Vec<i64>, usize), OrchestrationError> {
    let mut cursor = Some(0);
    let mut all = vec![];
    let mut pages = 0;
    while let Some(c) = cursor {
        let (items, next) = ctx.call_activity(page, c).await?;
        all.extend(items);
        cursor = next;
        pages += 1;
    }
    Ok((all, pages))
}

#[test]
fn cursor_pagination_loop() {
    let t = diff!(paginate, ());
    assert_eq!(t.output::<(Vec<i64>, usize)>(), (vec![0, 1, 10, 11, 20, 21, 30, 31], 4));
}

#[derive(Debug)]
enum AppError {
    Task(String),
    Invalid(i64),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::Task(s) => write!(f, "task: {s}"),
            AppError::Invalid(d) => write!(f, "invalid {d}"),
        }
    }
}

impl From<TaskError> for AppError {
    fn from(e: TaskError) -> Self {
        AppError::Task(e.message().to_string())
    }
}

#[orchestrator(differential)]
async fn custom_error(ctx: OrchestrationContext, n: i64) -> Result<i64, AppError> {
    let d = ctx.call_activity(double, n).await?;
    if d > 10 {
        return Err(AppError::Invalid(d));
    }
    let f = ctx.call_activity(fail, "x".to_string()).await.or_else(|e| if n == 0 { Ok(0) } else { Err(e) })?;
    Ok(d + f)
}

#[orchestrator(differential)]
async fn string_error(ctx: OrchestrationContext, n: i64) -> Result<i64, String> {
    let d = ctx.call_activity(double, n).await.map_err(|e| e.to_string())?;
    if d < 0 {
        Err(format!("negative {d}"))?
    }
    Ok(d)
}

#[test]
fn user_error_types_in_the_signature() {
    assert_eq!(diff!(custom_error, 0).output::<i64>(), 0);
    assert_eq!(diff!(custom_error, 3).outcome, Err("task: failed on \"x\"".to_string()));
    assert_eq!(diff!(custom_error, 6).outcome, Err("invalid 12".to_string()));
    assert_eq!(diff!(string_error, 2).output::<i64>(), 4);
    assert_eq!(diff!(string_error, -2).outcome, Err("negative -4".to_string()));
}

#[orchestrator(differential)]
async fn destructure_assign(
    ctx: OrchestrationContext,
    n: i64,
) -> Result<(i64, i64, [i64; 2], Point), OrchestrationError> {
    let (mut a, mut b) = (n, 1);
    for _ in 0..3 {
        (a, b) = (b, a + ctx.call_activity(double, b).await?);
    }
    let mut arr = [0; 2];
    [arr[0], arr[1]] = [ctx.call_activity(double, a).await?, ctx.call_activity(double, b).await?];
    let mut p = Point { x: 0, y: 0 };
    Point { x: p.x, y: p.y } = Point { x: ctx.call_activity(tick, ()).await?, y: -1 };
    Ok((a, b, arr, p))
}

#[test]
fn destructuring_assignment_with_awaits_on_the_right() {
    let t = diff!(destructure_assign, 1);
    assert_eq!(t.output::<(i64, i64, [i64; 2], Point)>(), (7, 17, [14, 34], Point { x: 7, y: -1 }));
}

#[orchestrator(differential)]
async fn collide_names(ctx: OrchestrationContext, input: i64) -> Result<String, OrchestrationError> {
    let state = input;
    let pc = 1;
    let step = ctx.call_activity(double, state).await?;
    let snapshot = vec![state, pc, step];
    let r#type = "kind".to_string();
    let output = ctx.call_activity(add, (step, pc)).await?;
    let result = format!("{snapshot:?} {} {output}", r#type);
    let ctx2 = ctx.clone();
    let __state = ctx2.call_activity(double, output).await?;
    let witness = ();
    let fingerprint = ctx.call_activity(tick, ()).await?;
    Ok(format!("{result} {__state} {fingerprint} {witness:?} {input}"))
}

#[test]
fn locals_named_like_generated_code_and_raw_identifiers() {
    let t = diff!(collide_names, 3);
    assert_eq!(t.output::<String>(), "[3, 1, 6] kind 7 14 7 () 3");
}

/// A documented orchestrator.
///
/// With a second paragraph, a `code span` and a [link](https://example.invalid).
#[orchestrator(differential)]
#[allow(clippy::needless_return)]
pub async fn documented(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    // a comment
    return Ok(ctx.call_activity(double, n).await?);
}

#[test]
fn doc_comments_attributes_and_pub_on_the_orchestrator() {
    assert_eq!(diff!(documented, 4).output::<i64>(), 8);
}

#[orchestrator(differential)]
async fn tail_match(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let d = ctx.call_activity(double, n).await?;
    match ctx.call_activity(maybe, d).await? {
        Some(v) => Ok(v + ctx.call_activity(tick, ()).await?),
        None if d > 100 => Err(OrchestrationError::new("too big")),
        None => Ok(-1),
    }
}

#[orchestrator(differential)]
async fn tail_if(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
    if ctx.call_activity(is_even, n).await? {
        Ok(ctx.call_activity(greet, "even".into()).await?)
    } else {
        ctx.call_activity(greet, "odd".into()).await.map_err(Into::into)
    }
}

#[orchestrator(differential)]
async fn tail_loop(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let mut x = n;
    loop {
        x = ctx.call_activity(double, x).await?;
        if x > 50 {
            return Ok(x);
        }
    }
}

#[test]
fn match_if_and_loop_as_the_tail_of_the_body() {
    assert_eq!(diff!(tail_match, 1).output::<i64>(), 27);
    assert_eq!(diff!(tail_match, 2).output::<i64>(), -1);
    assert_eq!(diff!(tail_match, 60).outcome, Err("too big".to_string()));
    assert_eq!(diff!(tail_if, 2).output::<String>(), "Hello even!");
    assert_eq!(diff!(tail_if, 3).output::<String>(), "Hello odd!");
    assert_eq!(diff!(tail_loop, 1).output::<i64>(), 64);
}

#[orchestrator(differential)]
async fn print_macros(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
    use std::fmt::Write;
    println!("double is {}", ctx.call_activity(double, n).await?);
    eprintln!("{n} -> {}", ctx.call_activity(add, (n, 1)).await?);
    let mut s = String::new();
    write!(s, "{}", ctx.call_activity(double, n + 1).await?)?;
    writeln!(&mut s, "|{:>4}", ctx.call_activity(tick, ()).await?)?;
    Ok(s)
}

#[test]
fn println_eprintln_write_and_writeln_with_awaited_arguments() {
    let t = diff!(print_macros, 3);
    assert_eq!(t.output::<String>(), "8|   7\n");
    assert_eq!(calls(&t), ["double(3)", "add([3,1])", "double(4)", "tick(null)"]);
}

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Item {
    name: String,
    qty: i64,
}

#[orchestrator(differential)]
async fn for_patterns(ctx: OrchestrationContext, items: Vec<Item>) -> Result<Vec<String>, OrchestrationError> {
    let mut out = vec![];
    for Item { name, qty } in items.clone() {
        out.push(format!("{name}={}", ctx.call_activity(double, qty).await?));
    }
    for (i, Item { name, .. }) in items.into_iter().enumerate().rev() {
        let g = ctx.call_activity(greet, name).await?;
        out.push(format!("{i}:{g}"));
    }
    let m: BTreeMap<String, Vec<i64>> = BTreeMap::from([("a".to_string(), vec![1, 2]), ("b".to_string(), vec![])]);
    for (k, mut v) in m {
        v.push(ctx.call_activity(len, k.clone()).await? as i64);
        out.push(format!("{k}{v:?}"));
    }
    Ok(out)
}

#[test]
fn for_loops_with_struct_tuple_and_map_patterns() {
    let t = diff!(for_patterns, vec![Item { name: "x".into(), qty: 2 }, Item { name: "y".into(), qty: 5 }]);
    assert_eq!(t.output::<Vec<String>>(), ["x=4", "y=10", "1:Hello y!", "0:Hello x!", "a[1, 2, 1]", "b[1]"]);
}

#[orchestrator(differential)]
async fn let_else_loop(ctx: OrchestrationContext, keys: Vec<String>) -> Result<Vec<String>, OrchestrationError> {
    let mut out = vec![];
    for k in keys {
        let Some(v) = ctx.call_activity(lookup, k.clone()).await? else {
            out.push(format!("skip {k}"));
            continue;
        };
        let Ok(n) = ctx.call_activity(fail, v.clone()).await else {
            out.push(ctx.call_activity(greet, v).await?);
            continue;
        };
        out.push(n.to_string());
    }
    Ok(out)
}

#[test]
fn let_else_with_awaits_in_scrutinee_and_else_inside_a_loop() {
    let t = diff!(let_else_loop, vec!["a".to_string(), "x".into(), "b".into()]);
    assert_eq!(t.output::<Vec<String>>(), ["Hello alpha!", "skip x", "Hello beta!"]);
}

#[orchestrator(differential)]
async fn timer_at_now(ctx: OrchestrationContext, secs: u64) -> Result<(u64, bool), OrchestrationError> {
    let start = ctx.now();
    ctx.timer_at(start + Duration::from_secs(secs)).await?;
    let waited = ctx.now().duration_since(start).unwrap().as_millis() as u64;
    let later = ctx.now() > start;
    Ok((waited, later))
}

#[test]
fn system_time_local_across_a_timer_at() {
    assert_eq!(diff!(timer_at_now, 30).output::<(u64, bool)>(), (1, true));
}

#[orchestrator(differential)]
async fn event_sum(ctx: OrchestrationContext, limit: i64) -> Result<(i64, usize), OrchestrationError> {
    let mut sum = 0;
    let mut skipped = 0;
    while let Ok(ev) = ctx.wait_for_event::<i64>("n").await {
        if ev < 0 {
            break;
        }
        if ev % 2 == 1 {
            skipped += 1;
            continue;
        }
        sum += ev;
        if sum > limit {
            return Ok((sum, skipped));
        }
    }
    Ok((sum, skipped))
}

#[test]
fn while_let_over_awaited_events_with_continue_break_and_return() {
    let script = || mock().event("n", 2).event("n", 3).event("n", 4).event("n", -1).event("n", 100);
    let t = same(run_state_machine::<event_sum>(100, script()), run_direct(event_sum::__durable_direct, 100, script()));
    assert_eq!(t.output::<(i64, usize)>(), (6, 1));
    let t = same(run_state_machine::<event_sum>(5, script()), run_direct(event_sum::__durable_direct, 5, script()));
    assert_eq!(t.output::<(i64, usize)>(), (6, 1));
}

#[orchestrator(differential)]
async fn borrowing_iterators(ctx: OrchestrationContext, s: String) -> Result<(String, Vec<i64>), OrchestrationError> {
    let v = vec![1i64, 2, 3];
    let mut out = vec![];
    for x in v.iter().copied().filter(|x| x % 2 == 1) {
        out.push(ctx.call_activity(double, x).await?);
    }
    for x in v.iter().map(|x| x * 10) {
        out.push(ctx.call_activity(add, (x, 1)).await?);
    }
    let mut up = String::new();
    for c in s.chars() {
        up.push_str(&ctx.call_activity(upper, c.to_string()).await?);
    }
    for w in s.split(',').map(str::to_string) {
        up.push_str(&ctx.call_activity(len, w).await?.to_string());
    }
    Ok((up, out))
}

#[test]
fn for_over_iterators_that_borrow_but_yield_owned_items() {
    let t = diff!(borrowing_iterators, "ab,c".to_string());
    assert_eq!(t.output::<(String, Vec<i64>)>(), ("AB,C21".to_string(), vec![2, 6, 11, 21, 31]));
}

// ---------------------------------------------------------------- collections and recursive types

#[orchestrator(differential)]
async fn nested_collections(
    ctx: OrchestrationContext,
    grid: Vec<Vec<i64>>,
) -> Result<(Vec<Vec<i64>>, BTreeMap<String, Vec<i64>>), OrchestrationError> {
    let mut out: Vec<Vec<i64>> = vec![];
    let mut index: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (r, row) in grid.into_iter().enumerate() {
        out.push(vec![]);
        for x in row {
            let d = ctx.call_activity(double, x).await?;
            out[r].push(d);
            out.last_mut().unwrap().sort();
            index.entry(format!("row{r}")).or_default().push(d);
            if d > 5 {
                index.entry("big".to_string()).or_insert_with(Vec::new).insert(0, d);
            }
        }
        if let Some(v) = index.get_mut(&format!("row{r}")) {
            v.dedup();
        }
    }
    index.retain(|k, v| k != "row1" || v.len() > 5);
    Ok((out, index))
}

#[test]
fn vec_of_vecs_and_btreemap_of_vecs_mutated_across_awaits() {
    let t = diff!(nested_collections, vec![vec![3, 1, 1], vec![4], vec![]]);
    assert_eq!(
        t.output::<(Vec<Vec<i64>>, BTreeMap<String, Vec<i64>>)>(),
        (
            vec![vec![2, 2, 6], vec![8], vec![]],
            BTreeMap::from([("big".to_string(), vec![8, 6]), ("row0".to_string(), vec![6, 2])])
        )
    );
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Node {
    v: i64,
    next: Option<Box<Node>>,
}

#[orchestrator(differential)]
async fn linked_list(
    ctx: OrchestrationContext,
    xs: Vec<i64>,
) -> Result<(Vec<i64>, Option<Box<Node>>), OrchestrationError> {
    let mut head: Option<Box<Node>> = None;
    for x in xs {
        let d = ctx.call_activity(double, x).await?;
        head = Some(Box::new(Node { v: d, next: head.take() }));
    }
    let mut vals = vec![];
    let mut cur = head.clone();
    while let Some(node) = cur {
        vals.push(ctx.call_activity(add, (node.v, 1)).await?);
        cur = node.next;
    }
    Ok((vals, head))
}

#[test]
fn a_linked_list_of_option_box_built_and_walked_across_awaits() {
    let t = diff!(linked_list, vec![1, 2, 3]);
    let n2 = Node { v: 2, next: None };
    let n4 = Node { v: 4, next: Some(Box::new(n2)) };
    let n6 = Node { v: 6, next: Some(Box::new(n4)) };
    assert_eq!(t.output::<(Vec<i64>, Option<Box<Node>>)>(), (vec![7, 5, 3], Some(Box::new(n6))));
}

#[orchestrator(differential)]
async fn string_work(
    ctx: OrchestrationContext,
    s: String,
) -> Result<(String, Vec<String>, BTreeMap<char, usize>), OrchestrationError> {
    let mut out = String::new();
    let mut counts = BTreeMap::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_alphabetic() {
            *counts.entry(c.to_ascii_lowercase()).or_insert(0) += 1;
            if i % 2 == 0 {
                out.push_str(&ctx.call_activity(upper, c.to_string()).await?);
            } else {
                out.push(c);
            }
        } else {
            out.push('_');
        }
    }
    let parts: Vec<String> =
        ctx.call_activity(words, out.replace('_', " ")).await?.into_iter().map(|w| w.chars().rev().collect()).collect();
    Ok((out, parts, counts))
}

#[test]
fn string_and_char_manipulation_with_char_keyed_map() {
    let t = diff!(string_work, "ab c,Da".to_string());
    assert_eq!(
        t.output::<(String, Vec<String>, BTreeMap<char, usize>)>(),
        (
            "Ab_c_DA".to_string(),
            vec!["bA".to_string(), "c".into(), "AD".into()],
            BTreeMap::from([('a', 2), ('b', 1), ('c', 1), ('d', 1)])
        )
    );
    assert_eq!(calls(&t), ["upper(\"a\")", "upper(\"a\")", "words(\"Ab c DA\")"]);
}

#[orchestrator(differential)]
async fn late_inference(
    ctx: OrchestrationContext,
    xs: Vec<i64>,
) -> Result<(Option<i64>, Vec<String>), OrchestrationError> {
    let mut best = None;
    let mut names = Vec::new();
    for x in xs {
        let d = ctx.call_activity(double, x).await?;
        if best.map_or(true, |b| d > b) {
            best = Some(d);
        }
        names.push(ctx.call_activity(greet, d.to_string()).await?);
    }
    Ok((best, names))
}

#[test]
fn locals_whose_type_is_only_known_after_an_await() {
    let t = diff!(late_inference, vec![3, 9, 1]);
    assert_eq!(
        t.output::<(Option<i64>, Vec<String>)>(),
        (Some(18), vec!["Hello 6!".to_string(), "Hello 18!".into(), "Hello 2!".into()])
    );
    assert_eq!(diff!(late_inference, vec![]).output::<(Option<i64>, Vec<String>)>(), (None, vec![]));
}

// ---------------------------------------------------------------- evaluation order and attributes

#[orchestrator(differential)]
async fn compound_assign_string(
    ctx: OrchestrationContext,
    _n: i64,
) -> Result<(Vec<String>, Vec<String>), OrchestrationError> {
    let mut names = vec![String::from("a")];
    let mut log: Vec<String> = vec![];
    // For a non-primitive `+=`, Rust evaluates the place (the index) before the right-hand side.
    names[{
        log.push("idx".into());
        0
    }] += &{
        log.push("rhs".into());
        ctx.call_activity(greet, "x".to_string()).await?
    };
    Ok((names, log))
}

#[test]
fn compound_assignment_on_a_string_evaluates_the_place_first() {
    let t = diff!(compound_assign_string, 0);
    assert_eq!(
        t.output::<(Vec<String>, Vec<String>)>(),
        (vec!["aHello x!".to_string()], vec!["idx".to_string(), "rhs".into()])
    );
}

#[orchestrator(differential)]
async fn cfg_enabled_and_allow_attributes(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    #[allow(unused_variables)]
    let unused = ctx.call_activity(double, n).await?;
    #[allow(unused_mut)]
    let mut x = ctx.call_activity(double, n).await?;
    let z = ctx.call_activity(double, 5).await?;
    if cfg!(all()) {
        x += ctx.call_activity(tick, ()).await?;
    }
    Ok(x + z)
}

#[test]
fn attributes_on_statements_that_await() {
    let t = diff!(cfg_enabled_and_allow_attributes, 1);
    assert_eq!(t.output::<i64>(), 19);
    assert_eq!(calls(&t), ["double(1)", "double(1)", "double(5)", "tick(null)"]);
}

#[orchestrator(differential)]
async fn do_while(ctx: OrchestrationContext, n: i64) -> Result<(i64, i64), OrchestrationError> {
    let mut x = n;
    let mut count = 0;
    while {
        x = ctx.call_activity(double, x).await?;
        x < 100
    } {
        count += 1;
    }
    Ok((x, count))
}

#[test]
fn do_while_idiom_with_an_await_in_a_block_condition() {
    let t = diff!(do_while, 1);
    assert_eq!(t.output::<(i64, i64)>(), (128, 6));
    assert_eq!(t.commands.len(), 7);
    assert_eq!(diff!(do_while, 200).output::<(i64, i64)>(), (400, 0));
}

#[orchestrator(differential)]
async fn format_scoping(ctx: OrchestrationContext, n: i64) -> Result<Vec<String>, OrchestrationError> {
    let x = 1;
    let a = format!("{x}{}", {
        let x = 2;
        ctx.call_activity(double, x).await?
    });
    let b = format!("{{x}} {{{n}}} {}", ctx.call_activity(double, n).await?);
    let c = format!("{:>1$}|{2:.3$}|{1}", ctx.call_activity(double, n).await?, 6, 1.23456, 2);
    Ok(vec![a, b, c])
}

#[test]
fn format_inline_capture_scoping_escapes_and_positional_width() {
    let t = diff!(format_scoping, 1);
    assert_eq!(t.output::<Vec<String>>(), ["14", "{x} {1} 2", "     2|1.23|6"]);
}

#[orchestrator(differential)]
async fn renamed_context(context: OrchestrationContext, n: i64) -> Result<i64, durable::OrchestrationError> {
    let a = context.call_activity(double, n).await?;
    let b = context.when_all(vec![context.call_activity(double, a)]).await?;
    Ok(b[0])
}

#[test]
fn a_context_parameter_not_named_ctx() {
    assert_eq!(diff!(renamed_context, 1).output::<i64>(), 4);
}
