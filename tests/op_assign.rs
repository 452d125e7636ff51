//! `place op= value` with `.await`s in it keeps Rust's evaluation order, which depends on the
//! operand types: when both are primitive (integers, floats, `bool`, `char`) the value is
//! evaluated first, then the place; otherwise the place (its index operands), then the value.
//!
//! Each body logs its side effects in order (the index functions and the value blocks push to
//! `log`, and activities get the log so far as input, so the scheduled commands show what ran
//! before each `.await`), and runs (1) as the state machine, its state serialized at every
//! suspension, and (2) as plain async Rust; both must agree (`diff!`). The last test runs the
//! same bodies on the Memory backend and compares their outputs with the plain async runs.

use durable::backend::Memory;
use durable::prelude::*;
use durable_test_support::diff;
use durable_test_support::differential::*;
use durable_test_support::wait::PATIENCE;
use std::collections::BTreeMap;
use std::ops::{AddAssign, SubAssign};

/// Log `what` and return `i`: an index operand with a side effect.
fn at(log: &mut Vec<String>, what: &str, i: usize) -> usize {
    log.push(what.to_string());
    i
}

/// Not primitive: `+=` with another `Money` (by value, not a reference), `-=` with an `i64`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
struct Money {
    cents: i64,
}

impl AddAssign for Money {
    fn add_assign(&mut self, other: Money) {
        self.cents += other.cents;
    }
}

impl SubAssign<i64> for Money {
    fn sub_assign(&mut self, cents: i64) {
        self.cents -= cents;
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Member {
    score: i64,
    name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Team {
    members: Vec<Member>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------- both operands primitive

#[orchestrator(differential)]
async fn primitive_value_first(
    ctx: OrchestrationContext,
    n: i64,
) -> Result<(Vec<i64>, Vec<String>), OrchestrationError> {
    let mut v = vec![1, 2, 3];
    let mut log = Vec::new();
    v[at(&mut log, "index 1", 1)] += {
        log.push("value 1".to_string());
        ctx.call_activity(double, n).await?
    };
    v[at(&mut log, "index 2", 2)] -= ctx.call_activity(len, log.join(",")).await? as i64;
    Ok((v, log))
}

#[test]
fn primitive_operands_evaluate_the_value_first() {
    let t = diff!(primitive_value_first, 5);
    let (v, log) = t.output::<(Vec<i64>, Vec<String>)>();
    assert_eq!(v, [1, 12, 3 - "value 1,index 1".len() as i64]);
    assert_eq!(log, strings(&["value 1", "index 1", "index 2"]));
    assert_eq!(calls(&t), ["double(5)", r#"len("value 1,index 1")"#]);
}

#[orchestrator(differential)]
async fn primitive_shift_and_reference(
    ctx: OrchestrationContext,
    n: i64,
) -> Result<(Vec<u32>, Vec<i64>, Vec<String>), OrchestrationError> {
    let mut bits = vec![1u32, 1];
    let mut v = vec![10i64];
    let mut log = Vec::new();
    // `u32 <<= u8`: both primitive (of different types), the value first.
    bits[at(&mut log, "shift index", 1)] <<= ctx.call_activity(len, format!("ab{}", log.join(","))).await? as u8;
    // `i64 += &i64` is `AddAssign<&i64>`, not primitive: the place first.
    v[at(&mut log, "ref index", 0)] += &ctx.call_activity(add, (n, log.len() as i64)).await?;
    Ok((bits, v, log))
}

#[test]
fn a_shift_by_another_integer_type_is_primitive_and_a_reference_value_is_not() {
    let t = diff!(primitive_shift_and_reference, 1);
    assert_eq!(
        t.output::<(Vec<u32>, Vec<i64>, Vec<String>)>(),
        (vec![1, 4], vec![13], strings(&["shift index", "ref index"]))
    );
    assert_eq!(calls(&t), [r#"len("ab")"#, "add([1,2])"]);
}

// ---------------------------------------------------------------- not primitive: place first

#[orchestrator(differential)]
async fn string_place_first(
    ctx: OrchestrationContext,
    n: i64,
) -> Result<(Vec<String>, Vec<String>), OrchestrationError> {
    let mut names = vec!["a".to_string(), "b".to_string()];
    let mut log = Vec::new();
    names[at(&mut log, "index", 1)] += &{
        log.push("value".to_string());
        ctx.call_activity(greet, format!("{n}:{}", log.join(","))).await?
    };
    Ok((names, log))
}

#[test]
fn a_string_place_is_evaluated_before_the_value() {
    let t = diff!(string_place_first, 3);
    assert_eq!(
        t.output::<(Vec<String>, Vec<String>)>(),
        (strings(&["a", "bHello 3:index,value!"]), strings(&["index", "value"]))
    );
    assert_eq!(calls(&t), [r#"greet("3:index,value")"#]);
}

#[orchestrator(differential)]
async fn custom_add_assign_place_first(
    ctx: OrchestrationContext,
    n: i64,
) -> Result<(Vec<Money>, Vec<String>), OrchestrationError> {
    let mut wallets = vec![Money::default(), Money { cents: 100 }];
    let mut log = Vec::new();
    // `Money += Money`: the value is not a reference, so the order is chosen from the types.
    wallets[at(&mut log, "index 0", 0)] += Money {
        cents: {
            log.push("value 0".to_string());
            ctx.call_activity(double, n).await?
        },
    };
    // `Money -= i64`: one operand primitive is not enough.
    wallets[at(&mut log, "index 1", 1)] -= ctx.call_activity(len, log.join(",")).await? as i64;
    Ok((wallets, log))
}

#[test]
fn a_custom_add_assign_place_is_evaluated_before_the_value() {
    let t = diff!(custom_add_assign_place_first, 4);
    let (wallets, log) = t.output::<(Vec<Money>, Vec<String>)>();
    assert_eq!(log, strings(&["index 0", "value 0", "index 1"]));
    let logged = "index 0,value 0,index 1";
    assert_eq!(wallets, [Money { cents: 8 }, Money { cents: 100 - logged.len() as i64 }]);
    assert_eq!(calls(&t), ["double(4)".to_string(), format!("len({logged:?})")]);
}

// ---------------------------------------------------------------- nested places

#[orchestrator(differential)]
async fn nested_places(
    ctx: OrchestrationContext,
    n: i64,
) -> Result<(Team, Vec<Vec<i64>>, Vec<Vec<String>>, Vec<String>), OrchestrationError> {
    let mut team =
        Team { members: vec![Member { score: 100, name: "ann".into() }, Member { score: 50, name: "bob".into() }] };
    let mut grid = vec![vec![0i64; 2]; 2];
    let mut texts = vec![vec![String::new(); 2]; 2];
    let mut log = Vec::new();
    team.members[at(&mut log, "member 0", 0)].score -= ctx.call_activity(add, (n, log.len() as i64)).await?;
    team.members[at(&mut log, "member 1", 1)].name += &ctx.call_activity(greet, log.join(",")).await?;
    grid[at(&mut log, "row", 1)][at(&mut log, "col", 0)] += ctx.call_activity(len, log.join(",")).await? as i64;
    texts[at(&mut log, "text row", 0)][at(&mut log, "text col", 1)] +=
        &ctx.call_activity(upper, log.last().cloned().unwrap_or_default()).await?;
    Ok((team, grid, texts, log))
}

#[test]
fn nested_places_evaluate_their_index_operands_in_order() {
    let t = diff!(nested_places, 7);
    let (team, grid, texts, log) = t.output::<(Team, Vec<Vec<i64>>, Vec<Vec<String>>, Vec<String>)>();
    assert_eq!(log, strings(&["member 0", "member 1", "row", "col", "text row", "text col"]));
    // `score -= i64`: the value first (the log is empty when `add` is scheduled).
    assert_eq!(team.members[0].score, 100 - 7);
    // `name += &String`: the place first.
    assert_eq!(team.members[1].name, "bobHello member 0,member 1!");
    // `i64 += i64`: the value first, then the row, then the column.
    assert_eq!(grid, [vec![0, 0], vec!["member 0,member 1".len() as i64, 0]]);
    // `String += &String`: the row, the column, then the value.
    assert_eq!(texts, [vec![String::new(), "TEXT COL".into()], vec![String::new(), String::new()]]);
    assert_eq!(
        calls(&t),
        ["add([7,0])", r#"greet("member 0,member 1")"#, r#"len("member 0,member 1")"#, r#"upper("text col")"#]
    );
}

// ---------------------------------------------------------------- places that await

#[orchestrator(differential)]
async fn awaiting_places(
    ctx: OrchestrationContext,
    n: i64,
) -> Result<(Vec<i64>, Vec<Money>, Vec<String>), OrchestrationError> {
    let mut v = vec![0i64; 4];
    let mut wallets = vec![Money::default(); 4];
    let mut log = Vec::new();
    // Both primitive: the value's activity is scheduled before the place's.
    v[ctx.call_activity(double, 1).await? as usize] += ctx.call_activity(add, (n, 1)).await?;
    // Not primitive: the place's first.
    wallets[ctx.call_activity(double, 1).await? as usize] += Money { cents: ctx.call_activity(add, (n, 2)).await? };
    // A value without `.await` but with a side effect, around the place's `.await`.
    v[ctx.call_activity(len, log.join(",")).await? % 4] += {
        log.push("primitive value".to_string());
        n
    };
    wallets[ctx.call_activity(len, log.join(",")).await? / 5] += {
        log.push("money value".to_string());
        Money { cents: n }
    };
    Ok((v, wallets, log))
}

#[test]
fn places_that_await_are_ordered_against_the_value_by_type() {
    let t = diff!(awaiting_places, 10);
    let (v, wallets, log) = t.output::<(Vec<i64>, Vec<Money>, Vec<String>)>();
    assert_eq!(log, strings(&["primitive value", "money value"]));
    assert_eq!(v, [0, 0, 11, 10]);
    assert_eq!(wallets, [Money::default(), Money::default(), Money { cents: 12 }, Money { cents: 10 }]);
    assert_eq!(
        calls(&t),
        [
            "add([10,1])",
            "double(1)",
            "double(1)",
            "add([10,2])",
            r#"len("primitive value")"#,
            r#"len("primitive value")"#,
        ]
    );
}

// ---------------------------------------------------------------- places that call something

fn key(log: &mut Vec<String>, k: &str) -> String {
    log.push(format!("key {k}"));
    k.to_string()
}

#[orchestrator(differential)]
async fn calls_in_primitive_places(
    ctx: OrchestrationContext,
    n: i64,
) -> Result<(BTreeMap<String, i64>, Vec<String>), OrchestrationError> {
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    let mut log = Vec::new();
    // The `&mut` the place returns cannot be kept across an `.await`; for primitive operands
    // Rust evaluates the value first anyway.
    *counts.entry(key(&mut log, "a")).or_insert(0) += {
        log.push("value".to_string());
        ctx.call_activity(double, n).await?
    };
    *counts.entry(ctx.call_activity(greet, log.join(",")).await?).or_insert(0) += {
        log.push("value 2".to_string());
        n
    };
    Ok((counts, log))
}

#[test]
fn places_that_call_something_take_the_value_first_for_primitive_operands() {
    let t = diff!(calls_in_primitive_places, 2);
    assert_eq!(
        t.output::<(BTreeMap<String, i64>, Vec<String>)>(),
        (
            BTreeMap::from([("a".to_string(), 4), ("Hello value,key a,value 2!".to_string(), 2)]),
            strings(&["value", "key a", "value 2"])
        )
    );
    assert_eq!(calls(&t), ["double(2)", r#"greet("value,key a,value 2")"#]);
}

// ---------------------------------------------------------------- loops, failures

#[orchestrator(differential)]
async fn in_a_loop(
    ctx: OrchestrationContext,
    n: i64,
) -> Result<(Vec<i64>, Vec<String>, Vec<Money>, Vec<String>), OrchestrationError> {
    let mut totals = vec![0i64; 2];
    let mut names = vec![String::new(); 2];
    let mut wallets = vec![Money::default(); 2];
    let mut log = Vec::new();
    for k in 0..n as usize {
        totals[at(&mut log, "t", k % 2)] += ctx.call_activity(double, k as i64).await?;
        names[at(&mut log, "n", k % 2)] += &ctx.call_activity(greet, log.len().to_string()).await?;
        wallets[at(&mut log, "w", k % 2)] +=
            Money { cents: ctx.call_activity(add, (k as i64, log.len() as i64)).await? };
    }
    Ok((totals, names, wallets, log))
}

#[test]
fn in_a_loop_the_index_temporaries_are_saved_across_each_await() {
    let t = diff!(in_a_loop, 3);
    let (totals, names, wallets, log) = t.output::<(Vec<i64>, Vec<String>, Vec<Money>, Vec<String>)>();
    assert_eq!(log, strings(&["t", "n", "w", "t", "n", "w", "t", "n", "w"]));
    assert_eq!(totals, [4, 2]);
    assert_eq!(names, ["Hello 2!Hello 8!", "Hello 5!"]);
    assert_eq!(wallets, [Money { cents: 3 + 11 }, Money { cents: 7 }]);
    assert_eq!(
        calls(&t),
        [
            "double(0)",
            r#"greet("2")"#,
            "add([0,3])",
            "double(1)",
            r#"greet("5")"#,
            "add([1,6])",
            "double(2)",
            r#"greet("8")"#,
            "add([2,9])"
        ]
    );
}

#[orchestrator(differential)]
async fn failing_values(ctx: OrchestrationContext, _n: i64) -> Result<Vec<String>, OrchestrationError> {
    let mut names = vec![String::new()];
    let mut wallets = vec![Money::default()];
    let mut log = Vec::new();
    names[at(&mut log, "name", 0)] += &ctx.call_activity(greet, "x".to_string()).await?;
    wallets[at(&mut log, "wallet", 0)] += Money { cents: ctx.call_activity(fail, log.join(",")).await? };
    log.push("unreachable".to_string());
    Ok(log)
}

#[test]
fn a_value_that_fails_returns_after_the_place_was_evaluated() {
    let t = diff!(failing_values, 0);
    assert_eq!(calls(&t), [r#"greet("x")"#, r#"fail("name,wallet")"#]);
    assert!(t.outcome.is_err());
}

// ---------------------------------------------------------------- on the Memory backend

#[tokio::test]
async fn on_the_memory_backend_the_orchestrators_agree_with_plain_async_rust() {
    let backend = Memory::new();
    let worker = Worker::builder(backend.clone())
        .orchestrator(primitive_value_first)
        .orchestrator(string_place_first)
        .orchestrator(custom_add_assign_place_first)
        .orchestrator(nested_places)
        .orchestrator(awaiting_places)
        .orchestrator(in_a_loop)
        .activity(double)
        .activity(add)
        .activity(len)
        .activity(greet)
        .activity(upper)
        .start()
        .await
        .expect("worker starts");
    let client = Client::new(backend.clone());
    let ids = [
        (
            client.start(primitive_value_first, 5).await.unwrap(),
            run_direct(primitive_value_first::__durable_direct, 5, mock()),
        ),
        (
            client.start(string_place_first, 3).await.unwrap(),
            run_direct(string_place_first::__durable_direct, 3, mock()),
        ),
        (
            client.start(custom_add_assign_place_first, 4).await.unwrap(),
            run_direct(custom_add_assign_place_first::__durable_direct, 4, mock()),
        ),
        (client.start(nested_places, 7).await.unwrap(), run_direct(nested_places::__durable_direct, 7, mock())),
        (client.start(awaiting_places, 10).await.unwrap(), run_direct(awaiting_places::__durable_direct, 10, mock())),
        (client.start(in_a_loop, 3).await.unwrap(), run_direct(in_a_loop::__durable_direct, 3, mock())),
    ];
    for (id, direct) in ids {
        let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
        let direct: serde_json::Value = serde_json::from_str(&direct.outcome.expect("the plain run succeeds")).unwrap();
        assert_eq!(done.output::<serde_json::Value>().unwrap(), direct, "instance {id}");
    }
    worker.shutdown().await.unwrap();
}

// ---------------------------------------------------------------- other shapes

/// A table indexed by name: `IndexMut<String>`, so the index temporary is a `String`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
struct Table(BTreeMap<String, i64>);

impl std::ops::Index<String> for Table {
    type Output = i64;
    fn index(&self, k: String) -> &i64 {
        &self.0[&k]
    }
}

impl std::ops::IndexMut<String> for Table {
    fn index_mut(&mut self, k: String) -> &mut i64 {
        self.0.entry(k).or_insert(0)
    }
}

fn pick(labels: &[String], i: i64) -> &str {
    &labels[i as usize % labels.len()]
}

#[orchestrator(differential)]
async fn other_shapes(
    ctx: OrchestrationContext,
    items: Vec<Option<i64>>,
) -> Result<(Vec<f64>, Table, Vec<String>, Vec<Box<String>>, Vec<i64>, Vec<String>), OrchestrationError> {
    let mut halves = vec![1.0f64; 2];
    let mut table = Table::default();
    let labels = vec!["zero".to_string(), "one".to_string()];
    let mut names = vec![String::new(); 2];
    let mut boxes = vec![Box::new(String::new())];
    let mut seen = vec![0i64; 3];
    let mut log = Vec::new();
    for item in items {
        // `continue` and `?` in the index operand, evaluated before the value for `String`.
        names[match item {
            Some(i) => at(&mut log, "name", i as usize % 2),
            None => continue,
        }] += pick(&labels, ctx.call_activity(double, item.ok_or("none")?).await?);
        // A string key kept across the `.await` (`i64` operands: the value first).
        table[key(&mut log, &format!("k{}", item.unwrap_or(0) % 2))] +=
            ctx.call_activity(add, (log.len() as i64, 0)).await?;
        halves[at(&mut log, "half", 1)] *= ctx.call_activity(half, item.unwrap_or(0) as f64).await?;
        *boxes[at(&mut log, "box", 0)] += &ctx.call_activity(greet, log.len().to_string()).await?;
        // As the value of a block.
        let done = {
            seen[at(&mut log, "seen", item.unwrap_or(0) as usize % 3)] -=
                ctx.call_activity(len, log.join("")).await? as i64;
        };
        let () = done;
    }
    Ok((halves, table, names, boxes, seen, log))
}

#[test]
fn index_operands_with_jumps_string_keys_floats_boxes_and_blocks() {
    let t = diff!(other_shapes, vec![Some(1), None, Some(2)]);
    let (halves, table, names, boxes, seen, log) =
        t.output::<(Vec<f64>, Table, Vec<String>, Vec<Box<String>>, Vec<i64>, Vec<String>)>();
    assert_eq!(halves, [1.0, 0.5]);
    assert_eq!(table.0, BTreeMap::from([("k0".to_string(), 6), ("k1".to_string(), 1)]));
    assert_eq!(names, ["zero", "zero"]);
    assert_eq!(boxes, [Box::new("Hello 4!Hello 9!".to_string())]);
    assert_eq!(log, strings(&["name", "key k1", "half", "box", "seen", "name", "key k0", "half", "box", "seen"]));
    // `len` of the log so far, before `seen` is logged: the value first.
    assert_eq!(
        seen,
        [0, -("namekey k1halfbox".len() as i64), -("namekey k1halfboxseennamekey k0halfbox".len() as i64)]
    );
    assert_eq!(
        calls(&t),
        [
            "double(1)",
            "add([1,0])",
            "half(1.0)",
            r#"greet("4")"#,
            r#"len("namekey k1halfbox")"#,
            "double(2)",
            "add([6,0])",
            "half(2.0)",
            r#"greet("9")"#,
            r#"len("namekey k1halfboxseennamekey k0halfbox")"#,
        ]
    );
}
