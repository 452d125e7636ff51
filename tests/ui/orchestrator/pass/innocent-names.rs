//! Locals and fields whose names look like forbidden APIs are not flagged.
use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

#[derive(Serialize, Deserialize, Clone)]
struct Settings {
    env: String,
    interval: u32,
    timeout: u32,
}

#[orchestrator]
async fn o(ctx: OrchestrationContext, settings: Settings) -> Result<u32, OrchestrationError> {
    let env = settings.env.clone();
    let process = env.len() as u32;
    let fs = process + 1;
    let net = fs * 2;
    let rng = net + settings.interval;
    let rand = rng + settings.timeout;
    let sleep = ctx.call_activity(step, rand).await?;
    let spawn = sleep + 1;
    let random = spawn + env.len() as u32;
    Ok(random)
}

fn main() {
    let _ = o;
}
