use durable::prelude::*;

#[activity]
async fn greet(name: String) -> Result<String, ActivityError> {
    Ok(format!("Hello {name}!"))
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, name: String) -> Result<Vec<String>, OrchestrationError> {
    let mut names = vec![String::from("a")];
    // `String += &String`: Rust evaluates the place, so `last_mut`, before the value, and the
    // `&mut String` it returns cannot be kept across the `.await`.
    *names.last_mut().unwrap() += &ctx.call_activity(greet, name).await?;
    Ok(names)
}

fn main() {}
