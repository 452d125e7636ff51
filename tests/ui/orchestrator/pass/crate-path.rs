// `crate = "…"` names the runtime crate in generated code: here the facade under another name,
// and the runtime crate itself. Every construct whose lowering calls the runtime is used
// (`.await`, `?`, `return`, `for`, the context binding, `differential`), and the state machine
// runs against a mock.

extern crate durable as renamed;

use renamed::prelude::*;
use renamed::testing::{Mock, Reply, run_direct, run_state_machine};

#[activity(crate = "renamed")]
async fn double(n: u32) -> Result<u32, ActivityError> {
    Ok(n * 2)
}

#[orchestrator(crate = "renamed", differential, name = "sum-of-doubles")]
async fn sum_of_doubles(ctx: OrchestrationContext, n: u32) -> Result<u32, OrchestrationError> {
    if n > 100 {
        return Ok(0);
    }
    let mut total = 0;
    for i in 0..n {
        total += ctx.call_activity(double, i).await?;
    }
    Ok(total)
}

#[orchestrator(crate = "durable_runtime")]
async fn via_runtime(ctx: OrchestrationContext, n: u32) -> Result<u32, durable_runtime::OrchestrationError> {
    let v = ctx.call_activity(double, n).await?;
    Ok(v + 1)
}

fn main() {
    let mock = || Mock::new(|_, input| Reply::ok(input.parse::<u32>().unwrap() * 2));
    let sm = run_state_machine::<sum_of_doubles>(4, mock());
    assert_eq!(sm.output::<u32>(), 12);
    let direct = run_direct(sum_of_doubles::__durable_direct, 4, mock());
    assert_eq!((&sm.commands, &sm.outcome), (&direct.commands, &direct.outcome));
    assert_eq!(run_state_machine::<via_runtime>(5, mock()).output::<u32>(), 11);
    assert_eq!(<sum_of_doubles as durable_runtime::Orchestrator>::NAME, "sum-of-doubles");
}
