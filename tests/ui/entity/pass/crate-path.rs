// `#[entity(crate = "…")]`: generated code names the runtime through the given path.

extern crate durable as renamed;

use renamed::prelude::*;

#[derive(Default, Serialize, Deserialize)]
pub struct Counter {
    value: i64,
}

#[entity(crate = "renamed")]
impl Counter {
    pub fn add(&mut self, n: i64) -> i64 {
        self.value += n;
        self.value
    }
    pub fn reset(&mut self, ctx: &mut EntityContext) {
        let _ = ctx;
        self.value = 0;
    }
    pub fn get(&self) -> Result<i64, String> {
        Ok(self.value)
    }
}

#[derive(Default, Serialize, Deserialize)]
pub struct Tally {
    n: u32,
}

#[entity(crate = "durable_runtime", name = "tally")]
impl Tally {
    pub fn bump(&mut self) {
        self.n += 1;
    }
}

fn main() {
    use renamed::Entity;
    assert_eq!(<Counter as Entity>::NAME, "counter");
    assert_eq!(<Counter as Entity>::OPERATIONS, ["add", "reset", "get"]);
    assert_eq!(<Tally as Entity>::NAME, "tally");
}
