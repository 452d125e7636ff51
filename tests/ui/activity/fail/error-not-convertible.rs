use durable::prelude::*;

#[derive(Debug)]
struct MyError;

#[activity]
async fn charge(amount: u64) -> Result<u64, MyError> {
    if amount == 0 { Err(MyError) } else { Ok(amount) }
}

fn main() {}
