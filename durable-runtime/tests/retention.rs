//! Cleaning up finished instances: retention (finished instances are deleted, with everything
//! they own, once they have been finished that long), bulk purges by query, and paging through
//! `list` at a cost proportional to the page.

use durable_runtime::backend::{Memory, Redis};
use durable_runtime::{Client, Error, InstanceQuery, InstanceStatus, RuntimeStatus, Worker};
use durable_test_support::backends::TestBackend;
use durable_test_support::fixtures::{hello, panics, say_hello, wait_event};
use durable_test_support::leftovers::PARTITION_KEYS;
use durable_test_support::redis_server::RedisServer;
use durable_test_support::wait::{PATIENCE, eventually, running, wait_until};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn to_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// Every instance `list` returns for `query`, page by page (`limit` each), checking that no
/// page is larger than asked.
async fn list_all(client: &Client, query: InstanceQuery, limit: usize) -> Vec<InstanceStatus> {
    let mut query = query.with_limit(limit);
    let mut all = Vec::new();
    loop {
        let page = client.list(query.clone()).await.unwrap();
        assert!(page.instances.len() <= limit, "a page of {} for a limit of {limit}", page.instances.len());
        all.extend(page.instances);
        match page.continuation {
            Some(c) => query = query.with_continuation(c),
            None => return all,
        }
    }
}

/// The keys of (creation time, id) order.
fn order(list: &[InstanceStatus]) -> Vec<(u64, String)> {
    list.iter().map(|s| (s.created_ms, s.instance_id.clone())).collect()
}

/// A worker running the orchestrators these tests start.
async fn start_worker<B: durable_runtime::backend::Backend + Clone>(backend: &B) -> durable_runtime::WorkerHandle {
    Worker::builder(backend.clone())
        .orchestrator(hello)
        .orchestrator(wait_event)
        .orchestrator(panics)
        .activity(say_hello)
        .start()
        .await
        .unwrap()
}

async fn bulk_purge_deletes_exactly_the_matching_finished_instances<B: TestBackend>(backend: B) {
    let worker = start_worker(&backend).await;
    let client = Client::new(backend.clone());
    let cities = || vec!["Oslo".to_string()];
    let mut mark = 0;
    for i in 0..2 {
        let id = client.start_with_id(hello, format!("early-{i}"), cities()).await.unwrap();
        let s = client.wait_for_completion(&id, PATIENCE).await.unwrap();
        assert_eq!(s.runtime_status, RuntimeStatus::Completed);
        mark = mark.max(s.created_ms + 1);
    }
    eventually("the clock passes the mark", async || to_millis(backend.time()) > mark).await;
    for i in 0..2 {
        let id = client.start_with_id(hello, format!("late-{i}"), cities()).await.unwrap();
        client.wait_for_completion(&id, PATIENCE).await.unwrap();
    }
    let failed = client.start_with_id(panics, "failed", ()).await.unwrap();
    assert_eq!(client.wait_for_completion(&failed, PATIENCE).await.unwrap().runtime_status, RuntimeStatus::Failed);
    for i in 0..2 {
        let id = client.start_with_id(wait_event, format!("term-{i}"), 3600).await.unwrap();
        wait_until(&client, &id, running).await;
        client.terminate(&id, "enough").await.unwrap();
        wait_until(&client, &id, |s| s.runtime_status == RuntimeStatus::Terminated).await;
    }
    let live = client.start_with_id(wait_event, "live", 3600).await.unwrap();
    wait_until(&client, &live, running).await;
    eventually("the live instance's timer is armed", async || backend.pending_timers().await >= 1).await;

    // A live status or a continuation is refused, and nothing is deleted.
    for q in [
        InstanceQuery::new().with_status(RuntimeStatus::Running),
        InstanceQuery::new().with_status(RuntimeStatus::Completed).with_status(RuntimeStatus::Suspended),
        InstanceQuery::new().with_continuation("1:x"),
    ] {
        match client.purge_where(q.clone()).await {
            Err(Error::InvalidQuery(m)) => assert!(!m.is_empty()),
            other => panic!("{q:?}: {other:?}"),
        }
    }
    assert_eq!(list_all(&client, InstanceQuery::new(), 100).await.len(), 8);

    // Completed before the mark: the early ones only.
    let q = InstanceQuery::new().with_status(RuntimeStatus::Completed).created_before(from_millis(mark));
    assert_eq!(client.purge_where(q).await.unwrap(), 2);
    for id in ["early-0", "early-1"] {
        assert_eq!(client.status(id).await.unwrap(), None, "{id}");
    }
    for id in ["late-0", "late-1", "failed", "term-0", "term-1", "live"] {
        assert!(client.status(id).await.unwrap().is_some(), "{id} was purged");
    }

    // By name, with a limit: the terminated ones, never the live one.
    assert_eq!(client.purge_where(InstanceQuery::new().with_name("wait_event").with_limit(1)).await.unwrap(), 1);
    assert_eq!(client.purge_where(InstanceQuery::new().with_name("wait_event")).await.unwrap(), 1);
    assert_eq!(client.status("term-0").await.unwrap(), None);
    assert_eq!(client.status("term-1").await.unwrap(), None);
    assert_eq!(client.status("live").await.unwrap().unwrap().runtime_status, RuntimeStatus::Running);

    // Created after the mark and finished: the rest but the live one.
    let q = InstanceQuery::new().created_after(from_millis(mark));
    assert_eq!(client.purge_where(q).await.unwrap(), 3);
    assert_eq!(client.purge_where(InstanceQuery::new()).await.unwrap(), 0);
    let left: Vec<String> =
        list_all(&client, InstanceQuery::new(), 100).await.into_iter().map(|s| s.instance_id).collect();
    assert_eq!(left, ["live"]);
    // The purged instances' timers went with them.
    assert_eq!(backend.pending_timers().await, 1);
    client.terminate(&live, "done").await.unwrap();
    worker.shutdown().await.unwrap();
}

async fn list_pages_return_each_instance_once_in_order<B: TestBackend>(backend: B) {
    // No worker: the instances stay Pending. The virtual clock gives many the same creation
    // time, so the order within one millisecond (by id) matters.
    let client = Client::new(backend.clone());
    for i in 0..250u32 {
        if i % 9 == 0 {
            backend.advance(Duration::from_millis(1));
        }
        let name = if i % 2 == 0 { "hello" } else { "other" };
        let id = format!("i{:03}", (i * 37) % 250);
        client.start_by_name_with_id(name, id, serde_json::json!(["x"])).await.unwrap();
    }
    let all = list_all(&client, InstanceQuery::new(), 1000).await;
    assert_eq!(all.len(), 250);
    let mut expected = order(&all);
    expected.sort();
    assert_eq!(order(&all), expected, "one page of everything is in (creation time, id) order");

    let paged = list_all(&client, InstanceQuery::new(), 40).await;
    assert_eq!(order(&paged), expected, "pages of 40 return each instance once, in order");
    let ids: HashSet<&str> = paged.iter().map(|s| s.instance_id.as_str()).collect();
    assert_eq!(ids.len(), 250);

    let hello_only = list_all(&client, InstanceQuery::new().with_name("hello"), 40).await;
    let expected_hello: Vec<_> = all.iter().filter(|s| s.name == "hello").cloned().collect();
    assert_eq!(expected_hello.len(), 125);
    assert_eq!(order(&hello_only), order(&expected_hello));

    let created = all[100].created_ms;
    let range = InstanceQuery::new().created_after(from_millis(created)).created_before(from_millis(created + 5));
    let ranged = list_all(&client, range, 7).await;
    let expected_range: Vec<_> =
        all.iter().filter(|s| s.created_ms >= created && s.created_ms < created + 5).cloned().collect();
    assert!(!expected_range.is_empty());
    assert_eq!(order(&ranged), order(&expected_range));

    let none = list_all(&client, InstanceQuery::new().with_status(RuntimeStatus::Completed), 40).await;
    assert!(none.is_empty());
}

durable_test_support::on_both_backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    bulk_purge_deletes_exactly_the_matching_finished_instances,
    list_pages_return_each_instance_once_in_order: Virtual,
}

/// The keys of the Redis server (a test's own).
async fn all_keys(c: &mut ::redis::aio::MultiplexedConnection) -> Vec<String> {
    let mut keys: Vec<String> = ::redis::cmd("KEYS").arg("*").query_async(c).await.unwrap();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_finished_instances_expire_with_everything_they_own() {
    let server = RedisServer::start();
    let retention = Duration::from_secs(1);
    let backend = Redis::builder(server.url())
        .prefix("ret")
        .partitions(2)
        .lease_duration(Duration::from_secs(2))
        .retention(retention)
        .connect()
        .await
        .unwrap();
    let worker = start_worker(&backend).await;
    let client = Client::new(backend.clone());
    let live = client.start_with_id(wait_event, "live", 3600).await.unwrap();
    wait_until(&client, &live, running).await;

    // When each finished instance finished (its last status update).
    let mut finished: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..3 {
        let id = client.start_with_id(hello, format!("done-{i}"), vec!["Oslo".to_string()]).await.unwrap();
        let s = client.wait_for_completion(&id, PATIENCE).await.unwrap();
        assert_eq!(s.runtime_status, RuntimeStatus::Completed);
        finished.insert(id.to_string(), s.updated_ms);
    }
    let failed = client.start_with_id(panics, "failed", ()).await.unwrap();
    let s = client.wait_for_completion(&failed, PATIENCE).await.unwrap();
    assert_eq!(s.runtime_status, RuntimeStatus::Failed);
    finished.insert(failed.to_string(), s.updated_ms);
    // Terminated with its timer still armed: the timer goes with it.
    let term = client.start_with_id(wait_event, "term", 3600).await.unwrap();
    wait_until(&client, &term, running).await;
    eventually("both timers are armed", async || backend.pending_timers().await.unwrap() == 2).await;
    client.terminate(&term, "enough").await.unwrap();
    let s = wait_until(&client, &term, |s| s.runtime_status == RuntimeStatus::Terminated).await;
    finished.insert(term.to_string(), s.updated_ms);

    // Each disappears, never before it has been finished for the retention.
    let mut gone: HashSet<String> = HashSet::new();
    eventually("the finished instances expire", async || {
        for (id, at) in &finished {
            if !gone.contains(id) && client.status(id).await.unwrap().is_none() {
                let now = to_millis(backend.time());
                assert!(
                    now >= at + retention.as_millis() as u64,
                    "{id} was deleted {} ms after it finished, before the retention",
                    now - at
                );
                gone.insert(id.clone());
            }
        }
        gone.len() == finished.len()
    })
    .await;
    for id in finished.keys() {
        assert!(matches!(client.history(id).await, Err(Error::InstanceNotFound(_))), "{id}");
    }
    assert_eq!(client.status("live").await.unwrap().unwrap().runtime_status, RuntimeStatus::Running);
    assert_eq!(backend.pending_timers().await.unwrap(), 1, "only the live instance's timer is left");

    // Nothing of theirs is left: only partition-level keys and the live instance's own.
    let mut c = ::redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    for key in all_keys(&mut c).await {
        let ok = key == "{ret}:workers"
            || key == "{ret}:partitions"
            || ["{ret:p0}:", "{ret:p1}:"].iter().any(|t| {
                key.strip_prefix(t).is_some_and(|rest| {
                    PARTITION_KEYS.contains(&rest) || ["i:live", "h:live", "ti:live"].contains(&rest)
                })
            });
        assert!(ok, "key {key} was left behind");
    }
    for p in 0..2 {
        let t = format!("{{ret:p{p}}}");
        let idx: Vec<String> =
            ::redis::cmd("ZRANGE").arg(format!("{t}:idx")).arg(0).arg(-1).query_async(&mut c).await.unwrap();
        let fin: Vec<String> =
            ::redis::cmd("ZRANGE").arg(format!("{t}:fin")).arg(0).arg(-1).query_async(&mut c).await.unwrap();
        let tp: Vec<String> = ::redis::cmd("HKEYS").arg(format!("{t}:tp")).query_async(&mut c).await.unwrap();
        assert!(idx.iter().all(|id| id == "live"), "partition {p} index: {idx:?}");
        assert!(fin.is_empty(), "partition {p} finished index: {fin:?}");
        assert!(tp.iter().all(|m| m.starts_with("live\n")), "partition {p} timers: {tp:?}");
    }
    client.terminate(&live, "done").await.unwrap();
    worker.shutdown().await.unwrap();
}

/// `calls` of command `name` in `INFO commandstats` (commands that scripts run count too).
fn calls(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_page_reads_only_its_page() {
    let server = RedisServer::start();
    let backend = Redis::builder(server.url()).prefix("pg").partitions(4).virtual_clock().connect().await.unwrap();
    let client = Client::new(backend.clone());
    for i in 0..400u32 {
        if i % 50 == 0 {
            backend.advance(Duration::from_millis(1));
        }
        client
            .start_by_name_with_id("hello", format!("i{:03}", (i * 37) % 400), serde_json::json!(null))
            .await
            .unwrap();
    }
    let all = order(&list_all(&client, InstanceQuery::new(), 1000).await);
    assert_eq!(all.len(), 400);
    let mut c = ::redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();

    // Each page reads at most its size per partition, and never a whole index.
    let (limit, partitions) = (10, 4);
    let mut query = InstanceQuery::new().with_limit(limit);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let _: () = ::redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut c).await.unwrap();
        let page = client.list(query.clone()).await.unwrap();
        let info: String = ::redis::cmd("INFO").arg("commandstats").query_async(&mut c).await.unwrap();
        assert_eq!(page.instances.len(), limit);
        let reads = calls(&info, "get");
        assert!(reads <= (limit * partitions) as u64, "a page of {limit} read {reads} instances:\n{info}");
        assert_eq!(calls(&info, "zrangebyscore"), 0, "{info}");
        // Finding where the continuation falls in a partition that does not hold its
        // instance is a binary search among the instances of the same millisecond.
        let search = u64::BITS - 400u64.leading_zeros();
        assert!(calls(&info, "zrange") <= (partitions as u64) * (1 + u64::from(search)), "{info}");
        seen.extend(order(&page.instances));
        query = query.with_continuation(page.continuation.unwrap());
    }
    assert_eq!(seen, all[..30]);

    // A continuation whose last instance is gone (purged in between) goes on where it was.
    let (_, last) = &all[29];
    let t = format!("{{pg:p{}}}", backend.partition_of(last));
    let _: () = ::redis::pipe()
        .cmd("UNLINK")
        .arg(format!("{t}:i:{last}"))
        .ignore()
        .cmd("ZREM")
        .arg(format!("{t}:idx"))
        .arg(last)
        .ignore()
        .query_async(&mut c)
        .await
        .unwrap();
    let page = client.list(query).await.unwrap();
    assert_eq!(order(&page.instances), all[30..40]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_finished_instances_expire_on_the_virtual_clock() {
    let backend = Memory::with_virtual_clock().with_retention(Duration::from_secs(3600));
    let worker = Worker::builder(backend.clone())
        .orchestrator(hello)
        .orchestrator(wait_event)
        .activity(say_hello)
        .start()
        .await
        .unwrap();
    let client = Client::new(backend.clone());
    let live = client.start_with_id(wait_event, "live", 0).await.unwrap();
    wait_until(&client, &live, running).await;
    let run = async |id: &str| {
        let id = client.start_with_id(hello, id, vec!["Oslo".to_string()]).await.unwrap();
        assert_eq!(client.wait_for_completion(&id, PATIENCE).await.unwrap().runtime_status, RuntimeStatus::Completed);
    };
    run("a").await;
    run("b").await;

    backend.advance(Duration::from_secs(30 * 60));
    // Restarted under the same id: its retention counts from its new finish.
    run("b").await;
    backend.advance(Duration::from_secs(29 * 60));
    assert!(client.status("a").await.unwrap().is_some(), "deleted before the retention");
    backend.advance(Duration::from_secs(2 * 60));
    assert_eq!(client.status("a").await.unwrap(), None);
    assert!(matches!(client.history("a").await, Err(Error::InstanceNotFound(_))));
    assert!(client.status("b").await.unwrap().is_some(), "the restarted instance went with its old finish");
    backend.advance(Duration::from_secs(30 * 60));
    assert_eq!(client.status("b").await.unwrap(), None);
    // The live instance stays however long it waits.
    backend.advance(Duration::from_secs(48 * 3600));
    assert_eq!(client.status("live").await.unwrap().unwrap().runtime_status, RuntimeStatus::Running);
    let left: Vec<String> =
        list_all(&client, InstanceQuery::new(), 10).await.into_iter().map(|s| s.instance_id).collect();
    assert_eq!(left, ["live"]);
    client.raise_event(&live, "go", "now").await.unwrap();
    client.wait_for_completion(&live, PATIENCE).await.unwrap();
    backend.advance(Duration::from_secs(3601));
    assert_eq!(client.status("live").await.unwrap(), None);
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pages_of_a_sparse_filter_return_each_match_once_in_order() {
    // A page looks at 1,000 instances per partition at most. Partition 0 holds 2,500 instances
    // and a match every 300; partition 1 holds only matches. So partition 0 stops early on most
    // pages, and a page must not return partition 1's later matches before partition 0's.
    let server = RedisServer::start();
    let backend = Redis::builder(server.url()).prefix("sp").partitions(2).virtual_clock().connect().await.unwrap();
    let client = Client::new(backend.clone());
    let mut n = 0;
    let mut id_in = |p: u32| loop {
        n += 1;
        let id = format!("i{n:05}");
        if backend.partition_of(&id) == p {
            return id;
        }
    };
    let mut expected = Vec::new();
    for i in 0..2500u32 {
        if i % 10 == 0 {
            backend.advance(Duration::from_millis(1));
        }
        if i % 300 == 7 {
            for p in [0, 1] {
                let id = client.start_by_name_with_id("rare", id_in(p), serde_json::json!(null)).await.unwrap();
                expected.push((to_millis(backend.time()), id.to_string()));
            }
        }
        client.start_by_name_with_id("common", id_in(0), serde_json::json!(null)).await.unwrap();
    }
    expected.sort();
    assert_eq!(expected.len(), 18);
    for limit in [1, 2, 5, 100] {
        let got = list_all(&client, InstanceQuery::new().with_name("rare"), limit).await;
        assert_eq!(order(&got), expected, "pages of {limit}");
    }
}
