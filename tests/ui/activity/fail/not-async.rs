use durable::prelude::*;

#[activity]
fn charge(amount: u64) -> Result<u64, ActivityError> {
    Ok(amount)
}

fn main() {}
