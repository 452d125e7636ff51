use durable::prelude::*;

#[derive(Default, Serialize, Deserialize)]
pub struct Account {
    balance: i64,
    owner: String,
}

#[entity(name = "bank-account")]
impl Account {
    /// Associated functions without `self` are not operations.
    pub fn opening_bonus() -> i64 {
        5
    }
    pub fn deposit(&mut self, amount: i64) -> i64 {
        self.balance += amount + Self::opening_bonus();
        self.balance
    }
    pub fn withdraw(&mut self, amount: i64) -> Result<i64, String> {
        if amount > self.balance {
            return Err(format!("only {} left", self.balance));
        }
        self.balance -= amount;
        Ok(self.balance)
    }
    pub fn rename(&mut self, first: String, last: String) {
        self.owner = format!("{first} {last}");
    }
    pub fn close(&mut self, ctx: &mut EntityContext) {
        ctx.delete_entity();
    }
    pub fn balance(&self) -> i64 {
        self.balance
    }
}

#[orchestrator]
async fn pay(ctx: OrchestrationContext, key: String) -> Result<i64, OrchestrationError> {
    ctx.signal::<Account>(key.clone()).rename("Ada".into(), "Lovelace".into());
    ctx.entity::<Account>(key.clone()).deposit(10).await?;
    Ok(ctx.entity::<Account>(key).withdraw(3).await?)
}

fn main() {
    use durable::Entity;
    assert_eq!(<Account as Entity>::NAME, "bank-account");
    assert_eq!(<Account as Entity>::OPERATIONS, ["deposit", "withdraw", "rename", "close", "balance"]);
    let _ = pay;
}
