//! A suspended orchestration's live locals are visible as JSON (what the HTTP API's
//! `showState` and the dashboard show), on both backends.

use durable::prelude::*;
use durable_test_support::backends::TestBackend;
use durable_test_support::wait::PATIENCE;
use std::time::Instant;

#[activity]
async fn price(item: String) -> Result<u32, ActivityError> {
    Ok(item.len() as u32 * 100)
}

#[orchestrator]
async fn cart(ctx: OrchestrationContext, items: Vec<String>) -> Result<u32, OrchestrationError> {
    let mut total = 0;
    for item in items {
        total += ctx.call_activity(price, item).await?;
    }
    let coupon: String = ctx.wait_for_event("coupon").await?;
    Ok(if coupon == "HALF" { total / 2 } else { total })
}

async fn shows_live_locals<B: TestBackend>(backend: B) {
    let worker = Worker::builder(backend.clone()).orchestrator(cart).activity(price).start().await.unwrap();
    let client = Client::new(backend);
    let id = client.start(cart, vec!["tea".into(), "honey".into()]).await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    let state = loop {
        if let Some(s) = client.state(&id).await.unwrap()
            && s["locals"]["total"] == 800
        {
            break s;
        }
        assert!(Instant::now() < deadline, "the orchestration never waited for the coupon");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    // Waiting for the coupon: the loop is done, `total` is live, `items` is not.
    assert!(state["at"].as_str().unwrap().starts_with("ctx.wait_for_event"), "{state}");
    assert!(state["line"].as_u64().unwrap() > 0, "{state}");
    assert!(state["locals"].get("items").is_none(), "{state}");
    client.raise_event(&id, "coupon", "HALF").await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<u32>().unwrap(), 400);
    assert_eq!(client.state(&id).await.unwrap(), None, "a finished instance has no live state");
    worker.shutdown().await.unwrap();
}

durable_test_support::on_both_backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    shows_live_locals,
}
