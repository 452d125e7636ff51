use durable::prelude::*;

// Aliases declared in the body are seen through (those imported outside the function cannot
// be: the macro sees only the function).
#[orchestrator]
async fn o(_ctx: OrchestrationContext, _x: u32) -> Result<u64, OrchestrationError> {
    use std::thread::sleep as nap;
    use std::time::SystemTime as Clock;
    type Moment = std::time::Instant;
    nap(std::time::Duration::from_millis(1));
    let a = Clock::now();
    let b = Moment::now();
    Ok(a.elapsed().unwrap().as_secs() + b.elapsed().as_secs())
}

fn main() {}
