//! Differential tests of the orchestrator compiler: each orchestrator runs (1) as the generated
//! state machine, its state serialized and deserialized at every suspension, and (2) as plain
//! async Rust; both must schedule exactly the same tasks in the same order and give the same
//! outcome.

use durable::prelude::*;
use durable_test_support::diff;
use durable_test_support::differential::*;
use std::collections::BTreeMap;

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
    let y = {
        let x = x * 10;
        ctx.call_activity(double, x).await?
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
async fn shadow_inner_block(
    ctx: OrchestrationContext,
    n: i64,
) -> Result<(String, i64, Vec<String>), OrchestrationError> {
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
    let Some(v) = found else {
        let n = ctx.call_activity(len, key).await?;
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
    assert_eq!(calls(&t), ["lookup(\"zzz\")", "lookup(\"zzz\")", "len(\"zzz\")"]);
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
        (d, true) => format!("small even {}", ctx.call_activity(add, (d, 1)).await?),
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
        [
            "add([0,1])",
            "add([0,3])",
            "add([1,2])",
            "add([2,1])",
            "add([2,3])",
            "add([3,2])",
            "add([4,1])",
            "add([5,2])"
        ]
    );
}

#[orchestrator(differential)]
async fn break_outer_from_plain_inner(
    ctx: OrchestrationContext,
    v: Vec<Vec<i64>>,
) -> Result<(i64, i64), OrchestrationError> {
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

// ---------------------------------------------------------------- `?`

#[orchestrator(differential)]
async fn ok_or_question(ctx: OrchestrationContext, key: String) -> Result<String, OrchestrationError> {
    let v = ctx.call_activity(lookup, key).await?.ok_or("no such key")?;
    let g = ctx.call_activity(greet, v).await?;
    Ok(g)
}

#[test]
fn question_mark_on_option_via_ok_or() {
    let t = diff!(ok_or_question, "a".to_string());
    assert_eq!(t.output::<String>(), "Hello alpha!");
    let t = diff!(ok_or_question, "q".to_string());
    assert_eq!(t.outcome, Err("no such key".to_string()));
    assert_eq!(calls(&t), ["lookup(\"q\")"]);
}

#[orchestrator(differential)]
async fn parse_question(ctx: OrchestrationContext, s: String) -> Result<i64, OrchestrationError> {
    let g = ctx.call_activity(len, s.clone()).await?;
    let n: i64 = s.parse()?;
    let d = ctx.call_activity(double, n).await?;
    Ok(d + g as i64)
}

#[test]
fn question_mark_on_plain_result_between_awaits() {
    let t = diff!(parse_question, "21".to_string());
    assert_eq!(t.output::<i64>(), 44);
    let t = diff!(parse_question, "x".to_string());
    assert_eq!(t.outcome, Err("invalid digit found in string".to_string()));
    assert_eq!(calls(&t), ["len(\"x\")"]);
}

#[orchestrator(differential)]
async fn question_nested(ctx: OrchestrationContext, grid: Vec<Vec<String>>) -> Result<i64, OrchestrationError> {
    let mut total = 0;
    for row in grid {
        for cell in row {
            if cell == "boom" {
                total += ctx.call_activity(fail, cell).await?;
            } else {
                let n = ctx.call_activity(len, cell).await?;
                total += n as i64;
            }
        }
    }
    Ok(total)
}

#[test]
fn question_mark_inside_nested_loops() {
    let t = diff!(question_nested, vec![vec!["ab".to_string(), "c".into()], vec!["dddd".into()]]);
    assert_eq!(t.output::<i64>(), 7);
    let t = diff!(question_nested, vec![vec!["ab".to_string(), "c".into()], vec!["boom".into(), "zzz".into()]]);
    assert_eq!(t.outcome, Err("failed on \"boom\"".to_string()));
    assert_eq!(calls(&t), ["len(\"ab\")", "len(\"c\")", "fail(\"boom\")"]);
}

#[orchestrator(differential)]
async fn failing_activity(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let a = ctx.call_activity(double, n).await?;
    let b = ctx.call_activity(fail, format!("step {a}")).await?;
    let c = ctx.call_activity(double, b).await?;
    Ok(c)
}

#[test]
fn failing_activity_propagates_with_question_mark() {
    let t = diff!(failing_activity, 2);
    assert_eq!(t.outcome, Err("failed on \"step 4\"".to_string()));
    assert_eq!(calls(&t), ["double(2)", "fail(\"step 4\")"]);
}

#[orchestrator(differential)]
async fn map_err_closure(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
    let prefix = format!("n={n}");
    let r = ctx.call_activity(fail, "x".to_string()).await.map_err(|e| format!("{prefix}: wrapped {e}"));
    let msg = match r {
        Ok(v) => v.to_string(),
        Err(m) => m,
    };
    let v = ctx.call_activity(double, n).await.map_err(|e| OrchestrationError::new(e.to_string()))?;
    Ok(format!("{msg}|{v}|{prefix}"))
}

#[test]
fn closures_without_awaits_applied_to_awaited_results() {
    let t = diff!(map_err_closure, 4);
    assert_eq!(t.output::<String>(), "n=4: wrapped failed on \"x\"|8|n=4");
}

// ---------------------------------------------------------------- awaits inside expressions

#[orchestrator(differential)]
async fn format_vec(ctx: OrchestrationContext, n: i64) -> Result<(String, Vec<i64>), OrchestrationError> {
    // An inline `{n}` in a format string whose arguments await does not compile (see report),
    // so `n` is passed positionally.
    let s =
        format!("{}-{}-{}", ctx.call_activity(double, n).await?, ctx.call_activity(greet, "x".to_string()).await?, n);
    let u = format!("{:?}", ctx.call_activity(fail, "f".to_string()).await.map_err(|e| e.message().len()));
    let v = vec![ctx.call_activity(double, 1).await?, n, ctx.call_activity(add, (n, 1)).await?];
    let s = s + "|" + &u;
    Ok((s, v))
}

#[test]
fn awaits_inside_format_and_vec_arguments() {
    let t = diff!(format_vec, 5);
    assert_eq!(t.output::<(String, Vec<i64>)>(), ("10-Hello x!-5|Err(13)".to_string(), vec![2, 5, 6]));
    assert_eq!(calls(&t), ["double(5)", "greet(\"x\")", "fail(\"f\")", "double(1)", "add([5,1])"]);
}

#[orchestrator(differential)]
async fn eval_order_args(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let mut counter = n;
    let r = combine(
        {
            counter += 1;
            counter
        },
        ctx.call_activity(double, counter).await?,
        {
            counter += 1;
            counter
        },
    );
    Ok(r * 1000 + counter)
}

#[test]
fn function_arguments_evaluate_left_to_right_around_an_await() {
    let t = diff!(eval_order_args, 1);
    assert_eq!(t.output::<i64>(), 243003);
    assert_eq!(calls(&t), ["double(2)"]);
}

#[orchestrator(differential)]
async fn method_args(ctx: OrchestrationContext, n: i64) -> Result<Vec<i64>, OrchestrationError> {
    let mut v = vec![n];
    v.push(ctx.call_activity(double, n).await?);
    v.insert(0, ctx.call_activity(add, (n, 100)).await?);
    let m = std::cmp::max(ctx.call_activity(double, 3).await?, ctx.call_activity(double, 2).await?);
    v.push(m);
    let total: i64 = v.iter().sum::<i64>() + ctx.call_activity(double, 0).await?;
    v.push(total);
    Ok(v)
}

#[test]
fn awaits_in_method_call_arguments() {
    let t = diff!(method_args, 5);
    assert_eq!(t.output::<Vec<i64>>(), vec![105, 5, 10, 6, 126]);
    assert_eq!(calls(&t), ["double(5)", "add([5,100])", "double(3)", "double(2)", "double(0)"]);
}

#[orchestrator(differential)]
async fn assign_order(ctx: OrchestrationContext, n: i64) -> Result<(Vec<i64>, Vec<String>), OrchestrationError> {
    let mut v = vec![0; 3];
    let mut log: Vec<String> = vec![];
    v[{
        log.push("idx".into());
        1
    }] = {
        log.push("rhs".into());
        ctx.call_activity(double, n).await?
    };
    v[{
        log.push("idx2".into());
        2
    }] += {
        log.push("rhs2".into());
        ctx.call_activity(double, n + 1).await?
    };
    let mut acc = 1;
    acc += ctx.call_activity(double, acc).await?;
    Ok((vec![v[0], v[1], v[2], acc], log))
}

#[test]
fn assignment_evaluation_order_with_await_on_the_right() {
    let t = diff!(assign_order, 3);
    let (v, log) = t.output::<(Vec<i64>, Vec<String>)>();
    assert_eq!(v, vec![0, 6, 8, 3]);
    assert_eq!(log, vec!["rhs", "idx", "rhs2", "idx2"]);
}

#[orchestrator(differential)]
async fn short_circuit(ctx: OrchestrationContext, n: i64) -> Result<(bool, bool, bool, bool), OrchestrationError> {
    let a = n > 0 && ctx.call_activity(is_even, n).await?;
    let b = n > 0 || ctx.call_activity(is_even, n + 1).await?;
    let c = ctx.call_activity(is_even, n).await? && ctx.call_activity(is_even, n + 2).await?;
    let d = ctx.call_activity(is_even, n + 1).await? || ctx.call_activity(is_even, n + 3).await?;
    Ok((a, b, c, d))
}

#[test]
fn short_circuit_skips_the_awaited_call() {
    let t = diff!(short_circuit, -1);
    assert_eq!(t.output::<(bool, bool, bool, bool)>(), (false, true, false, true));
    assert_eq!(calls(&t), ["is_even(0)", "is_even(-1)", "is_even(0)"]);
    let t = diff!(short_circuit, 4);
    assert_eq!(t.output::<(bool, bool, bool, bool)>(), (true, true, true, false));
    assert_eq!(calls(&t), ["is_even(4)", "is_even(4)", "is_even(6)", "is_even(5)", "is_even(7)"]);
}

#[orchestrator(differential)]
async fn short_circuit_in_if(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
    let mut out = String::new();
    if n > 10 && ctx.call_activity(is_even, n).await? {
        out.push_str("big-even;");
    }
    if n < 0 || ctx.call_activity(double, n).await? > 15 {
        out.push_str("neg-or-large;");
    }
    if (n == 3 || ctx.call_activity(is_even, n).await?) && !ctx.call_activity(is_even, n + 1).await? {
        out.push_str("three-or-even-and-next-odd;");
    }
    Ok(out)
}

#[test]
fn short_circuit_in_if_conditions() {
    let t = diff!(short_circuit_in_if, 3);
    assert_eq!(t.output::<String>(), "");
    assert_eq!(calls(&t), ["double(3)", "is_even(4)"]);
    let t = diff!(short_circuit_in_if, -2);
    assert_eq!(t.output::<String>(), "neg-or-large;three-or-even-and-next-odd;");
    assert_eq!(calls(&t), ["is_even(-2)", "is_even(-1)"]);
    let t = diff!(short_circuit_in_if, 12);
    assert_eq!(t.output::<String>(), "big-even;neg-or-large;three-or-even-and-next-odd;");
    assert_eq!(calls(&t), ["is_even(12)", "double(12)", "is_even(12)", "is_even(13)"]);
}

#[orchestrator(differential)]
async fn struct_literal(ctx: OrchestrationContext, n: i64) -> Result<(Report, (i64, String, i64)), OrchestrationError> {
    let r = Report {
        doubled: ctx.call_activity(double, n).await?,
        name: ctx.call_activity(greet, "r".to_string()).await?,
        sum: n + ctx.call_activity(add, (n, n)).await?,
        tags: vec!["t".to_string()],
    };
    let t = (ctx.call_activity(double, r.doubled).await?, r.name.clone(), n);
    Ok((r, t))
}

#[test]
fn struct_literals_and_tuples_with_awaited_fields() {
    let t = diff!(struct_literal, 3);
    let (r, tup) = t.output::<(Report, (i64, String, i64))>();
    assert_eq!(r, Report { name: "Hello r!".into(), doubled: 6, sum: 9, tags: vec!["t".into()] });
    assert_eq!(tup, (12, "Hello r!".to_string(), 3));
    assert_eq!(calls(&t), ["double(3)", "greet(\"r\")", "add([3,3])", "double(6)"]);
}

#[orchestrator(differential)]
async fn tail_and_return_awaits(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    if n < 0 {
        return Ok(ctx.call_activity(double, -n).await? + 1);
    }
    Ok(ctx.call_activity(double, n).await? * 10)
}

#[test]
fn awaits_in_return_and_tail_expressions() {
    assert_eq!(diff!(tail_and_return_awaits, -4).output::<i64>(), 9);
    assert_eq!(diff!(tail_and_return_awaits, 4).output::<i64>(), 80);
}

#[orchestrator(differential)]
async fn if_as_argument(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let r = combine(
        if n > 0 { ctx.call_activity(double, n).await? } else { 0 },
        match n % 3 {
            0 => ctx.call_activity(add, (n, 1)).await?,
            _ => 7,
        },
        n,
    );
    Ok(r)
}

#[test]
fn if_and_match_expressions_with_awaits_as_arguments() {
    assert_eq!(diff!(if_as_argument, 3).output::<i64>(), 6 * 100 + 4 * 10 + 3);
    let t = diff!(if_as_argument, -2);
    assert_eq!(t.output::<i64>(), 70 - 2);
    assert!(calls(&t).is_empty());
}

#[orchestrator(differential)]
async fn block_values(ctx: OrchestrationContext, n: i64) -> Result<(i64, i64, i64), OrchestrationError> {
    let a = {
        let t = ctx.call_activity(double, n).await?;
        t + 1
    };
    let b = {
        let inner = { ctx.call_activity(add, (a, 1)).await? * 2 };
        if inner > 10 { inner } else { -inner }
    };
    let c = 'blk: {
        if a > 100 {
            break 'blk 0;
        }
        let d = ctx.call_activity(double, b).await?;
        if d > 50 {
            break 'blk d;
        }
        d + 1000
    };
    Ok((a, b, c))
}

#[test]
fn block_expressions_and_labeled_blocks_as_values() {
    assert_eq!(diff!(block_values, 2).output::<(i64, i64, i64)>(), (5, 12, 1024));
    assert_eq!(diff!(block_values, 20).output::<(i64, i64, i64)>(), (41, 84, 168));
    let t = diff!(block_values, 60);
    assert_eq!(t.output::<(i64, i64, i64)>(), (121, 244, 0));
    assert_eq!(calls(&t).len(), 2);
}

// ---------------------------------------------------------------- durable tasks, fan-out, timers, events

#[orchestrator(differential)]
async fn task_locals(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let t1 = ctx.call_activity(double, n);
    let t2 = ctx.call_activity(add, (n, 1));
    let b = t2.await?;
    let x = ctx.call_activity(double, b).await?;
    let a = t1.await?;
    Ok(a * 1000 + b * 10 + x)
}

#[test]
fn durable_tasks_kept_in_locals_and_awaited_later() {
    let t = diff!(task_locals, 4);
    assert_eq!(t.output::<i64>(), 8060);
    assert_eq!(calls(&t), ["double(4)", "add([4,1])", "double(5)"]);
}

#[orchestrator(differential)]
async fn task_from_match(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let t = match n {
        0 => ctx.call_activity(double, 1),
        _ => ctx.call_activity(add, (n, n)),
    };
    let other = if n > 5 { Some(ctx.call_activity(double, n)) } else { None };
    let first = t.await?;
    let second = match other {
        Some(o) => o.await?,
        None => -1,
    };
    Ok(first * 1000 + second)
}

#[test]
fn tasks_chosen_by_match_and_optional_tasks() {
    assert_eq!(diff!(task_from_match, 0).output::<i64>(), 2000 - 1);
    let t = diff!(task_from_match, 7);
    assert_eq!(t.output::<i64>(), 14000 + 14);
    assert_eq!(calls(&t), ["add([7,7])", "double(7)"]);
}

#[orchestrator(differential)]
async fn fan_out(ctx: OrchestrationContext, v: Vec<i64>) -> Result<(Vec<i64>, i64), OrchestrationError> {
    let mut tasks = Vec::new();
    for x in &v {
        tasks.push(ctx.call_activity(double, *x));
    }
    let results = ctx.when_all(tasks).await?;
    let total = results.iter().sum();
    let again: Vec<_> = results.iter().map(|r| ctx.call_activity(add, (*r, 1))).collect();
    let plus: Vec<i64> = ctx.when_all(again).await?;
    Ok((plus, total))
}

#[test]
fn fan_out_with_when_all() {
    let t = diff!(fan_out, vec![1, 2, 3]);
    assert_eq!(t.output::<(Vec<i64>, i64)>(), (vec![3, 5, 7], 12));
    assert_eq!(calls(&t), ["double(1)", "double(2)", "double(3)", "add([2,1])", "add([4,1])", "add([6,1])"]);
    let t = diff!(fan_out, vec![]);
    assert_eq!(t.output::<(Vec<i64>, i64)>(), (vec![], 0));
}

#[orchestrator(differential)]
async fn fan_out_failure(ctx: OrchestrationContext, n: i64) -> Result<Vec<i64>, OrchestrationError> {
    let tasks = vec![
        ctx.call_activity(double, n),
        ctx.call_activity(fail, "fan".to_string()),
        ctx.call_activity(double, n + 1),
    ];
    // As `let r = match … { Ok(v) => v, Err(e) => { …await…; return … } }` this does not
    // compile (see report: a diverging branch with an await in a value-producing match).
    // (`let r;` assigned in the arms does not compile either, see report.)
    let mut r = Vec::new();
    match ctx.when_all(tasks).await {
        Ok(v) => r.extend(v),
        Err(e) => {
            let undone = ctx.call_activity(undo, e.message().to_string()).await?;
            return Err(OrchestrationError::new(undone));
        }
    }
    Ok(r)
}

#[test]
fn fan_out_with_a_failing_task() {
    let t = diff!(fan_out_failure, 1);
    assert_eq!(t.outcome, Err("undone failed on \"fan\"".to_string()));
    assert_eq!(calls(&t).len(), 4);
}

#[orchestrator(differential)]
async fn when_any_first(ctx: OrchestrationContext, n: i64) -> Result<(usize, i64, Vec<()>), OrchestrationError> {
    let tasks = vec![ctx.call_activity(double, n), ctx.call_activity(add, (n, 1))];
    let (i, r) = ctx.when_any(tasks).await;
    let timers = vec![ctx.timer(Duration::from_secs(5)), ctx.timer(Duration::from_secs(1))];
    let (j, _) = ctx.when_any(timers).await;
    let all = ctx.when_all(vec![ctx.timer(Duration::from_secs(2)), ctx.timer(Duration::from_secs(3))]).await?;
    Ok((i * 10 + j, r?, all))
}

#[test]
fn when_any_over_activities_and_timers() {
    let t = diff!(when_any_first, 5);
    assert_eq!(t.output::<(usize, i64, Vec<()>)>(), (0, 10, vec![(), ()]));
}

#[orchestrator(differential)]
async fn select_timeout(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
    let r = match ctx.select(ctx.call_activity(double, n), ctx.timer(Duration::from_secs(30))).await {
        Either::Left(v) => format!("done {}", v?),
        Either::Right(_) => "timeout".to_string(),
    };
    let e = match ctx.select(ctx.wait_for_event::<i64>("approve"), ctx.timer(Duration::from_secs(60))).await {
        Either::Left(v) => v?,
        Either::Right(_) => -1,
    };
    Ok(format!("{r}/{e}"))
}

#[test]
fn select_activity_or_event_against_timer() {
    let t = diff!(select_timeout, 5);
    assert_eq!(t.output::<String>(), "done 10/-1");
    assert_eq!(calls(&t), ["double(5)", "timer", "cancel", "timer"]);
    let t = diff!(select_timeout, 5, mock().event("approve", 7));
    assert_eq!(t.output::<String>(), "done 10/7");
    assert_eq!(calls(&t), ["double(5)", "timer", "cancel", "timer", "cancel"]);
}

#[orchestrator(differential)]
async fn select_loop(ctx: OrchestrationContext, max: i64) -> Result<String, OrchestrationError> {
    let mut ticks = 0;
    loop {
        match ctx.select(ctx.wait_for_event::<String>("go"), ctx.timer(Duration::from_secs(10))).await {
            Either::Left(v) => return Ok(format!("{}:{ticks}", v?)),
            Either::Right(_) => {
                ticks += 1;
                if ticks == max {
                    break;
                }
            }
        }
    }
    Ok(format!("timeout {ticks}"))
}

#[test]
fn select_in_a_loop_until_event_or_timeouts() {
    let t = diff!(select_loop, 3);
    assert_eq!(t.output::<String>(), "timeout 3");
    assert_eq!(calls(&t), ["timer", "timer", "timer"]);
    let t = diff!(select_loop, 3, mock().event("go", "now"));
    assert_eq!(t.output::<String>(), "now:0");
}

#[orchestrator(differential)]
async fn events(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let a: i64 = ctx.wait_for_event("a").await?;
    let b = ctx.wait_for_event::<String>("b").await?;
    let d = ctx.call_activity(double, a + n).await?;
    Ok(d + b.len() as i64)
}

#[test]
fn external_events_in_and_out_of_order() {
    let t = diff!(events, 1, mock().event("a", 5).event("b", "xyz"));
    assert_eq!(t.output::<i64>(), 15);
    let t = diff!(events, 1, mock().event("b", "xyz").event("a", 5));
    assert_eq!(t.output::<i64>(), 15);
    assert_eq!(calls(&t), ["double(6)"]);
}

#[orchestrator(differential)]
async fn sub_orchestration(ctx: OrchestrationContext, n: i64) -> Result<Vec<String>, OrchestrationError> {
    let mut out = vec![];
    for i in 0..n {
        out.push(ctx.call_orchestrator(child, i).await?);
    }
    let t = ctx.call_orchestrator(child, 99).with_instance_id("fixed");
    out.push(t.await?);
    Ok(out)
}

#[test]
fn sub_orchestrations_in_a_loop() {
    let t = diff!(sub_orchestration, 2);
    assert_eq!(t.output::<Vec<String>>(), vec!["child(0)", "child(1)", "child(99)"]);
    assert_eq!(calls(&t), ["sub child(0)", "sub child(1)", "sub child(99)"]);
}

#[orchestrator(differential)]
async fn compensate(ctx: OrchestrationContext, items: Vec<String>) -> Result<Vec<String>, OrchestrationError> {
    let mut done: Vec<String> = Vec::new();
    let mut log = Vec::new();
    for it in items {
        match ctx.call_activity(reserve, it.clone()).await {
            Ok(r) => {
                done.push(it);
                log.push(r);
            }
            Err(e) => {
                log.push(format!("error: {e}"));
                while let Some(d) = done.pop() {
                    log.push(ctx.call_activity(undo, d).await?);
                }
                return Ok(log);
            }
        }
    }
    Ok(log)
}

#[test]
fn compensation_on_failure() {
    let t = diff!(compensate, vec!["a".to_string(), "b".into(), "bad".into(), "c".into()]);
    assert_eq!(
        t.output::<Vec<String>>(),
        vec!["reserved a", "reserved b", "error: cannot reserve bad", "undone b", "undone a"]
    );
    assert_eq!(calls(&t).len(), 5);
    let t = diff!(compensate, vec!["a".to_string()]);
    assert_eq!(t.output::<Vec<String>>(), vec!["reserved a"]);
}

#[orchestrator(differential)]
async fn error_guard_match(ctx: OrchestrationContext, what: String) -> Result<i64, OrchestrationError> {
    let v = match ctx.call_activity(fail, what.clone()).await {
        Ok(v) => v,
        Err(e) if e.message().contains("retry") => ctx.call_activity(len, what).await? as i64,
        Err(e) => return Err(e.into()),
    };
    Ok(v)
}

#[test]
fn match_on_task_error_with_guard() {
    let t = diff!(error_guard_match, "retry-me".to_string());
    assert_eq!(t.output::<i64>(), 8);
    let t = diff!(error_guard_match, "other".to_string());
    assert_eq!(t.outcome, Err("failed on \"other\"".to_string()));
}

// ---------------------------------------------------------------- ranges and iterators

#[orchestrator(differential)]
async fn ranges(ctx: OrchestrationContext, n: i64) -> Result<(i64, i64, Vec<i64>, i64), OrchestrationError> {
    let mut a = 0;
    for i in 0..n {
        a += ctx.call_activity(double, i).await?;
    }
    let mut b = 0;
    for i in 0..=n {
        b += ctx.call_activity(add, (i, b)).await?;
    }
    let mut c = vec![];
    for i in (1..=n).rev() {
        c.push(ctx.call_activity(double, i).await?);
    }
    let mut empty = 0;
    for i in n..0 {
        empty += ctx.call_activity(double, i).await?;
    }
    for i in 0..=0 {
        empty += ctx.call_activity(add, (i, 100)).await?;
    }
    Ok((a, b, c, empty))
}

#[test]
fn exclusive_inclusive_reversed_and_empty_ranges() {
    let t = diff!(ranges, 3);
    assert_eq!(t.output::<(i64, i64, Vec<i64>, i64)>(), (6, 11, vec![6, 4, 2], 100));
    assert_eq!(calls(&t).len(), 3 + 4 + 3 + 1);
}

#[orchestrator(differential)]
async fn range_to_max(ctx: OrchestrationContext, _n: i64) -> Result<Vec<u8>, OrchestrationError> {
    let mut v = vec![];
    for i in 253u8..=u8::MAX {
        let d = ctx.call_activity(double, i as i64).await?;
        v.push(i);
        v.push((d % 256) as u8);
    }
    Ok(v)
}

#[test]
fn inclusive_range_up_to_the_type_maximum_terminates() {
    let t = diff!(range_to_max, 0);
    assert_eq!(t.output::<Vec<u8>>(), vec![253, 250, 254, 252, 255, 254]);
    assert_eq!(calls(&t).len(), 3);
}

#[orchestrator(differential)]
async fn enumerate(ctx: OrchestrationContext, v: Vec<String>) -> Result<Vec<String>, OrchestrationError> {
    let mut out = vec![];
    for (i, x) in v.into_iter().enumerate() {
        let g = ctx.call_activity(greet, x).await?;
        out.push(format!("{i}:{g}"));
    }
    Ok(out)
}

#[test]
fn for_over_enumerate_with_tuple_pattern() {
    let t = diff!(enumerate, vec!["a".to_string(), "b".into()]);
    assert_eq!(t.output::<Vec<String>>(), vec!["0:Hello a!", "1:Hello b!"]);
}

#[orchestrator(differential)]
async fn iterator_chain(ctx: OrchestrationContext, v: Vec<i64>) -> Result<BTreeMap<String, i64>, OrchestrationError> {
    let names: Vec<String> = ["zero", "one", "two", "three", "four"].iter().map(|s| s.to_string()).collect();
    let mut m = BTreeMap::new();
    for (x, name) in v.iter().copied().zip(names.into_iter()).filter(|(x, _)| *x >= 0).skip(1) {
        m.insert(name, ctx.call_activity(double, x).await?);
    }
    let mut total = 0;
    for (k, val) in m.clone() {
        total += ctx.call_activity(add, (val, k.len() as i64)).await?;
    }
    m.insert("total".into(), total);
    Ok(m)
}

#[test]
fn for_over_iterator_chain_and_btreemap() {
    let t = diff!(iterator_chain, vec![1, -1, 2, 3, -5]);
    let m = t.output::<BTreeMap<String, i64>>();
    // zip: (1,zero) (-1,one) (2,two) (3,three) (-5,four); filter >= 0; skip 1 => two, three
    assert_eq!(m, BTreeMap::from([("two".to_string(), 4), ("three".into(), 6), ("total".into(), 4 + 3 + 6 + 5)]));
    assert_eq!(calls(&t), ["double(2)", "double(3)", "add([6,5])", "add([4,3])"]);
}

#[orchestrator(differential)]
async fn no_await(_ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let v: Vec<i64> = (0..n).collect();
    Ok(v.iter().sum())
}

#[test]
fn body_without_any_await() {
    let t = diff!(no_await, 5);
    assert_eq!(t.output::<i64>(), 10);
    assert_eq!(t.steps, 1);
}

// ---------------------------------------------------------------- locals of many types, context helpers

#[orchestrator(differential)]
async fn closures_near_awaits(
    ctx: OrchestrationContext,
    n: i64,
) -> Result<(i64, String, Vec<i64>), OrchestrationError> {
    let a = ctx.call_activity(double, n).await?;
    let tripled: Vec<i64> = (0..a).map(|x| x * 3).filter(|x| x % 2 == 0).collect();
    let s = format!("{a}:{}", tripled.len());
    assert!(a >= 0, "a must be non-negative: {a}");
    let b = ctx.call_activity(add, (a, tripled.iter().sum())).await?;
    let mut sorted = vec![b, a, n];
    sorted.sort_by(|x, y| y.cmp(x));
    let label = {
        let f = |x: i64| format!("<{x}>");
        f(b)
    };
    Ok((b, s + &label, sorted))
}

#[test]
fn closures_and_macros_without_awaits_next_to_awaits() {
    let t = diff!(closures_near_awaits, 3);
    assert_eq!(t.output::<(i64, String, Vec<i64>)>(), (24, "6:3<24>".to_string(), vec![24, 6, 3]));
}

#[orchestrator(differential)]
async fn many_types(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
    let i: i32 = 7;
    let u = 42u64;
    let f = 1.5f64;
    let nan = f64::NAN;
    let small = -3i8;
    let s = String::from("s");
    let v = vec![1, 2, 3];
    let mut m = BTreeMap::new();
    m.insert(3u32, "three".to_string());
    m.insert(1, "one".into());
    let mut tuple_keys = BTreeMap::new();
    tuple_keys.insert((2, 'b'), vec![1.0f32]);
    let o: Option<i64> = None;
    let o2 = Some("x".to_string());
    let t = (1u8, 'c', true);
    let rep = Report { name: "r".into(), doubled: 0, sum: 0, tags: vec![] };
    let unit = ();
    let sh = Shape::Rect { w: 1, h: 2 };
    let d = ctx.call_activity(double, n).await?;
    let h = ctx.call_activity(half, f).await?;
    m.insert(d as u32, "d".into());
    Ok(format!(
        "{i} {u} {f} {} {small} {s} {v:?} {m:?} {tuple_keys:?} {o:?} {o2:?} {t:?} {} {unit:?} {sh:?} {d} {h}",
        nan.is_nan(),
        rep.name
    ))
}

#[test]
fn locals_of_many_types_survive_suspension() {
    let t = diff!(many_types, 5);
    assert_eq!(
        t.output::<String>(),
        "7 42 1.5 true -3 s [1, 2, 3] {1: \"one\", 3: \"three\", 10: \"d\"} {(2, 'b'): [1.0]} None Some(\"x\") (1, 'c', true) r () Rect { w: 1, h: 2 } 10 0.75"
    );
}

#[orchestrator(differential)]
async fn floats(ctx: OrchestrationContext, x: f64) -> Result<Vec<f64>, OrchestrationError> {
    let mut acc = vec![];
    let mut y = x;
    while y > 1.0 {
        y = ctx.call_activity(half, y).await?;
        acc.push(y);
    }
    let inf = f64::INFINITY;
    let z = ctx.call_activity(half, 3.0).await?;
    acc.push(if inf > z { z } else { 0.0 });
    Ok(acc)
}

#[test]
fn float_locals_and_float_loop_condition() {
    let t = diff!(floats, 10.0);
    assert_eq!(t.output::<Vec<f64>>(), vec![5.0, 2.5, 1.25, 0.625, 1.5]);
}

#[orchestrator(differential)]
async fn uuid_now(ctx: OrchestrationContext, _n: i64) -> Result<(bool, u64, String), OrchestrationError> {
    let id1 = ctx.new_uuid();
    let t1 = ctx.now();
    let _ = ctx.call_activity(double, 1).await?;
    let id2 = ctx.new_uuid();
    let t2 = ctx.now();
    let g = ctx.call_activity(greet, id1.to_string()).await?;
    let elapsed = t2.duration_since(t1).unwrap().as_millis() as u64;
    Ok((id1 != id2, elapsed, g.replace(&id1.to_string(), "ID")))
}

#[test]
fn uuid_and_now_across_awaits() {
    let t = diff!(uuid_now, 0);
    assert_eq!(t.output::<(bool, u64, String)>(), (true, 1, "Hello ID!".to_string()));
    // deterministic: a second run schedules exactly the same UUID
    let t2 = diff!(uuid_now, 0);
    assert_eq!(t.commands, t2.commands);
}

#[orchestrator(differential)]
async fn custom_status(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    ctx.set_custom_status("starting");
    let mut a = n;
    for i in 0..3 {
        a = ctx.call_activity(double, a).await?;
        ctx.set_custom_status(format!("step {i}: {a}"));
    }
    ctx.set_custom_status(serde_json::json!({ "done": true, "value": a }));
    Ok(a)
}

#[test]
fn custom_status_between_awaits() {
    let t = diff!(custom_status, 1);
    assert_eq!(t.output::<i64>(), 8);
}

#[orchestrator(differential)]
async fn continue_as_new_body(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let d = ctx.call_activity(double, n).await?;
    if d < 100 {
        ctx.continue_as_new(d);
        return Ok(-1);
    }
    Ok(d)
}

#[test]
fn continue_as_new_with_new_input() {
    let t = diff!(continue_as_new_body, 3);
    assert_eq!(t.continued_as_new, Some("6".to_string()));
    assert_eq!(t.output::<i64>(), -1);
    let t = diff!(continue_as_new_body, 60);
    assert_eq!(t.continued_as_new, None);
    assert_eq!(t.output::<i64>(), 120);
}

// ---------------------------------------------------------------- nesting, many locals, long loops

#[orchestrator(differential)]
async fn deep_nesting(ctx: OrchestrationContext, cmds: Vec<String>) -> Result<Vec<i64>, OrchestrationError> {
    let mut out = vec![];
    let mut acc = 0i64;
    for c in cmds {
        match c.as_str() {
            "dbl" => {
                let mut k = 0;
                while k < 2 {
                    acc = ctx.call_activity(double, acc + 1).await?;
                    k += 1;
                }
            }
            s if s.starts_with("add") => {
                let n: i64 = s[3..].parse()?;
                for i in 0..n {
                    if i % 2 == 1 {
                        continue;
                    }
                    acc = ctx.call_activity(add, (acc, i)).await?;
                }
            }
            "skip" => continue,
            "stop" => break,
            _ => {
                out.push(-1);
            }
        }
        out.push(acc);
    }
    Ok(out)
}

#[test]
fn awaits_in_loops_in_match_arms_in_a_loop() {
    let t = diff!(
        deep_nesting,
        ["dbl", "add4", "skip", "x", "stop", "dbl"].iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(t.output::<Vec<i64>>(), vec![6, 8, -1, 8]);
    assert_eq!(calls(&t), ["double(1)", "double(3)", "add([6,0])", "add([6,2])"]);
    let t = diff!(deep_nesting, vec!["addx".to_string()]);
    assert_eq!(t.outcome, Err("invalid digit found in string".to_string()));
}

#[orchestrator(differential)]
async fn deep_nesting2(ctx: OrchestrationContext, n: i64) -> Result<Vec<String>, OrchestrationError> {
    let mut log = vec![];
    'a: for i in 0..n {
        match i % 3 {
            0 => {
                let mut j = 0;
                loop {
                    if j == 2 {
                        break;
                    }
                    let r = if ctx.call_activity(is_even, i + j).await? {
                        ctx.call_activity(double, i + j).await?
                    } else {
                        match ctx.call_activity(maybe, j).await? {
                            Some(v) if v > 0 => v,
                            Some(_) => 0,
                            None => continue 'a,
                        }
                    };
                    log.push(format!("{i}.{j}={r}"));
                    j += 1;
                }
            }
            1 => {
                for k in 0..=1 {
                    if k == 1 && i > 3 {
                        break 'a;
                    }
                    log.push(format!("{}:{}", i, ctx.call_activity(add, (i, k)).await?));
                }
            }
            _ => log.push(format!("{i}:skip")),
        }
    }
    Ok(log)
}

#[test]
fn deep_nesting_with_labeled_exits_from_match_arms() {
    let t = diff!(deep_nesting2, 6);
    // i=0: j=0 even -> 0; j=1 odd -> maybe(1)=10. i=1: 1, 2. i=2 skip.
    // i=3: j=0 odd -> maybe(0)=Some(0) -> 0; j=1 even -> 8. i=4: k=0 -> 4, k=1 -> break 'a.
    assert_eq!(t.output::<Vec<String>>(), vec!["0.0=0", "0.1=10", "1:1", "1:2", "2:skip", "3.0=0", "3.1=8", "4:4"]);
}

#[orchestrator(differential)]
async fn many_locals(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let a1 = n;
    let a2 = n + 1;
    let a3 = n + 2;
    let a4 = n * 2;
    let a5 = format!("{n}");
    let a6 = vec![n; 3];
    let a7 = Some(n);
    let a8 = (n, n + 1);
    let a9 = n as f64 / 2.0;
    let a10 = n % 3;
    let b1 = ctx.call_activity(double, a1).await?;
    let a11 = b1 + a2;
    let b2 = ctx.call_activity(add, (a3, a4)).await?;
    let a12 = a5.len() as i64 + a6.len() as i64;
    let b3 = ctx.call_activity(double, a7.unwrap_or(0) + a8.1).await?;
    let b4 = ctx.call_activity(add, (a9 as i64, a10)).await?;
    let a13 = b1 + b2 + b3 + b4;
    let b5 = ctx.call_activity(double, a11 + a12 + a13).await?;
    Ok(b5 + a1 + a2 + a3 + a4 + a8.0 + a10 + a12)
}

#[test]
fn many_locals_across_several_awaits() {
    let t = diff!(many_locals, 4);
    // b1=8, a11=13, b2=6+8=14, a12=1+3=4, b3=2*(4+5)=18, b4=2+1=3, a13=43, b5=2*(13+4+43)=120
    assert_eq!(t.output::<i64>(), 120 + 4 + 5 + 6 + 8 + 4 + 1 + 4);
}

#[orchestrator(differential)]
async fn long_loop(ctx: OrchestrationContext, n: i64) -> Result<(i64, usize), OrchestrationError> {
    let mut acc = 0;
    let mut seen = Vec::new();
    for i in 0..n {
        acc = ctx.call_activity(add, (acc, i)).await?;
        if i % 50 == 0 {
            seen.push(acc);
        }
    }
    Ok((acc, seen.len()))
}

#[test]
fn long_loop_of_200_awaits() {
    let t = diff!(long_loop, 200);
    assert_eq!(t.output::<(i64, usize)>(), (19900, 4));
    assert_eq!(t.commands.len(), 200);
    assert_eq!(t.steps, 201);
}

#[orchestrator(differential)]
async fn unit_input(ctx: OrchestrationContext, _input: ()) -> Result<(String, i64), OrchestrationError> {
    let (a, b) = (
        ctx.call_activity(concat, ("ab".to_string(), "cd".to_string())).await?,
        ctx.call_activity(sum, vec![1, 2, 3]).await?,
    );
    let Report { name, tags, .. } = Report { name: a.clone(), doubled: 0, sum: b, tags: vec![a] };
    let c = ctx.call_activity(len, name).await?;
    Ok((tags.concat(), b + c as i64))
}

#[test]
fn unit_input_tuple_and_struct_destructuring() {
    let t = diff!(unit_input, ());
    assert_eq!(t.output::<(String, i64)>(), ("abcd".to_string(), 10));
}

// ---------------------------------------------------------------- more shadowing and loop edge cases

#[orchestrator(differential)]
async fn shadow_per_iteration(ctx: OrchestrationContext, n: i64) -> Result<Vec<i64>, OrchestrationError> {
    let x = n;
    let mut out = vec![];
    for _ in 0..3 {
        out.push(x);
        let x = ctx.call_activity(double, x).await?;
        out.push(x);
        let x = ctx.call_activity(add, (x, 1)).await?;
        out.push(x);
    }
    out.push(x);
    Ok(out)
}

#[test]
fn shadowing_inside_loop_body_does_not_leak_into_next_iteration() {
    let t = diff!(shadow_per_iteration, 2);
    assert_eq!(t.output::<Vec<i64>>(), vec![2, 4, 5, 2, 4, 5, 2, 4, 5, 2]);
}

#[orchestrator(differential)]
async fn shadow_in_match_arm(ctx: OrchestrationContext, v: Vec<Option<i64>>) -> Result<Vec<i64>, OrchestrationError> {
    let mut out = vec![];
    let n = 100;
    for o in v {
        match o {
            Some(n) if n > 0 => {
                let n = ctx.call_activity(double, n).await?;
                out.push(n);
            }
            Some(n) => {
                let m = ctx.call_activity(add, (n, 1)).await?;
                out.push(m);
                out.push(n);
            }
            None => out.push(n),
        }
    }
    Ok(out)
}

#[test]
fn match_bindings_shadowing_an_outer_local() {
    let t = diff!(shadow_in_match_arm, vec![Some(3), None, Some(-5)]);
    assert_eq!(t.output::<Vec<i64>>(), vec![6, 100, -4, -5]);
}

#[orchestrator(differential)]
async fn while_labeled_continue(ctx: OrchestrationContext, v: Vec<i64>) -> Result<(i64, Vec<i64>), OrchestrationError> {
    let mut i = 0usize;
    let mut out = vec![];
    let mut evals = 0;
    'w: while {
        evals += 1;
        i < v.len()
    } && ctx.call_activity(is_even, v[i]).await?
    {
        let x = v[i];
        i += 1;
        for k in 0..3 {
            if k == x {
                continue 'w;
            }
        }
        out.push(ctx.call_activity(double, x).await?);
    }
    Ok((evals, out))
}

#[test]
fn labeled_continue_to_while_with_awaited_condition() {
    let t = diff!(while_labeled_continue, vec![2, 4, 0, 6, 7, 8]);
    // 2: continue 'w (k==2); 4 -> 8; 0 -> continue; 6 -> 12; 7 odd stops.
    assert_eq!(t.output::<(i64, Vec<i64>)>(), (5, vec![8, 12]));
    assert_eq!(
        calls(&t),
        ["is_even(2)", "is_even(4)", "double(4)", "is_even(0)", "is_even(6)", "double(6)", "is_even(7)"]
    );
}

#[orchestrator(differential)]
async fn loop_in_match_value(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let r = match n {
        0 => 0,
        _ => {
            let mut x = 1;
            loop {
                x = ctx.call_activity(double, x).await?;
                if x >= n {
                    break x;
                }
            }
        }
    };
    let s = if r > 10 {
        let mut c = 0;
        while c < 2 {
            c += ctx.call_activity(add, (0, 1)).await?;
        }
        r + c
    } else {
        r
    };
    Ok(s)
}

#[test]
fn loop_with_break_value_as_a_match_arm_value() {
    assert_eq!(diff!(loop_in_match_value, 20).output::<i64>(), 34);
    assert_eq!(diff!(loop_in_match_value, 5).output::<i64>(), 8);
    assert_eq!(diff!(loop_in_match_value, 0).output::<i64>(), 0);
}

#[orchestrator(differential)]
async fn option_chain(ctx: OrchestrationContext, keys: Vec<String>) -> Result<Vec<String>, OrchestrationError> {
    let mut out = vec![];
    for k in keys {
        let v = {
            let found = ctx.call_activity(lookup, k.clone()).await?;
            found.map(|s| s.to_uppercase()).ok_or_else(|| format!("missing {k}"))
        };
        match v {
            Ok(s) => out.push(s),
            Err(e) if e.ends_with('z') => return Err(e.into()),
            Err(e) => out.push(e),
        }
    }
    Ok(out)
}

#[test]
fn option_combinators_and_error_arms() {
    let t = diff!(option_chain, vec!["a".to_string(), "q".into(), "b".into()]);
    assert_eq!(t.output::<Vec<String>>(), vec!["ALPHA", "missing q", "BETA"]);
    let t = diff!(option_chain, vec!["a".to_string(), "z".into(), "b".into()]);
    assert_eq!(t.outcome, Err("missing z".to_string()));
    assert_eq!(calls(&t).len(), 2);
}

// ---------------------------------------------------------------- regressions found by this suite

#[orchestrator(differential)]
async fn diverging_arm_in_value_match(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let r = match n {
        0 => 1,
        _ => {
            let d = ctx.call_activity(double, n).await?;
            return Ok(d);
        }
    };
    Ok(r)
}

#[test]
fn an_arm_that_awaits_then_returns_in_a_value_match() {
    assert_eq!(diff!(diverging_arm_in_value_match, 0).output::<i64>(), 1);
    assert_eq!(diff!(diverging_arm_in_value_match, 4).output::<i64>(), 8);
}

#[orchestrator(differential)]
async fn diverging_branches(ctx: OrchestrationContext, xs: Vec<i64>) -> Result<i64, OrchestrationError> {
    let mut total = 0;
    for x in xs {
        let v = if x % 2 == 0 {
            x
        } else {
            ctx.call_activity(double, x).await?;
            continue;
        };
        let w = if v > 100 {
            ctx.call_activity(double, v).await?;
            break;
        } else {
            v
        };
        total += w;
    }
    Ok(total)
}

#[test]
fn branches_that_await_then_continue_or_break() {
    let t = diff!(diverging_branches, vec![2, 3, 4, 200, 6]);
    assert_eq!(t.output::<i64>(), 6);
    assert_eq!(t.commands.len(), 2);
}

#[orchestrator(differential)]
async fn deferred_init(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let r;
    if n > 0 {
        r = ctx.call_activity(double, n).await?;
    } else {
        r = 0;
    }
    let mut acc = r;
    let s: i64;
    match n {
        1 => s = ctx.call_activity(add, (acc, 1)).await?,
        _ => s = -1,
    }
    acc = acc + s;
    Ok(acc)
}

#[test]
fn deferred_initialization_in_awaiting_branches() {
    assert_eq!(diff!(deferred_init, 0).output::<i64>(), -1);
    assert_eq!(diff!(deferred_init, 1).output::<i64>(), 5);
    assert_eq!(diff!(deferred_init, 5).output::<i64>(), 9);
}

#[orchestrator(differential)]
async fn format_captures_next_to_awaits(ctx: OrchestrationContext, n: i64) -> Result<Vec<String>, OrchestrationError> {
    let mut out = vec![format!("{}-{n}", ctx.call_activity(double, n).await.unwrap_or(0))];
    for i in 0..2 {
        out.push(format!("{i}:{}:{n:>3}", ctx.call_activity(add, (i, n)).await?));
    }
    Ok(out)
}

#[test]
fn inline_format_captures_beside_awaited_arguments() {
    let t = diff!(format_captures_next_to_awaits, 7);
    assert_eq!(t.output::<Vec<String>>(), ["14-7", "0:7:  7", "1:8:  7"]);
}

// ---------------------------------------------------------------- more shapes users write

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
struct Totals {
    sum: i64,
    count: usize,
    label: String,
}

#[orchestrator(differential)]
async fn expression_shapes(ctx: OrchestrationContext, xs: Vec<i64>) -> Result<Vec<String>, OrchestrationError> {
    let mut out = Vec::new();
    // Method chain on an awaited value, casts, negation, indexing by an awaited value.
    let g = ctx.call_activity(greet, "ada".to_string()).await?.to_uppercase();
    out.push(g);
    let n = ctx.call_activity(double, 2).await? as usize;
    out.push(format!("{}", xs[n % xs.len()]));
    out.push(format!("{}", -ctx.call_activity(double, 3).await?));
    let flag = !(ctx.call_activity(double, 0).await? == 0);
    out.push(flag.to_string());
    // A tuple of awaits, destructured.
    let (a, b) = (ctx.call_activity(double, 5).await?, ctx.call_activity(add, (1, 2)).await?);
    out.push(format!("{a}/{b}"));
    // Struct literal with update syntax and an awaited field.
    let base = Totals { label: "base".into(), ..Default::default() };
    let t = Totals { sum: ctx.call_activity(add, (a, b)).await?, ..base.clone() };
    out.push(format!("{}:{}:{}", t.label, t.sum, t.count));
    // Closures that capture ctx and locals, without awaits, next to awaits.
    let offset = 100;
    let tasks: Vec<_> = xs.iter().map(|x| ctx.call_activity(double, x + offset)).collect();
    let doubled = ctx.when_all(tasks).await?;
    out.push(format!("{doubled:?}"));
    // Typed locals with generics across awaits.
    let mut by_parity: std::collections::BTreeMap<bool, Vec<i64>> = std::collections::BTreeMap::new();
    for (k, v) in xs.iter().map(|x| (x % 2 == 0, *x)) {
        let d = ctx.call_activity(double, v).await?;
        by_parity.entry(k).or_default().push(d);
    }
    for (k, v) in by_parity {
        out.push(format!("{k}={v:?}"));
    }
    Ok(out)
}

#[test]
fn expressions_users_write() {
    let t = diff!(expression_shapes, vec![1, 2, 3]);
    assert_eq!(
        t.output::<Vec<String>>(),
        ["HELLO ADA!", "2", "-6", "false", "10/3", "base:13:0", "[202, 204, 206]", "false=[2, 6]", "true=[4]",]
    );
}

#[orchestrator(differential)]
async fn command_loop(ctx: OrchestrationContext, start: i64) -> Result<i64, OrchestrationError> {
    let mut value = start;
    let mut history: Vec<String> = Vec::new();
    loop {
        let cmd: String = ctx.wait_for_event("cmd").await?;
        match cmd.as_str() {
            "double" => value = ctx.call_activity(double, value).await?,
            "inc" => value += 1,
            "stop" => break,
            other => {
                if other.starts_with("fail") {
                    return Err(format!(
                        "bad command after {} steps: {}",
                        history.len(),
                        ctx.call_activity(greet, other.to_string()).await?
                    )
                    .into());
                }
                continue;
            }
        }
        history.push(cmd);
    }
    Ok(value * 1000 + history.len() as i64)
}

#[test]
fn an_event_driven_command_loop() {
    let script = || {
        mock()
            .event("cmd", "inc")
            .event("cmd", "double")
            .event("cmd", "noop")
            .event("cmd", "double")
            .event("cmd", "stop")
    };
    let sm = run_state_machine::<command_loop>(1, script());
    let direct = run_direct(command_loop::__durable_direct, 1, script());
    let t = same(sm, direct);
    assert_eq!(t.output::<i64>(), 8003);
    let failing = || mock().event("cmd", "inc").event("cmd", "fail-now");
    let t =
        same(run_state_machine::<command_loop>(1, failing()), run_direct(command_loop::__durable_direct, 1, failing()));
    assert_eq!(t.outcome, Err("bad command after 1 steps: Hello fail-now!".to_string()));
}

// ---------------------------------------------------------------- regressions from the adversarial run

#[orchestrator(differential)]
async fn named_and_width_format_args(ctx: OrchestrationContext, n: i64) -> Result<Vec<String>, OrchestrationError> {
    let w = 6;
    let p = 2;
    let f = 2.5_f64;
    let a = format!("{x}|{y}", x = 1, y = ctx.call_activity(double, n).await?);
    let b = format!("[{:>w$}]", ctx.call_activity(double, n).await?);
    let c = format!("[{f:.p$}] {}", ctx.call_activity(double, n).await?);
    Ok(vec![a, b, c])
}

#[test]
fn named_format_arguments_and_width_captures_beside_awaits() {
    let t = diff!(named_and_width_format_args, 3);
    assert_eq!(t.output::<Vec<String>>(), ["1|6", "[     6]", "[2.50] 6"]);
}

#[orchestrator(differential)]
async fn awaits_in_assigned_places(ctx: OrchestrationContext, n: i64) -> Result<(Vec<i64>, i64), OrchestrationError> {
    let mut v = vec![0, 0, 0];
    v[ctx.call_activity(double, 1).await? as usize] = 5;
    v[ctx.call_activity(double, 0).await? as usize] += n;
    let mut m = std::collections::BTreeMap::new();
    *m.entry(ctx.call_activity(greet, "k".to_string()).await?).or_insert(0) += 1;
    *m.entry(ctx.call_activity(greet, "k".to_string()).await?).or_insert(0) += 1;
    Ok((v, m["Hello k!"]))
}

#[test]
fn awaits_on_the_left_of_assignments() {
    let t = diff!(awaits_in_assigned_places, 7);
    assert_eq!(t.output::<(Vec<i64>, i64)>(), (vec![7, 0, 5], 2));
}

fn apply(f: impl Fn(i64) -> i64, x: i64) -> i64 {
    f(x)
}

#[orchestrator(differential)]
async fn closure_before_await(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    let k = 10;
    Ok(apply(|x| x + k, ctx.call_activity(double, n).await?))
}

#[test]
fn a_closure_argument_next_to_an_await() {
    assert_eq!(diff!(closure_before_await, 4).output::<i64>(), 18);
}

#[orchestrator(differential)]
async fn assert_condition_awaits(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
    assert!(ctx.call_activity(double, n).await? > 0, "positive: {n}");
    assert_eq!(ctx.call_activity(double, n).await?, n * 2, "doubled");
    Ok(n)
}

#[test]
fn awaits_in_assertion_conditions() {
    let t = diff!(assert_condition_awaits, 4);
    assert_eq!(t.output::<i64>(), 4);
    assert_eq!(t.commands.len(), 2);
}

#[orchestrator(differential)]
async fn let_chains_that_await(
    ctx: OrchestrationContext,
    xs: Vec<Option<i64>>,
) -> Result<Vec<String>, OrchestrationError> {
    let mut out = Vec::new();
    for x in xs {
        if let Some(v) = x
            && ctx.call_activity(double, v).await? > 4
            && let Ok(s) = ctx.call_activity(greet, v.to_string()).await
        {
            out.push(s);
        } else if let Some(v) = x {
            out.push(format!("small {v}"));
        } else {
            out.push("none".to_string());
        }
    }
    let label = if let Some(Some(first)) = out.get(2).map(|s| s.strip_prefix("Hello "))
        && ctx.call_activity(len, first.to_string()).await? > 1
    {
        "long"
    } else {
        "short"
    };
    out.push(label.to_string());
    Ok(out)
}

#[test]
fn if_let_chains_whose_conditions_await() {
    let t = diff!(let_chains_that_await, vec![Some(1), None, Some(7)]);
    assert_eq!(t.output::<Vec<String>>(), ["small 1", "none", "Hello 7!", "long"]);
    // `greet` runs only where the chain got that far.
    assert_eq!(calls(&t), ["double(1)", "double(7)", "greet(\"7\")", "len(\"7!\")"]);
}
