use durable::prelude::*;

#[derive(Default, Serialize, Deserialize)]
struct Counter {
    value: i64,
}

#[entity]
impl Counter {
    fn add(&mut self, amount: i64, ctx: &mut EntityContext) {
        let _ = ctx;
        self.value += amount;
    }
}

fn main() {}
