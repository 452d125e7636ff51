//! Waiting in real time for something to happen, with one patience for every test.
//!
//! ```no_run
//! use durable_test_support::fixtures::wait_event;
//! use durable_test_support::wait::{eventually, running, wait_until};
//! # async fn f(client: durable::Client, backend: durable::backend::Memory) {
//! let id = client.start(wait_event, 3600).await.unwrap();
//! wait_until(&client, &id, running).await;
//! eventually("one timer pending", async || backend.pending_timers() == 1).await;
//! # }
//! ```

use durable::{Client, InstanceStatus, RuntimeStatus};
use std::time::Duration;
use tokio::time::Instant;

/// How long the helpers below, and the tests' own waits for completion, wait (real time)
/// before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// How often the helpers below look again.
const POLL: Duration = Duration::from_millis(5);

/// Wait until the instance's status satisfies `pred`, and return that status; panics after
/// [`PATIENCE`] with the last status seen.
pub async fn wait_until(client: &Client, id: &str, pred: impl Fn(&InstanceStatus) -> bool) -> InstanceStatus {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Some(s) = client.status(id).await.unwrap()
            && pred(&s)
        {
            return s;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("instance {id} never reached the expected state: {:?}", client.status(id).await.unwrap());
}

/// Wait until `f` holds; panics after [`PATIENCE`] saying `what` it waited for.
pub async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Wait until `f` gives a value, and return it; panics after [`PATIENCE`] saying `what` it
/// waited for.
pub async fn eventually_some<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Wait until instance `id` is suspended at an await whose key contains `at` (its live state,
/// `Client::state`, says where).
pub async fn parked_at(client: &Client, id: &str, at: &str) {
    eventually_some(&format!("{id} suspended at {at}"), async || {
        let st = client.state(id).await.unwrap()?;
        st["at"].as_str().is_some_and(|a| a.contains(at)).then_some(())
    })
    .await;
}

/// Let background tasks run for a moment: for checking that something does *not* happen.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// The instance is running (a predicate for [`wait_until`]).
pub fn running(s: &InstanceStatus) -> bool {
    s.runtime_status == RuntimeStatus::Running
}
