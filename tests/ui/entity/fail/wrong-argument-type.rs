use durable::prelude::*;

#[derive(Default, Serialize, Deserialize)]
struct Counter {
    value: i64,
}

#[entity]
impl Counter {
    fn add(&mut self, amount: i64) {
        self.value += amount;
    }
}

async fn misuse(client: Client) {
    client.signal_entity::<Counter>("k").add("ten").await.unwrap();
}

fn main() {}
