// With `crate = "…"`, generated code names the runtime only through that path: a path that
// does not resolve is reported (at the attribute), and `::durable` is not used instead.

use durable::prelude::*;

#[activity(crate = "no_such_runtime")]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

fn main() {}
