use durable::prelude::*;

struct Handle(u32);

#[activity]
async fn open(n: u32) -> Result<Handle, ActivityError> {
    Ok(Handle(n))
}

fn main() {}
