use durable::prelude::*;

#[derive(Default, Serialize, Deserialize)]
struct Counter {
    value: i64,
}

#[entity]
impl Counter {
    fn label(&mut self, name: &str) {
        self.value = name.len() as i64;
    }
}

fn main() {}
