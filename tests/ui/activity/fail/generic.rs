use durable::prelude::*;

#[activity]
async fn id<T: Serialize>(x: T) -> Result<T, ActivityError> {
    Ok(x)
}

fn main() {}
