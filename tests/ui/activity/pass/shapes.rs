use durable::prelude::*;

#[activity]
async fn no_input() -> Result<u32, ActivityError> {
    Ok(1)
}

#[activity]
async fn with_context(ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
    Ok(format!("{name} attempt {} of {}", ctx.attempt(), ctx.instance_id()))
}

#[activity]
async fn two_inputs(a: i64, b: i64) -> Result<i64, ActivityError> {
    Ok(a + b)
}

#[derive(Debug)]
struct Custom;
impl std::fmt::Display for Custom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("custom")
    }
}
impl std::error::Error for Custom {}

#[activity]
async fn std_error(path: String) -> Result<usize, Custom> {
    if path.is_empty() { Err(Custom) } else { Ok(path.len()) }
}

#[activity]
async fn question_mark(s: String) -> Result<u32, ActivityError> {
    if s.is_empty() {
        return Err("empty".into());
    }
    Ok(s.parse::<u32>()?)
}

#[orchestrator]
async fn uses_all(ctx: OrchestrationContext, _x: ()) -> Result<String, OrchestrationError> {
    let a = ctx.call_activity(no_input, ()).await?;
    let b = ctx.call_activity(two_inputs, (1, 2)).await?;
    let c = ctx.call_activity(with_context, format!("{a}{b}")).await?;
    let d = ctx.call_activity(std_error, c.clone()).await?;
    let e = ctx.call_activity(question_mark, "7".to_string()).await?;
    Ok(format!("{c} {d} {e}"))
}

fn main() {
    let _ = uses_all;
}
