//! The differential harness of the orchestrator compiler: run an orchestrator (1) as the
//! generated state machine, its state serialized at every suspension, and (2) as plain async
//! Rust; both must schedule the same tasks in the same order and give the same outcome.
//!
//! The bodies under test call the activities below (their real code is never run: the
//! [`mock`] answers for them) and are declared `#[orchestrator(differential)]`:
//!
//! ```no_run
//! use durable::prelude::*;
//! use durable_test_support::diff;
//! use durable_test_support::differential::*;
//!
//! #[orchestrator(differential)]
//! async fn twice(ctx: OrchestrationContext, n: i64) -> Result<i64, OrchestrationError> {
//!     let a = ctx.call_activity(double, n).await?;
//!     Ok(ctx.call_activity(double, a).await?)
//! }
//!
//! #[test]
//! fn doubles_twice() {
//!     let t = diff!(twice, 5);
//!     assert_eq!(t.output::<i64>(), 20);
//!     assert_eq!(calls(&t), ["double(5)", "double(10)"]);
//! }
//! # fn main() {}
//! ```

use durable::messages::Command;
use durable::prelude::*;

pub use activities::*;
pub use durable::testing::{Mock, Reply, Trace, run_direct, run_state_machine};

/// Run `$orch` both ways on `$input` (evaluated twice) against `$mock` (default:
/// [`mock()`](crate::differential::mock)), assert both runs agree
/// ([`same`](crate::differential::same)), and return the state machine's [`Trace`].
#[macro_export]
macro_rules! diff {
    ($orch:ident, $input:expr) => {
        $crate::diff!($orch, $input, $crate::differential::mock())
    };
    ($orch:ident, $input:expr, $mock:expr) => {{
        let sm = $crate::differential::run_state_machine::<$orch>($input, $mock);
        let direct = $crate::differential::run_direct($orch::__durable_direct, $input, $mock);
        $crate::differential::same(sm, direct)
    }};
}

/// Assert that the state machine's run and the direct run agree (commands, outcome,
/// `continue_as_new`, step count); the state machine's trace.
#[track_caller]
pub fn same(sm: Trace, direct: Trace) -> Trace {
    assert_eq!(sm.commands, direct.commands, "scheduled tasks differ");
    assert_eq!(sm.outcome, direct.outcome, "outcomes differ");
    assert_eq!(sm.continued_as_new, direct.continued_as_new, "continue_as_new differs");
    assert_eq!(sm.steps, direct.steps, "step counts differ");
    sm
}

/// The scheduled commands, compactly: `name(json input)`, `timer`, `cancel`,
/// `sub name(json)`, `send name`, `call entity.op(json)`, `signal entity.op(json)`,
/// `lock N`, `unlock`.
pub fn calls(t: &Trace) -> Vec<String> {
    t.commands
        .iter()
        .map(|c| match c {
            Command::ScheduleActivity { name, input, .. } => format!("{name}({input})"),
            Command::CreateTimer { .. } => "timer".to_string(),
            Command::CancelTimer { .. } => "cancel".to_string(),
            Command::StartSubOrchestration { name, input, .. } => format!("sub {name}({input})"),
            Command::SendEvent { name, .. } => format!("send {name}"),
            Command::CallEntity { entity, op, input, .. } => format!("call {entity}.{op}({input})"),
            Command::SignalEntity { entity, op, input } => format!("signal {entity}.{op}({input})"),
            Command::LockEntities { entities, .. } => format!("lock {}", entities.len()),
            Command::UnlockEntities { .. } => "unlock".to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

/// The mock every body runs against: it answers for the activities below (and the
/// sub-orchestrations [`child`] and [`grumpy_child`]) what their code would return, and fails
/// any other name with `unknown activity NAME`.
pub fn mock<'a>() -> Mock<'a> {
    Mock::new(|name, input| {
        let v: serde_json::Value = serde_json::from_str(input).unwrap();
        match name {
            "double" => Reply::ok(v.as_i64().unwrap() * 2),
            "add" => Reply::ok(v[0].as_i64().unwrap() + v[1].as_i64().unwrap()),
            "mul3" => Reply::ok(v[0].as_i64().unwrap() * v[1].as_i64().unwrap() * v[2].as_i64().unwrap()),
            "greet" => Reply::ok(format!("Hello {}!", v.as_str().unwrap())),
            "fail" => Reply::err(format!("failed on {v}")),
            "len" => Reply::ok(v.as_str().unwrap().len()),
            "echo" => Reply::Ok(input.to_string()),
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
            "reserve" => {
                let s = v.as_str().unwrap();
                if s.starts_with("bad") {
                    Reply::err(format!("cannot reserve {s}"))
                } else {
                    Reply::ok(format!("reserved {s}"))
                }
            }
            "undo" => Reply::ok(format!("undone {}", v.as_str().unwrap())),
            "concat" => Reply::ok(format!("{}{}", v[0].as_str().unwrap(), v[1].as_str().unwrap())),
            "sum" => Reply::ok(v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).sum::<i64>()),
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

/// The activities the bodies call; [`mock`] answers for each what its code returns.
/// `#[activity]` puts an activity's doc comment on its generated `run` method, not on the
/// type it declares, hence the `allow`.
#[allow(missing_docs)]
mod activities {
    use super::*;

    /// `n * 2`
    #[activity]
    pub async fn double(n: i64) -> Result<i64, ActivityError> {
        Ok(n * 2)
    }

    /// `a + b`
    #[activity]
    pub async fn add(a: i64, b: i64) -> Result<i64, ActivityError> {
        Ok(a + b)
    }

    /// `a * b * c`
    #[activity]
    pub async fn mul3(a: i64, b: i64, c: i64) -> Result<i64, ActivityError> {
        Ok(a * b * c)
    }

    /// `Hello {name}!`
    #[activity]
    pub async fn greet(name: String) -> Result<String, ActivityError> {
        Ok(format!("Hello {name}!"))
    }

    /// Always fails: `failed on {what}`.
    #[activity]
    pub async fn fail(what: String) -> Result<i64, ActivityError> {
        Err(format!("failed on {what}").into())
    }

    /// The length in bytes.
    #[activity]
    pub async fn len(s: String) -> Result<usize, ActivityError> {
        Ok(s.len())
    }

    /// Whether `n` is even.
    #[activity]
    pub async fn is_even(n: i64) -> Result<bool, ActivityError> {
        Ok(n % 2 == 0)
    }

    /// `a` → `alpha`, `b` → `beta`, else nothing.
    #[activity]
    pub async fn lookup(key: String) -> Result<Option<String>, ActivityError> {
        Ok(match key.as_str() {
            "a" => Some("alpha".to_string()),
            "b" => Some("beta".to_string()),
            _ => None,
        })
    }

    /// `n * 10` below 3, else nothing.
    #[activity]
    pub async fn maybe(n: i64) -> Result<Option<i64>, ActivityError> {
        Ok(if n < 3 { Some(n * 10) } else { None })
    }

    /// `reserved {item}`; fails for items starting with `bad`.
    #[activity]
    pub async fn reserve(item: String) -> Result<String, ActivityError> {
        if item.starts_with("bad") {
            Err(format!("cannot reserve {item}").into())
        } else {
            Ok(format!("reserved {item}"))
        }
    }

    /// `undone {item}`
    #[activity]
    pub async fn undo(item: String) -> Result<String, ActivityError> {
        Ok(format!("undone {item}"))
    }

    /// `a` then `b`.
    #[activity]
    pub async fn concat(a: String, b: String) -> Result<String, ActivityError> {
        Ok(format!("{a}{b}"))
    }

    /// The sum.
    #[activity]
    pub async fn sum(v: Vec<i64>) -> Result<i64, ActivityError> {
        Ok(v.iter().sum())
    }

    /// `x / 2`
    #[activity]
    pub async fn half(x: f64) -> Result<f64, ActivityError> {
        Ok(x / 2.0)
    }

    /// Always 7.
    #[activity]
    pub async fn tick() -> Result<i64, ActivityError> {
        Ok(7)
    }

    /// `n + 1`, wrapping.
    #[activity]
    pub async fn wide(n: u64) -> Result<u64, ActivityError> {
        Ok(n.wrapping_add(1))
    }

    /// In upper case.
    #[activity]
    pub async fn upper(s: String) -> Result<String, ActivityError> {
        Ok(s.to_uppercase())
    }

    /// Split on whitespace.
    #[activity]
    pub async fn words(s: String) -> Result<Vec<String>, ActivityError> {
        Ok(s.split_whitespace().map(String::from).collect())
    }

    /// Fails until its input (the caller's attempt number) reaches 3, then `attempt * 100`.
    #[activity]
    pub async fn flaky(attempt: i64) -> Result<i64, ActivityError> {
        if attempt < 3 { Err(format!("flaky {attempt}").into()) } else { Ok(attempt * 100) }
    }

    /// Cursor-based pagination: pages of two items, four pages in all.
    #[activity]
    pub async fn page(cursor: i64) -> Result<(Vec<i64>, Option<i64>), ActivityError> {
        Ok((vec![cursor * 10, cursor * 10 + 1], if cursor < 3 { Some(cursor + 1) } else { None }))
    }
}

/// A sub-orchestration: `child({double(n)})`.
#[orchestrator]
pub async fn child(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
    let d = ctx.call_activity(double, n).await?;
    Ok(format!("child({d})"))
}

/// A sub-orchestration that always fails: `child refused {n}`.
#[orchestrator]
pub async fn grumpy_child(_ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
    Err(OrchestrationError::new(format!("child refused {n}")))
}
