//! Entries a worker cannot read (a message variant from a newer release during a rolling
//! upgrade) are moved to the dead letters with the reason, and taken out of their streams:
//! never skipped silently, never left pending, and the worker keeps working.

use durable_runtime::backend::Redis;
use durable_runtime::{Client, RuntimeStatus, Worker};
use durable_test_support::fixtures::{hello, say_hello};
use durable_test_support::leftovers::{Allow, check_nothing_left, purge_everything};
use durable_test_support::redis_server::RedisServer;
use redis::aio::MultiplexedConnection;
use std::time::{Duration, Instant};

/// Append an entry to `stream` with the partition's next entry number (as the backend does).
async fn xadd(c: &mut MultiplexedConnection, tag: &str, stream: &str, fields: &[(&str, &str)]) -> String {
    let n: u64 = redis::cmd("INCR").arg(format!("{tag}:seq")).query_async(c).await.unwrap();
    let id = format!("{n}-0");
    let mut cmd = redis::cmd("XADD");
    cmd.arg(format!("{tag}:{stream}")).arg(&id);
    for (k, v) in fields {
        cmd.arg(*k).arg(*v);
    }
    let _: String = cmd.query_async(c).await.unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_entries_go_to_the_dead_letters() {
    let server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", server.port);
    let connect = || Redis::builder(url.clone()).prefix("dl").partitions(2).connect();
    let backend = connect().await.unwrap();
    let worker = Worker::builder(backend.clone()).orchestrator(hello).activity(say_hello).start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.owned_partitions().len() < 2 {
        assert!(Instant::now() < deadline, "the worker never took its partitions");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let client = Client::new(connect().await.unwrap());
    // A normal instance first: the worker reads activities (and creates the consumer group).
    let first = client.start(hello, vec!["Oslo".to_string()]).await.unwrap();
    assert_eq!(
        client.wait_for_completion(&first, Duration::from_secs(30)).await.unwrap().runtime_status,
        RuntimeStatus::Completed
    );

    let mut c = redis::Client::open(url.clone()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let future_message = r#"{"MessageFromTheFuture":{"x":1}}"#;
    let ctl_id = xadd(&mut c, "{dl:p0}", "ctl", &[("i", "someone"), ("m", future_message)]).await;
    let act_id = xadd(&mut c, "{dl:p1}", "act", &[("i", "someone"), ("r", r#"{"newer":true}"#)]).await;
    let no_message_id = xadd(&mut c, "{dl:p1}", "ctl", &[("i", "someone")]).await;

    // The worker keeps working.
    let id = client.start(hello, vec!["Paris".to_string(), "Rome".to_string()]).await.unwrap();
    let done = client.wait_for_completion(&id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{done:?}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let dead = loop {
        let dead = client.dead_letters(10).await.unwrap();
        if dead.len() >= 3 {
            break dead;
        }
        assert!(Instant::now() < deadline, "the unreadable entries never reached the dead letters: {dead:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(dead.len(), 3, "{dead:?}");
    let ctl = dead.iter().find(|d| d.stream == "{dl:p0}:ctl").expect("the control entry");
    assert_eq!((ctl.entry_id.as_str(), ctl.partition), (ctl_id.as_str(), 0));
    assert!(ctl.reason.contains("MessageFromTheFuture"), "{}", ctl.reason);
    assert_eq!(ctl.fields.get("m").map(String::as_str), Some(future_message));
    assert_eq!(ctl.fields.get("i").map(String::as_str), Some("someone"));
    let act = dead.iter().find(|d| d.stream == "{dl:p1}:act").expect("the activity entry");
    assert_eq!((act.entry_id.as_str(), act.partition), (act_id.as_str(), 1));
    assert!(act.reason.contains("activity request does not decode"), "{}", act.reason);
    assert_eq!(act.fields.get("r").map(String::as_str), Some(r#"{"newer":true}"#));
    assert!(act.time_ms > 0 && ctl.time_ms > 0);
    let no_message = dead.iter().find(|d| d.stream == "{dl:p1}:ctl").expect("the control entry without a message");
    assert_eq!(no_message.entry_id, no_message_id);
    assert!(no_message.reason.contains("no message"), "{}", no_message.reason);
    assert_eq!(client.dead_letters(1).await.unwrap().len(), 1);

    // Gone from their streams, nothing pending.
    for (key, id) in [("{dl:p0}:ctl", &ctl_id), ("{dl:p1}:act", &act_id), ("{dl:p1}:ctl", &no_message_id)] {
        let left: Vec<redis::Value> = redis::cmd("XRANGE").arg(key).arg(id).arg(id).query_async(&mut c).await.unwrap();
        assert!(left.is_empty(), "{key} {id} is still there");
    }
    for p in 0..2 {
        let pending: Vec<redis::Value> =
            redis::cmd("XPENDING").arg(format!("{{dl:p{p}}}:act")).arg("w").query_async(&mut c).await.unwrap();
        assert_eq!(pending.first(), Some(&redis::Value::Int(0)), "partition {p}: {pending:?}");
    }
    purge_everything(&client).await;
    worker.shutdown().await.unwrap();
    // Nothing else is left: the three dead letters stay until they are looked at.
    check_nothing_left(&url, "dl", Allow { dead_letters: 3, ..Allow::default() }, Duration::from_secs(10)).await;
}
