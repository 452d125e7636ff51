use durable::prelude::*;

#[activity(version = 2)]
async fn step(n: u32) -> Result<u32, ActivityError> {
    Ok(n + 1)
}

fn main() {}
