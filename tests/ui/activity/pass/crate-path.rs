// `#[activity(crate = "…")]`: generated code names the runtime through the given path.

extern crate durable as renamed;

use renamed::prelude::*;

#[activity(crate = "renamed")]
async fn with_context(ctx: ActivityContext, a: u32, b: String) -> Result<String, ActivityError> {
    let _ = ctx;
    Ok(format!("{a}{b}"))
}

#[activity(crate = "::durable_runtime", name = "plain")]
async fn via_runtime(n: u32) -> Result<u32, durable_runtime::ActivityError> {
    Ok(n)
}

fn main() {
    use renamed::Activity;
    assert_eq!(<with_context as Activity>::NAME, "with_context");
    assert_eq!(<via_runtime as Activity>::NAME, "plain");
}
