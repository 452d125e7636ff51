use durable::prelude::*;

#[activity]
async fn shout(text: &str) -> Result<String, ActivityError> {
    Ok(text.to_uppercase())
}

fn main() {}
