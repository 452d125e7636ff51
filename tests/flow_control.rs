//! Flow control on both backends: a per-key concurrency limit of an orchestrator never runs
//! two instances of one key at once and loses none; a global activity concurrency limit holds
//! across workers; a rate limit lets at most N starts into any window; a limit of 0 and a key
//! function that panics are refused with the reason.

use durable::backend::{Backend, Redis};
use durable::prelude::*;
use durable::{Error, RuntimeStatus, WorkerHandle};
use durable_test_support::backends::{Clock, TestBackend};
use durable_test_support::wait::{PATIENCE, eventually, wait_until};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

/// What the activities of these tests record, by test run (tests run in parallel in this
/// binary): `(key, start, end)` of each execution.
static INTERVALS: LazyLock<Mutex<BTreeMap<String, Vec<Interval>>>> = LazyLock::new(Default::default);

/// A key, and when an execution of it started and ended.
type Interval = (String, Instant, Instant);

/// A unique name for one test run.
fn run_name(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{what}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order {
    run: String,
    customer: String,
    n: u32,
}

/// Records its interval under its run, keyed by customer.
#[activity]
async fn handle_order(order: Order) -> Result<u32, ActivityError> {
    let start = Instant::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let end = Instant::now();
    INTERVALS.lock().unwrap().entry(order.run.clone()).or_default().push((order.customer, start, end));
    Ok(order.n)
}

#[orchestrator]
async fn process_order(ctx: OrchestrationContext, order: Order) -> Result<u32, OrchestrationError> {
    let n = ctx.call_activity(handle_order, order).await?;
    Ok(n)
}

/// Waits for event `go`, then completes: holds its slot until told.
#[orchestrator]
async fn held(ctx: OrchestrationContext, order: Order) -> Result<String, OrchestrationError> {
    ctx.wait_for_event::<String>("go").await?;
    Ok(order.customer)
}

fn by_customer() -> ConcurrencyLimit<Order> {
    ConcurrencyLimit::per_key(1, |o: &Order| {
        assert_ne!(o.customer, "boom", "no key for a bomb");
        o.customer.clone()
    })
    .unwrap()
}

/// No two intervals of one key overlap.
fn assert_no_overlap(intervals: &[Interval]) {
    let mut per_key: BTreeMap<&str, Vec<(Instant, Instant)>> = BTreeMap::new();
    for (k, s, e) in intervals {
        per_key.entry(k).or_default().push((*s, *e));
    }
    for (k, mut v) in per_key {
        v.sort();
        for w in v.windows(2) {
            assert!(w[0].1 <= w[1].0, "two instances of key {k} ran at once: {:?} and {:?}", w[0], w[1]);
        }
    }
}

async fn per_key_limit_of_one_never_runs_two_of_a_key_at_once<B: TestBackend>(backend: B) {
    let worker = Worker::builder(backend.clone())
        .orchestrator(process_order)
        .concurrency_limit(process_order, by_customer())
        .activity(handle_order)
        .start()
        .await
        .unwrap();
    let client = Client::new(backend.clone());
    let run = run_name("per-key");
    let mut ids = Vec::new();
    for n in 0..50 {
        let order = Order { run: run.clone(), customer: format!("c{}", n % 5), n };
        ids.push(client.start(process_order, order).await.unwrap());
    }
    // Some wait, and say why.
    eventually("an instance waiting for its key's slot", async || {
        for id in &ids {
            let s = client.status(id).await.unwrap().unwrap();
            if s.runtime_status == RuntimeStatus::Pending
                && s.reason.as_deref().is_some_and(|r| r.contains("concurrency limit of `process_order`"))
            {
                return true;
            }
        }
        false
    })
    .await;
    for (n, id) in ids.iter().enumerate() {
        let done = client.wait_for_completion(id, PATIENCE).await.unwrap();
        assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{done:?}");
        assert_eq!(done.output::<u32>().unwrap(), n as u32);
    }
    let intervals = INTERVALS.lock().unwrap().remove(&run).unwrap();
    assert_eq!(intervals.len(), 50);
    assert_no_overlap(&intervals);
    // Every slot was given back: the semaphores are idle.
    for c in 0..5 {
        let key = format!("process_order/c{c}");
        eventually("the semaphore idle", async || {
            client.status(&format!("@durable.limit@{key}")).await.unwrap().is_none_or(|s| s.output.is_none())
        })
        .await;
    }
    let mut metrics = String::new();
    durable::metrics::render(&mut metrics, None);
    assert!(metrics.contains("# TYPE durable_concurrency_limit_holders gauge"), "{metrics}");
    assert!(metrics.contains("# TYPE durable_concurrency_limit_waiters gauge"), "{metrics}");
    worker.shutdown().await.unwrap();
}

/// A worker running `held`, one instance at a time per customer.
async fn held_one_per_customer<B: TestBackend>(backend: &B) -> WorkerHandle {
    Worker::builder(backend.clone()).orchestrator(held).concurrency_limit(held, by_customer()).start().await.unwrap()
}

async fn terminating_frees_the_slot_and_the_place_in_line<B: TestBackend>(backend: B) {
    let worker = held_one_per_customer(&backend).await;
    let client = Client::new(backend.clone());
    let run = run_name("terminate");
    let order = |n| Order { run: run.clone(), customer: "same".into(), n };
    let first = client.start(held, order(1)).await.unwrap();
    wait_until(&client, &first, |s| s.runtime_status == RuntimeStatus::Running).await;
    let second = client.start(held, order(2)).await.unwrap();
    let third = client.start(held, order(3)).await.unwrap();
    let waiting = |s: &durable::InstanceStatus| {
        s.runtime_status == RuntimeStatus::Pending && s.reason.as_deref().is_some_and(|r| r.contains("key \"same\""))
    };
    wait_until(&client, &second, waiting).await;
    wait_until(&client, &third, waiting).await;
    // The second leaves the line without ever running; the first is terminated while running.
    client.terminate(&second, "not needed").await.unwrap();
    wait_until(&client, &second, |s| s.runtime_status == RuntimeStatus::Terminated).await;
    assert_eq!(client.status(&third).await.unwrap().unwrap().runtime_status, RuntimeStatus::Pending);
    client.terminate(&first, "stop").await.unwrap();
    wait_until(&client, &third, |s| s.runtime_status == RuntimeStatus::Running).await;
    client.raise_event(&third, "go", "now").await.unwrap();
    let done = client.wait_for_completion(&third, PATIENCE).await.unwrap();
    assert_eq!(done.output::<String>().unwrap(), "same");
    worker.shutdown().await.unwrap();
}

async fn a_key_function_that_panics_fails_the_instance<B: TestBackend>(backend: B) {
    let worker = Worker::builder(backend.clone())
        .orchestrator(process_order)
        .concurrency_limit(process_order, by_customer())
        .activity(handle_order)
        .start()
        .await
        .unwrap();
    let client = Client::new(backend.clone());
    let run = run_name("boom");
    let bomb = client.start(process_order, Order { run: run.clone(), customer: "boom".into(), n: 0 }).await.unwrap();
    let failed = client.wait_for_completion(&bomb, PATIENCE).await.unwrap();
    assert_eq!(failed.runtime_status, RuntimeStatus::Failed);
    let error = failed.error.unwrap();
    assert!(error.contains("the concurrency key function of `process_order` panicked: "), "{error}");
    assert!(error.contains("no key for a bomb"), "{error}");
    // The worker goes on.
    let fine = client.start(process_order, Order { run: run.clone(), customer: "ok".into(), n: 7 }).await.unwrap();
    assert_eq!(client.wait_for_completion(&fine, PATIENCE).await.unwrap().output::<u32>().unwrap(), 7);
    INTERVALS.lock().unwrap().remove(&run);
    worker.shutdown().await.unwrap();
}

/// Continues as new twice (each execution gives its slot back and asks again), then completes.
#[orchestrator]
async fn again(ctx: OrchestrationContext, order: Order, round: u32) -> Result<u32, OrchestrationError> {
    let n = ctx.call_activity(handle_order, order.clone()).await?;
    if round < 2 {
        ctx.continue_as_new((order, round + 1));
        return Ok(0);
    }
    Ok(n)
}

async fn continuing_as_new_gives_the_slot_back_and_asks_again<B: TestBackend>(backend: B) {
    let limit = ConcurrencyLimit::per_key(1, |(o, _): &(Order, u32)| o.customer.clone()).unwrap();
    let worker = Worker::builder(backend.clone())
        .orchestrator(again)
        .concurrency_limit(again, limit)
        .activity(handle_order)
        .start()
        .await
        .unwrap();
    let client = Client::new(backend.clone());
    let run = run_name("again");
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(client.start(again, (Order { run: run.clone(), customer: "k".into(), n }, 0)).await.unwrap());
    }
    for (n, id) in ids.iter().enumerate() {
        let done = client.wait_for_completion(id, PATIENCE).await.unwrap();
        assert_eq!(done.output::<u32>().unwrap(), n as u32, "{done:?}");
    }
    let intervals = INTERVALS.lock().unwrap().remove(&run).unwrap();
    assert_eq!(intervals.len(), 12);
    assert_no_overlap(&intervals);
    eventually("the semaphore idle", async || {
        client.status("@durable.limit@again/k").await.unwrap().is_none_or(|s| s.output.is_none())
    })
    .await;
    worker.shutdown().await.unwrap();
}

durable_test_support::on_both_backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    continuing_as_new_gives_the_slot_back_and_asks_again,
    per_key_limit_of_one_never_runs_two_of_a_key_at_once,
    terminating_frees_the_slot_and_the_place_in_line,
    a_key_function_that_panics_fails_the_instance,
    a_waiting_instance_suspended_and_resumed_starts_with_its_events,
}

// ---- activities: global concurrency ----

/// Executions of `guarded` running now, and the most seen at once, per test run.
static RUNNING: LazyLock<Mutex<BTreeMap<String, (usize, usize)>>> = LazyLock::new(Default::default);

#[activity]
async fn guarded(run: String) -> Result<(), ActivityError> {
    {
        let mut r = RUNNING.lock().unwrap();
        let e = r.entry(run.clone()).or_default();
        e.0 += 1;
        e.1 = e.1.max(e.0);
    }
    // Long enough that three overlap however the machine is loaded.
    tokio::time::sleep(Duration::from_millis(100)).await;
    RUNNING.lock().unwrap().get_mut(&run).unwrap().0 -= 1;
    Ok(())
}

#[orchestrator]
async fn fan_out(ctx: OrchestrationContext, run: String, n: u32) -> Result<usize, OrchestrationError> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        tasks.push(ctx.call_activity(guarded, run.clone()));
    }
    let done = ctx.when_all(tasks).await?;
    Ok(done.len())
}

async fn workers(backends: &[std::sync::Arc<dyn Backend>]) -> Vec<WorkerHandle> {
    let mut out = Vec::new();
    for b in backends {
        let w = Worker::builder_arc(b.clone())
            .orchestrator(fan_out)
            .activity(guarded)
            .activity_concurrency(guarded, 3)
            .start()
            .await
            .unwrap();
        out.push(w);
    }
    out
}

async fn at_most_three_at_once(backends: Vec<std::sync::Arc<dyn Backend>>) {
    let handles = workers(&backends).await;
    let client = Client::from_arc(backends[0].clone());
    let run = run_name("global");
    let id = client.start(fan_out, (run.clone(), 30)).await.unwrap();
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<usize>().unwrap(), 30, "{done:?}");
    let (now, max) = RUNNING.lock().unwrap().remove(&run).unwrap();
    assert_eq!(now, 0);
    assert_eq!(max, 3, "at most 3 at once, and the limit was reached");
    let mut metrics = String::new();
    durable::metrics::render(&mut metrics, None);
    assert!(metrics.contains("durable_activity_limit_running{activity=\"guarded\"}"), "{metrics}");
    for h in handles {
        h.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_activity_limit_holds_across_three_workers_on_memory() {
    let m = durable_test_support::backends::memory(Clock::Real);
    let b: std::sync::Arc<dyn Backend> = std::sync::Arc::new(m);
    at_most_three_at_once(vec![b.clone(), b.clone(), b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_activity_limit_holds_across_three_workers_on_redis() {
    let (first, server) = durable_test_support::backends::redis(Clock::Real).await;
    let mut backends: Vec<std::sync::Arc<dyn Backend>> = vec![std::sync::Arc::new(first)];
    for _ in 0..2 {
        let b = Redis::builder(server.url()).lease_duration(Duration::from_secs(2)).connect().await.unwrap();
        backends.push(std::sync::Arc::new(b));
    }
    at_most_three_at_once(backends).await;
    drop(server);
}

// ---- activities: rate limits ----

/// When each `ping` started, per test run.
static STARTS: LazyLock<Mutex<BTreeMap<String, Vec<Instant>>>> = LazyLock::new(Default::default);

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Ping {
    run: String,
    domain: String,
}

#[activity]
async fn ping(p: Ping) -> Result<(), ActivityError> {
    STARTS.lock().unwrap().entry(p.run).or_default().push(Instant::now());
    Ok(())
}

#[orchestrator]
async fn pings(ctx: OrchestrationContext, run: String, n: u32, domain: String) -> Result<u32, OrchestrationError> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        tasks.push(ctx.call_activity(ping, Ping { run: run.clone(), domain: domain.clone() }));
    }
    ctx.when_all(tasks).await?;
    Ok(n)
}

fn starts(run: &str) -> usize {
    STARTS.lock().unwrap().get(run).map_or(0, |v| v.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_lets_n_starts_per_period_on_the_virtual_clock() {
    let backend = durable_test_support::backends::memory(Clock::Virtual);
    let limit = RateLimit::new(5, Duration::from_secs(60)).unwrap();
    let worker = Worker::builder(backend.clone())
        .orchestrator(pings)
        .activity(ping)
        .rate_limit(ping, limit)
        .start()
        .await
        .unwrap();
    let client = Client::new(backend.clone());
    let run = run_name("rate-virtual");
    let id = client.start(pings, (run.clone(), 12, "a.example".to_string())).await.unwrap();
    eventually("5 starts in the first minute", async || starts(&run) == 5).await;
    // The clock stands still: however long we look, no sixth start.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(starts(&run), 5);
    }
    backend.advance(Duration::from_secs(59));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(starts(&run), 5, "the window is not over before 60 s");
    backend.advance(Duration::from_secs(1));
    eventually("10 starts once the first window is over", async || starts(&run) == 10).await;
    backend.advance(Duration::from_secs(60));
    let done = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(done.output::<u32>().unwrap(), 12);
    assert_eq!(starts(&run), 12);
    let mut metrics = String::new();
    durable::metrics::render(&mut metrics, None);
    assert!(metrics.contains("durable_activity_rate_limited_total{activity=\"ping\"}"), "{metrics}");
    worker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_holds_in_any_window_across_workers_on_redis() {
    let (first, server) = durable_test_support::backends::redis(Clock::Real).await;
    let second = Redis::builder(server.url()).lease_duration(Duration::from_secs(2)).connect().await.unwrap();
    let mut handles = Vec::new();
    for b in [first.clone(), second] {
        let limit = RateLimit::new(5, Duration::from_secs(1)).unwrap().per_key(|p: &Ping| p.domain.clone());
        let w = Worker::builder(b).orchestrator(pings).activity(ping).rate_limit(ping, limit).start().await.unwrap();
        handles.push(w);
    }
    let client = Client::new(first);
    let run = run_name("rate-redis");
    let a = client.start(pings, (run.clone(), 15, "a.example".to_string())).await.unwrap();
    let done = client.wait_for_completion(&a, PATIENCE).await.unwrap();
    assert_eq!(done.output::<u32>().unwrap(), 15, "{done:?}");
    let mut t = STARTS.lock().unwrap().remove(&run).unwrap();
    t.sort();
    assert_eq!(t.len(), 15);
    // Any window of the period (less a margin for the time between taking a start in Redis
    // and the activity running, which a loaded machine stretches) holds at most 5 starts.
    let window = Duration::from_millis(750);
    for (i, s) in t.iter().enumerate() {
        let inside = t[i..].iter().take_while(|x| x.duration_since(*s) < window).count();
        assert!(inside <= 5, "{inside} starts within {window:?} of start {i}: {t:?}");
    }
    assert!(t[14].duration_since(t[0]) >= Duration::from_millis(1750), "15 starts at 5/s take 2 s at least");
    for h in handles {
        h.shutdown().await.unwrap();
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_key_function_that_panics_fails_the_attempt() {
    let backend = durable_test_support::backends::memory(Clock::Real);
    let limit = RateLimit::new(5, Duration::from_secs(1)).unwrap().per_key(|p: &Ping| {
        assert_ne!(p.domain, "boom", "no domain");
        p.domain.clone()
    });
    let worker = Worker::builder(backend.clone())
        .orchestrator(pings)
        .activity(ping)
        .rate_limit(ping, limit)
        .start()
        .await
        .unwrap();
    let client = Client::new(backend.clone());
    let run = run_name("rate-boom");
    let id = client.start(pings, (run.clone(), 1, "boom".to_string())).await.unwrap();
    let failed = client.wait_for_completion(&id, PATIENCE).await.unwrap();
    assert_eq!(failed.runtime_status, RuntimeStatus::Failed);
    let error = failed.error.unwrap();
    assert!(error.contains("the rate-limit key function of `ping` panicked: "), "{error}");
    assert!(error.contains("no domain"), "{error}");
    assert_eq!(starts(&run), 0);
    let ok = client.start(pings, (run.clone(), 2, "fine".to_string())).await.unwrap();
    assert_eq!(client.wait_for_completion(&ok, PATIENCE).await.unwrap().output::<u32>().unwrap(), 2);
    worker.shutdown().await.unwrap();
}

// ---- bad input ----

#[tokio::test]
async fn a_limit_of_zero_is_refused_where_it_is_given() {
    let e = ConcurrencyLimit::per_key(0, |o: &Order| o.customer.clone()).unwrap_err();
    assert!(matches!(&e, Error::Config(m) if m.contains("the concurrency limit is 0: it must be at least 1")), "{e}");
    let e = RateLimit::<Ping>::new(0, Duration::from_secs(1)).unwrap_err();
    assert!(e.to_string().contains("the rate limit is 0"), "{e}");
    let e = RateLimit::<Ping>::new(3, Duration::ZERO).unwrap_err();
    assert!(e.to_string().contains("the period of a rate limit is 0ns: it must be at least 1 ms"), "{e}");
    let backend = durable_test_support::backends::memory(Clock::Real);
    let e = Worker::builder(backend).activity(guarded).activity_concurrency(guarded, 0).start().await.unwrap_err();
    assert!(e.to_string().contains("the concurrency limit of activity `guarded` is 0"), "{e}");
}

// ---- the slots and windows in Redis, directly ----

/// A slot of a holder that never gives it back (its worker was killed) expires with the
/// visibility timeout; waiters get slots in the order they first asked; a rate window lets
/// `max` in. On a Redis of its own and on a Redis Cluster (the keys of a limit share a hash
/// tag).
async fn slots_expire_and_go_in_order(url: &str, prefix: &str) {
    let backend =
        Redis::builder(url).prefix(prefix).activity_visibility_timeout(Duration::from_secs(1)).connect().await.unwrap();
    assert_eq!(backend.slot_lease(), Duration::from_secs(1));
    assert!(backend.acquire_slot("work", 1, "dead").await.unwrap());
    let t0 = Instant::now();
    assert!(!backend.acquire_slot("work", 1, "first").await.unwrap());
    assert!(!backend.acquire_slot("work", 1, "second").await.unwrap());
    eventually("the dead holder's slot expires", async || {
        // Both keep asking; only the first in line may take it.
        assert!(!backend.acquire_slot("work", 1, "second").await.unwrap(), "the second in line went first");
        backend.acquire_slot("work", 1, "first").await.unwrap()
    })
    .await;
    assert!(t0.elapsed() >= Duration::from_millis(900), "expired after {:?}", t0.elapsed());
    assert!(!backend.acquire_slot("work", 1, "second").await.unwrap());
    // Renewed, it stays.
    assert!(backend.renew_slot("work", "first").await.unwrap());
    backend.release_slot("work", "first").await.unwrap();
    assert!(backend.acquire_slot("work", 1, "second").await.unwrap());
    backend.release_slot("work", "second").await.unwrap();
    // A window of a minute lets 2 in, then says how long until the oldest leaves it.
    let minute = Duration::from_secs(60);
    assert_eq!(backend.take_rate("mail/a.example", 2, minute, "a").await.unwrap(), None);
    assert_eq!(backend.take_rate("mail/a.example", 2, minute, "b").await.unwrap(), None);
    let wait = backend.take_rate("mail/a.example", 2, minute, "c").await.unwrap().unwrap();
    assert!(wait > Duration::from_secs(55) && wait <= minute, "{wait:?}");
    // Another key has its own window.
    assert_eq!(backend.take_rate("mail/b.example", 2, minute, "c").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_in_redis_expire_and_go_in_order() {
    let server = durable_test_support::redis_server::RedisServer::start();
    slots_expire_and_go_in_order(&server.url(), "durable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_in_a_redis_cluster_expire_and_go_in_order() {
    let cluster = tokio::task::spawn_blocking(durable_test_support::redis_cluster::RedisCluster::shared).await.unwrap();
    slots_expire_and_go_in_order(&cluster.url(), &run_name("flow")).await;
}

// ---- a waiting instance suspended, resumed, sent events ----

async fn a_waiting_instance_suspended_and_resumed_starts_with_its_events<B: TestBackend>(backend: B) {
    let worker = held_one_per_customer(&backend).await;
    let client = Client::new(backend.clone());
    let run = run_name("suspend");
    let order = |n| Order { run: run.clone(), customer: "same".into(), n };
    let waiting = |s: &durable::InstanceStatus| {
        s.runtime_status == RuntimeStatus::Pending && s.reason.as_deref().is_some_and(|r| r.contains("key \"same\""))
    };
    let first = client.start(held, order(1)).await.unwrap();
    wait_until(&client, &first, |s| s.runtime_status == RuntimeStatus::Running).await;
    // Suspended and resumed while it waits: it waits again.
    let second = client.start(held, order(2)).await.unwrap();
    wait_until(&client, &second, waiting).await;
    client.suspend(&second, "hold on").await.unwrap();
    wait_until(&client, &second, |s| s.runtime_status == RuntimeStatus::Suspended).await;
    client.resume(&second, "go on").await.unwrap();
    wait_until(&client, &second, waiting).await;
    // Its event waits with it.
    client.raise_event(&second, "go", "early").await.unwrap();
    // Suspended while waiting; the slot comes while it is suspended; resumed, it starts.
    let third = client.start(held, order(3)).await.unwrap();
    wait_until(&client, &third, waiting).await;
    client.suspend(&third, "hold on").await.unwrap();
    wait_until(&client, &third, |s| s.runtime_status == RuntimeStatus::Suspended).await;
    client.raise_event(&first, "go", "now").await.unwrap();
    let done = client.wait_for_completion(&second, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{done:?}");
    eventually("the third granted while suspended", async || {
        let s = client.status("@durable.limit@held/same").await.unwrap().unwrap();
        s.output.is_some_and(|o| o.contains(third.as_str()) && o.contains("\"waiters\":[]"))
    })
    .await;
    assert_eq!(client.status(&third).await.unwrap().unwrap().runtime_status, RuntimeStatus::Suspended);
    client.resume(&third, "go on").await.unwrap();
    wait_until(&client, &third, |s| s.runtime_status == RuntimeStatus::Running).await;
    client.raise_event(&third, "go", "now").await.unwrap();
    let done = client.wait_for_completion(&third, PATIENCE).await.unwrap();
    assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{done:?}");
    eventually("the semaphore idle", async || {
        client.status("@durable.limit@held/same").await.unwrap().is_none_or(|s| s.output.is_none())
    })
    .await;
    worker.shutdown().await.unwrap();
}

// ---- graceful shutdown while activities wait for a slot ----

/// Runs until its run is let go (`LET_GO`).
#[activity]
async fn blocking(run: String) -> Result<String, ActivityError> {
    let deadline = Instant::now() + PATIENCE;
    while !LET_GO.lock().unwrap().contains(&run) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(run)
}

static LET_GO: LazyLock<Mutex<Vec<String>>> = LazyLock::new(Default::default);

#[orchestrator]
async fn one_blocking(ctx: OrchestrationContext, run: String) -> Result<String, OrchestrationError> {
    Ok(ctx.call_activity(blocking, run).await?)
}

async fn blocking_worker(backend: &durable::backend::Memory, max: usize) -> WorkerHandle {
    Worker::builder(backend.clone())
        .orchestrator(one_blocking)
        .activity(blocking)
        .activity_concurrency(blocking, 1)
        .max_concurrent_activities(max)
        .shutdown_grace(Duration::from_secs(30))
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_shut_down_hands_back_at_once_the_activities_waiting_for_a_slot() {
    let backend = durable_test_support::backends::memory(Clock::Real);
    let client = Client::new(backend.clone());
    let run = run_name("shutdown");
    // The first worker runs the first activity, holding the only slot, and takes nothing more.
    let first_worker = blocking_worker(&backend, 1).await;
    let first = client.start(one_blocking, run.clone()).await.unwrap();
    eventually("the first activity running", async || {
        let mut m = String::new();
        durable::metrics::render(&mut m, None);
        m.contains("durable_activity_limit_running{activity=\"blocking\"} 1")
    })
    .await;
    // The second worker takes the second activity, which waits for the slot.
    let second_worker = blocking_worker(&backend, 8).await;
    let second = client.start(one_blocking, format!("{run}-2")).await.unwrap();
    eventually("the second activity waiting", async || {
        let mut m = String::new();
        durable::metrics::render(&mut m, None);
        m.contains("durable_activity_limit_waiting{activity=\"blocking\"} 1")
    })
    .await;
    // It is handed back at once, not after the shutdown grace of 30 s.
    let t0 = Instant::now();
    second_worker.shutdown().await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(10), "the shutdown took {:?}", t0.elapsed());
    // And runs on the first worker once the slot is free.
    LET_GO.lock().unwrap().extend([run.clone(), format!("{run}-2")]);
    assert_eq!(client.wait_for_completion(&first, PATIENCE).await.unwrap().output::<String>().unwrap(), run);
    let done = client.wait_for_completion(&second, PATIENCE).await.unwrap();
    assert_eq!(done.output::<String>().unwrap(), format!("{run}-2"));
    first_worker.shutdown().await.unwrap();
}

// ---- a waiting instance with a backlog of events ----

/// Counts `n` events `e`, then completes with their sum.
#[orchestrator]
async fn summing(ctx: OrchestrationContext, order: Order) -> Result<u32, OrchestrationError> {
    let mut sum = 0;
    for _ in 0..order.n {
        sum += ctx.wait_for_event::<u32>("e").await?;
    }
    Ok(sum)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_instance_behind_more_events_than_a_step_takes_starts_when_granted() {
    let server = durable_test_support::redis_server::RedisServer::start();
    let backend = Redis::builder(server.url()).prefix("backlog").max_messages_per_step(4).connect().await.unwrap();
    let limit = ConcurrencyLimit::per_key(1, |o: &Order| o.customer.clone()).unwrap();
    let worker =
        Worker::builder(backend.clone()).orchestrator(summing).concurrency_limit(summing, limit).start().await.unwrap();
    let client = Client::new(backend.clone());
    let run = run_name("backlog");
    let first = client.start(summing, Order { run: run.clone(), customer: "k".into(), n: 1 }).await.unwrap();
    wait_until(&client, &first, |s| s.runtime_status == RuntimeStatus::Running).await;
    let second = client.start(summing, Order { run: run.clone(), customer: "k".into(), n: 10 }).await.unwrap();
    wait_until(&client, &second, |s| s.runtime_status == RuntimeStatus::Pending && s.reason.is_some()).await;
    // Ten events wait with it, more than a step takes; then the slot comes, behind them.
    for i in 1..=10 {
        client.raise_event(&second, "e", i).await.unwrap();
    }
    client.raise_event(&first, "e", 7).await.unwrap();
    assert_eq!(client.wait_for_completion(&first, PATIENCE).await.unwrap().output::<u32>().unwrap(), 7);
    let done = client.wait_for_completion(&second, PATIENCE).await.unwrap();
    assert_eq!(done.output::<u32>().unwrap(), 55, "{done:?}");
    worker.shutdown().await.unwrap();
}
