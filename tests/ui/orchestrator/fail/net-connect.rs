use durable::prelude::*;

#[activity]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

use std::net::TcpStream;

#[orchestrator]
async fn o(ctx: OrchestrationContext, x: u32) -> Result<u32, OrchestrationError> {
    let _conn = TcpStream::connect("127.0.0.1:80");
    Ok(ctx.call_activity(step, x).await?)
}

fn main() {}
