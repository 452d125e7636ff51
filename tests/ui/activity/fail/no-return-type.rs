use durable::prelude::*;

#[activity]
async fn log(line: String) {
    println!("{line}");
}

fn main() {}
