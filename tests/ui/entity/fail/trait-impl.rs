use durable::prelude::*;

#[derive(Default, Serialize, Deserialize)]
struct Counter {
    value: i64,
}

trait Reset {
    fn reset(&mut self);
}

#[entity]
impl Reset for Counter {
    fn reset(&mut self) {
        self.value = 0;
    }
}

fn main() {}
