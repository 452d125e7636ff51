use durable::prelude::*;

#[derive(Default, Serialize, Deserialize)]
struct Counter {
    value: i64,
}

#[entity]
impl Counter {
    async fn add(&mut self, amount: i64) {
        self.value += amount;
    }
}

fn main() {}
