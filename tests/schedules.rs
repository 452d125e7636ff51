//! Durable schedules on both backends, with the virtual clock: one run per fire time, named
//! after it; a time zone across a DST change; the overlap and catch-up policies; pause, resume,
//! delete and list; bad input refused where it is given. And on a real `redis-server` with three
//! worker processes, a per-second schedule whose leader is killed with `kill -9` again and again
//! still starts exactly one run per fire time.
//!
//! The worker processes of that test are this test binary run again with `--ignored --exact
//! schedule_worker_process`.

use durable::prelude::*;
use durable::{Error, InstanceQuery, RuntimeStatus, ScheduleInfo, WorkerHandle};
use durable_test_support::backends::TestBackend;
use durable_test_support::wait::{PATIENCE, eventually, eventually_some};
use std::time::SystemTime;

/// A run: waits `minutes` (virtual) minutes, then returns its instance id.
#[orchestrator]
async fn job(ctx: OrchestrationContext, minutes: u64) -> Result<String, OrchestrationError> {
    if minutes > 0 {
        ctx.timer(Duration::from_secs(minutes * 60)).await?;
    }
    Ok(ctx.instance_id())
}

const HOUR: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);

async fn worker<B: TestBackend>(backend: &B) -> WorkerHandle {
    Worker::builder(backend.clone()).orchestrator(job).start().await.unwrap()
}

async fn info(client: &Client, id: &str) -> ScheduleInfo {
    client.schedule_info(id).await.unwrap().unwrap_or_else(|| panic!("no schedule {id}"))
}

/// The first fire time, once the schedule has taken its first step.
async fn first_fire(client: &Client, id: &str) -> SystemTime {
    eventually_some("the schedule's first step", async || info(client, id).await.next_fire).await
}

fn advance_to<B: TestBackend>(backend: &B, t: SystemTime) {
    let now = backend.time();
    if t > now {
        backend.advance(t.duration_since(now).unwrap());
    }
}

/// Move the clock to fire time `at` and wait until the schedule has dealt with it.
async fn fire<B: TestBackend>(backend: &B, client: &Client, id: &str, at: SystemTime) {
    advance_to(backend, at);
    eventually(&format!("schedule {id} past {at:?}"), async || {
        info(client, id).await.next_fire.is_some_and(|n| n > at)
    })
    .await;
}

/// The instance ids of the runs of schedule `id`, sorted.
async fn runs(client: &Client, id: &str) -> Vec<String> {
    let page = client.list(InstanceQuery::new().with_instance_id_prefix(format!("{id}@"))).await.unwrap();
    let mut ids: Vec<String> = page.instances.into_iter().map(|s| s.instance_id).collect();
    ids.sort();
    ids
}

fn run_id(id: &str, t: SystemTime) -> String {
    durable::schedule::run_instance_id(id, t)
}

/// Wait until run `run` exists and has taken its first step (its timer is set from the clock
/// as it is now).
async fn started(client: &Client, run: &str) -> durable::InstanceStatus {
    eventually_some(&format!("run {run} started"), async || {
        client.status(run).await.unwrap().filter(|s| s.runtime_status != RuntimeStatus::Pending)
    })
    .await
}

/// Wait until the runs of schedule `id` are `expected`.
async fn runs_are(client: &Client, id: &str, expected: &[String]) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let now = runs(client, id).await;
        if now == expected {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "runs of {id}: {now:?}, expected {expected:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn completed(client: &Client, run: &str) {
    started(client, run).await;
    let s = client.wait_for_completion(run, PATIENCE).await.unwrap();
    assert_eq!(s.runtime_status, RuntimeStatus::Completed, "{run}: {s:?}");
    assert_eq!(s.output::<String>().unwrap(), run);
}

/// Wait until run `run` of schedule `id` has completed and the schedule has seen it end (so
/// the next fire time does not find it still going).
async fn done(client: &Client, id: &str, run: &str) {
    completed(client, run).await;
    eventually(&format!("schedule {id} saw {run} end"), async || info(client, id).await.running.is_none()).await;
}

async fn an_hourly_schedule_starts_one_run_per_fire_time_named_after_it<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    let id = client.schedule("hourly", Schedule::cron("0 * * * *").unwrap(), job, 0).await.unwrap();
    assert_eq!(id, "hourly");
    let first = first_fire(&client, "hourly").await;
    let mut expected = Vec::new();
    for k in 0..5 {
        let at = first + HOUR * k;
        fire(&backend, &client, "hourly", at).await;
        let run = run_id("hourly", at);
        done(&client, "hourly", &run).await;
        expected.push(run);
        runs_are(&client, "hourly", &expected).await;
    }
    // The ids say the schedule and the fire time, on the hour, in UTC.
    assert!(expected[0].starts_with("hourly@") && expected[0].ends_with(":00:00Z"), "{}", expected[0]);
    // Between fire times nothing starts, and a second worker starts nothing twice.
    let w2 = worker(&backend).await;
    backend.advance(HOUR - MINUTE);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(runs(&client, "hourly").await.len(), 5);
    let at = first + HOUR * 5;
    fire(&backend, &client, "hourly", at).await;
    completed(&client, &run_id("hourly", at)).await;
    assert_eq!(runs(&client, "hourly").await.len(), 6);
    let i = info(&client, "hourly").await;
    assert_eq!((i.runs_started, i.skipped, i.status), (6, 0, RuntimeStatus::Running));
    assert_eq!(i.last_run.as_deref(), Some(run_id("hourly", at).as_str()));
    w2.shutdown().await.unwrap();
    w.shutdown().await.unwrap();
}

async fn a_long_schedule_continues_as_new_and_keeps_counting<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    client.schedule("often", Schedule::cron("*/10 * * * * *").unwrap(), job, 0).await.unwrap();
    let first = first_fire(&client, "often").await;
    for k in 0..45 {
        let at = first + Duration::from_secs(10) * k;
        fire(&backend, &client, "often", at).await;
        // Done before the next fire time (the default overlap policy skips otherwise).
        done(&client, "often", &run_id("often", at)).await;
    }
    eventually("45 runs", async || runs(&client, "often").await.len() == 45).await;
    let status = client.status("schedule:often").await.unwrap().unwrap();
    assert_eq!(status.runtime_status, RuntimeStatus::Running);
    let history = client.history("schedule:often").await.unwrap();
    assert!(history.len() < 200, "continue_as_new keeps the history short: {} events", history.len());
    assert_eq!(info(&client, "often").await.runs_started, 45);
    w.shutdown().await.unwrap();
}

/// The next spring-forward night in Paris after the backend's clock: (the day before, at
/// noon UTC; the night's date).
fn next_paris_spring_forward(now: SystemTime) -> (SystemTime, jiff::civil::Date) {
    let now = jiff::Timestamp::try_from(now).unwrap();
    let mut year = jiff::tz::TimeZone::UTC.to_datetime(now).year() + 1;
    loop {
        // The last Sunday of March.
        let mut d = jiff::civil::date(year, 3, 31);
        while d.weekday() != jiff::civil::Weekday::Sunday {
            d = d.yesterday().unwrap();
        }
        let eve = jiff::tz::TimeZone::UTC
            .to_ambiguous_timestamp(d.yesterday().unwrap().at(12, 0, 0, 0))
            .compatible()
            .unwrap();
        if eve > now {
            return (SystemTime::try_from(eve).unwrap(), d);
        }
        year += 1;
    }
}

fn utc(s: &str) -> SystemTime {
    SystemTime::try_from(s.parse::<jiff::Timestamp>().unwrap()).unwrap()
}

async fn a_schedule_in_paris_follows_daylight_saving_time<B: TestBackend>(backend: B) {
    let (eve, night) = next_paris_spring_forward(backend.time());
    advance_to(&backend, eve);
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    let every_night = Schedule::cron("30 2 * * *").unwrap().timezone("Europe/Paris").unwrap();
    client.schedule("paris", every_night, job, 0).await.unwrap();
    // 02:30 does not exist that night (02:00 -> 03:00): it fires at 03:30 CEST, 01:30 UTC.
    let first = first_fire(&client, "paris").await;
    assert_eq!(first, utc(&format!("{night}T01:30:00Z")));
    fire(&backend, &client, "paris", first).await;
    done(&client, "paris", &format!("paris@{night}T01:30:00Z")).await;
    // The next night, 02:30 CEST is 00:30 UTC.
    let second = info(&client, "paris").await.next_fire.unwrap();
    let next_day = night.tomorrow().unwrap();
    assert_eq!(second, utc(&format!("{next_day}T00:30:00Z")));
    fire(&backend, &client, "paris", second).await;
    runs_are(&client, "paris", &[format!("paris@{night}T01:30:00Z"), format!("paris@{next_day}T00:30:00Z")]).await;
    w.shutdown().await.unwrap();
}

/// Start an hourly schedule of runs lasting `minutes`, with `overlap`; return its first fire
/// time.
async fn overlapping(client: &Client, id: &str, overlap: OverlapPolicy, minutes: u64) -> SystemTime {
    let s = Schedule::cron("0 * * * *").unwrap().overlap(overlap);
    client.schedule(id, s, job, minutes).await.unwrap();
    first_fire(client, id).await
}

async fn overlap_skip_starts_nothing_while_a_run_is_going<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    let f = overlapping(&client, "skip", OverlapPolicy::Skip, 90).await;
    fire(&backend, &client, "skip", f).await; // run 0 starts: 0:00 - 1:30
    started(&client, &run_id("skip", f)).await;
    fire(&backend, &client, "skip", f + HOUR).await; // 1:00: run 0 is going: skipped
    assert_eq!(info(&client, "skip").await.running, Some(run_id("skip", f)));
    advance_to(&backend, f + HOUR + 30 * MINUTE);
    done(&client, "skip", &run_id("skip", f)).await;
    fire(&backend, &client, "skip", f + HOUR * 2).await; // 2:00: nothing going: runs
    runs_are(&client, "skip", &[run_id("skip", f), run_id("skip", f + HOUR * 2)]).await;
    let i = info(&client, "skip").await;
    assert_eq!((i.runs_started, i.skipped), (2, 1));
    w.shutdown().await.unwrap();
}

async fn overlap_buffer_one_starts_the_kept_fire_time_when_the_run_ends<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    let f = overlapping(&client, "buffer", OverlapPolicy::BufferOne, 80).await;
    fire(&backend, &client, "buffer", f).await; // run @0:00 goes 0:00 - 1:20
    started(&client, &run_id("buffer", f)).await;
    fire(&backend, &client, "buffer", f + HOUR).await; // @1:00 is kept
    assert_eq!(runs(&client, "buffer").await, [run_id("buffer", f)]);
    advance_to(&backend, f + HOUR + 20 * MINUTE); // run @0:00 ends: @1:00 starts (1:20 - 2:40)
    completed(&client, &run_id("buffer", f)).await;
    let late = run_id("buffer", f + HOUR);
    let late_status = started(&client, &late).await;
    assert_eq!(
        late_status.created_ms,
        durable::time::Millis::try_from(
            (f + HOUR + 20 * MINUTE).duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis()
        )
        .unwrap()
    );
    fire(&backend, &client, "buffer", f + HOUR * 2).await; // @2:00 is kept
    advance_to(&backend, f + HOUR * 2 + 40 * MINUTE); // @1:00 ends: @2:00 starts
    completed(&client, &late).await;
    runs_are(&client, "buffer", &[run_id("buffer", f), run_id("buffer", f + HOUR), run_id("buffer", f + HOUR * 2)])
        .await;
    w.shutdown().await.unwrap();
}

async fn overlap_allow_all_starts_every_fire_time<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    let f = overlapping(&client, "all", OverlapPolicy::AllowAll, 150).await;
    let ids = [run_id("all", f), run_id("all", f + HOUR), run_id("all", f + HOUR * 2)];
    for k in 0..3 {
        fire(&backend, &client, "all", f + HOUR * k).await;
        started(&client, &ids[k as usize]).await;
    }
    runs_are(&client, "all", &ids).await;
    for run in &ids {
        let s = client.status(run).await.unwrap().unwrap();
        assert_eq!(s.runtime_status, RuntimeStatus::Running, "three runs at once");
    }
    advance_to(&backend, f + HOUR * 5);
    for run in &ids {
        completed(&client, run).await;
    }
    w.shutdown().await.unwrap();
}

/// An hourly schedule with `catch_up`; the worker is down for five fire times and half an hour
/// more; checks that the runs started once a worker is back are those of the fire times
/// `expected` picks (by index), and that they complete.
async fn after_downtime<B: TestBackend>(backend: &B, id: &str, catch_up: CatchUpPolicy, expected: &[usize]) {
    let w = worker(backend).await;
    let client = Client::new(backend.clone());
    let s = Schedule::cron("0 * * * *").unwrap().catch_up(catch_up).overlap(OverlapPolicy::AllowAll);
    client.schedule(id, s, job, 0).await.unwrap();
    let f = first_fire(&client, id).await;
    w.shutdown().await.unwrap();
    advance_to(backend, f + HOUR * 4 + 30 * MINUTE);
    let w = worker(backend).await;
    eventually("the schedule catches up", async || info(&client, id).await.next_fire == Some(f + HOUR * 5)).await;
    let ids: Vec<String> = expected.iter().map(|&k| run_id(id, f + HOUR * k as u32)).collect();
    runs_are(&client, id, &ids).await;
    for run in &ids {
        completed(&client, run).await;
    }
    w.shutdown().await.unwrap();
}

async fn catch_up_run_last_runs_the_latest_missed_fire_time_once<B: TestBackend>(backend: B) {
    after_downtime(&backend, "last", CatchUpPolicy::RunLast, &[4]).await;
    let i = info(&Client::new(backend.clone()), "last").await;
    assert_eq!((i.runs_started, i.skipped), (1, 4));
}

async fn catch_up_skip_missed_runs_none_of_them<B: TestBackend>(backend: B) {
    after_downtime(&backend, "skipmissed", CatchUpPolicy::SkipMissed, &[]).await;
    let client = Client::new(backend.clone());
    assert_eq!(info(&client, "skipmissed").await.skipped, 5);
    // The next fire time, on time, runs.
    let w = worker(&backend).await;
    let next = info(&client, "skipmissed").await.next_fire.unwrap();
    fire(&backend, &client, "skipmissed", next).await;
    completed(&client, &run_id("skipmissed", next)).await;
    runs_are(&client, "skipmissed", &[run_id("skipmissed", next)]).await;
    w.shutdown().await.unwrap();
}

async fn catch_up_run_all_runs_those_within_the_window<B: TestBackend>(backend: B) {
    let window = CatchUpPolicy::RunAll { window: HOUR * 3 };
    // Now is 4:30 after the first fire time: 2:00, 3:00 and 4:00 are within three hours.
    after_downtime(&backend, "window", window, &[2, 3, 4]).await;
}

async fn pause_resume_delete_and_list<B: TestBackend>(backend: B) {
    let w = worker(&backend).await;
    let client = Client::new(backend.clone());
    client.schedule("a", Schedule::cron("0 * * * *").unwrap(), job, 0).await.unwrap();
    let nightly = Schedule::cron("0 2 * * *").unwrap().timezone("Europe/Paris").unwrap();
    client.schedule("b", nightly.clone(), job, 0).await.unwrap();
    let f = first_fire(&client, "a").await;
    first_fire(&client, "b").await;
    let list = client.list_schedules().await.unwrap();
    assert_eq!(list.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!((list[1].schedule.clone(), list[1].orchestrator.as_str()), (nightly, "job"));
    assert_eq!(list[1].input, serde_json::json!(0));
    assert!(!list[0].paused);

    // A schedule id in use is refused, with the id.
    let dup = client.schedule("a", Schedule::cron("* * * * *").unwrap(), job, 0).await.unwrap_err();
    assert!(matches!(&dup, Error::ScheduleAlreadyExists(id) if id == "a"), "{dup}");
    assert!(dup.to_string().contains("schedule \"a\" already exists"), "{dup}");

    client.pause_schedule("a").await.unwrap();
    eventually("paused", async || info(&client, "a").await.paused).await;
    advance_to(&backend, f + 10 * MINUTE);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(runs(&client, "a").await, Vec::<String>::new(), "a paused schedule starts nothing");
    client.resume_schedule("a").await.unwrap();
    // Resumed ten minutes late: the missed fire time runs (catch-up: run the last).
    fire(&backend, &client, "a", f).await;
    completed(&client, &run_id("a", f)).await;
    assert!(!info(&client, "a").await.paused);

    client.delete_schedule("a").await.unwrap();
    assert_eq!(client.schedule_info("a").await.unwrap(), None);
    assert_eq!(client.list_schedules().await.unwrap().len(), 1);
    assert!(matches!(client.pause_schedule("a").await, Err(Error::ScheduleNotFound(_))));
    assert!(matches!(client.delete_schedule("a").await, Err(Error::ScheduleNotFound(_))));
    // Its runs stay; its id is free again.
    assert_eq!(runs(&client, "a").await.len(), 1);
    client.schedule("a", Schedule::cron("0 * * * *").unwrap(), job, 0).await.unwrap();
    assert_eq!(client.list_schedules().await.unwrap().len(), 2);
    w.shutdown().await.unwrap();
}

durable_test_support::on_both_backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    an_hourly_schedule_starts_one_run_per_fire_time_named_after_it: Virtual,
    a_long_schedule_continues_as_new_and_keeps_counting: Virtual,
    a_schedule_in_paris_follows_daylight_saving_time: Virtual,
    overlap_skip_starts_nothing_while_a_run_is_going: Virtual,
    overlap_buffer_one_starts_the_kept_fire_time_when_the_run_ends: Virtual,
    overlap_allow_all_starts_every_fire_time: Virtual,
    catch_up_run_last_runs_the_latest_missed_fire_time_once: Virtual,
    catch_up_skip_missed_runs_none_of_them: Virtual,
    catch_up_run_all_runs_those_within_the_window: Virtual,
    pause_resume_delete_and_list: Virtual,
}

#[test]
fn bad_cron_expressions_and_time_zones_are_refused_naming_the_field() {
    let field = |e: Error| match e {
        Error::InvalidSchedule { field, reason } => (field, reason),
        other => panic!("{other}"),
    };
    let (f, why) = field(Schedule::cron("0 25 * * *").unwrap_err());
    assert_eq!(f, "hour");
    assert!(why.contains("25 is out of range 0-23"), "{why}");
    assert_eq!(field(Schedule::cron("0 0 * * MONDAY").unwrap_err()).0, "day-of-week");
    assert_eq!(field(Schedule::cron("0 0 * 13 *").unwrap_err()).0, "month");
    assert_eq!(field(Schedule::cron("every day").unwrap_err()).0, "expression");
    // Days that no month allowed has: it would never fire.
    let (f, why) = field(Schedule::cron("0 0 31 2 *").unwrap_err());
    assert_eq!(f, "day-of-month");
    assert!(why.contains("never"), "{why}");
    assert_eq!(field(Schedule::cron("0 0 31 4,6,9,11 *").unwrap_err()).0, "day-of-month");
    assert!(Schedule::cron("0 0 29 2 *").is_ok(), "leap years have it");
    assert!(Schedule::cron("0 0 31 2 MON").is_ok(), "Mondays of February");
    let (f, why) = field(Schedule::cron("0 2 * * *").unwrap().timezone("Europe/Pariss").unwrap_err());
    assert_eq!(f, "time zone");
    assert!(why.contains("Europe/Pariss"), "{why}");
    assert!(Schedule::cron("@daily").unwrap().timezone("America/New_York").is_ok());
}

#[tokio::test]
async fn bad_schedule_ids_are_refused() {
    let client = Client::new(durable::backend::Memory::new());
    let every = Schedule::cron("* * * * *").unwrap();
    for bad in ["", "tab\there", &"x".repeat(201)] {
        let e = client.schedule(bad, every.clone(), job, 0).await.unwrap_err();
        assert!(matches!(&e, Error::InvalidSchedule { field, .. } if field == "id"), "{e}");
    }
}

// ------------------------------------------------------------------ kill -9 of the leader

use durable::backend::Redis;
use durable_test_support::fixtures::{EXECUTION_LOG, logged};
use durable_test_support::history::check_history;
use durable_test_support::process::ChildProcess;
use durable_test_support::redis_server::RedisServer;
use std::collections::BTreeMap;

/// A run of the per-second schedule: one logged activity execution, keyed by the run's id.
#[orchestrator]
async fn tick(ctx: OrchestrationContext, _: ()) -> Result<String, OrchestrationError> {
    Ok(ctx.call_activity(logged, ctx.instance_id()).await?)
}

/// Short leases, so a killed leader's partition moves within a second or two.
async fn fault_backend(url: &str, prefix: &str) -> Redis {
    Redis::builder(url)
        .prefix(prefix)
        .lease_duration(Duration::from_secs(1))
        .activity_visibility_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap()
}

/// Not a test by itself: a worker process of
/// `a_schedule_fires_once_per_fire_time_while_its_leader_is_killed`; prints `READY <worker
/// id>` (the id its leases hold) and runs until killed.
#[test]
#[ignore = "run by the schedule fault test as a worker process"]
fn schedule_worker_process() {
    let Ok(url) = std::env::var("DURABLE_SCHEDULE_URL") else { return };
    let prefix = std::env::var("DURABLE_SCHEDULE_PREFIX").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let backend = fault_backend(&url, &prefix).await;
        let _w = Worker::builder(backend.clone()).orchestrator(tick).activity(logged).start().await.unwrap();
        println!("READY {}", backend.worker_id());
        std::future::pending::<()>().await;
    });
}

/// A worker process and its worker id.
struct WorkerProcess {
    id: String,
    process: ChildProcess,
}

fn spawn_schedule_worker(url: &str, prefix: &str, log: &std::path::Path) -> WorkerProcess {
    let process = ChildProcess::spawn(
        "schedule_worker_process",
        &[
            ("DURABLE_SCHEDULE_URL", url.to_string()),
            ("DURABLE_SCHEDULE_PREFIX", prefix.to_string()),
            (EXECUTION_LOG, log.display().to_string()),
        ],
    );
    let ready = process.expect_line("READY", PATIENCE);
    let id = ready.strip_prefix("READY ").expect("READY <worker id>").trim().to_string();
    WorkerProcess { id, process }
}

/// A small deterministic PRNG (xorshift), seeded from the clock and printed for reruns.
struct Rng(u64);
impl Rng {
    fn new() -> Self {
        let seed = std::env::var("DURABLE_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
        println!("fault test seed: DURABLE_FAULT_SEED={seed}");
        Self(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// How many times the leader is killed.
const KILLS: usize = 5;

/// A schedule firing every second, on a `redis-server` with an append-only file, run by three
/// worker processes. Five times, the worker holding the lease of the schedule's partition (the
/// one that steps it: its leader) is killed with `kill -9` around a fire time and replaced.
/// Catch-up `RunAll` and overlap `AllowAll` mean every fire time must run: the runs are one
/// per second from the first fire time on, none missing, none twice, each complete with a
/// history without duplicate, and each run's activity ran (at least once: a killed worker's
/// activity runs again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_once_per_fire_time_while_its_leader_is_killed() {
    let server = RedisServer::start_durable();
    let url = server.url();
    let prefix = "sched";
    let log = server.dir().join("executions.log");
    let mut rng = Rng::new();
    let began = std::time::Instant::now();
    let mut workers: Vec<WorkerProcess> = (0..3).map(|_| spawn_schedule_worker(&url, prefix, &log)).collect();
    let mut last_kill = SystemTime::UNIX_EPOCH;

    let backend = fault_backend(&url, prefix).await;
    let client = Client::new(backend.clone());
    let every_second = Schedule::cron("* * * * * *")
        .unwrap()
        .overlap(OverlapPolicy::AllowAll)
        .catch_up(CatchUpPolicy::RunAll { window: MINUTE });
    client.schedule("tick", every_second, tick, ()).await.unwrap();
    let lease_key = format!("{{{prefix}:p{}}}:lease", backend.partition_of("schedule:tick"));
    let first = first_fire(&client, "tick").await;

    for round in 0..KILLS {
        // Aim at the next fire time, from 200 ms before it to 300 ms after.
        let next = info(&client, "tick").await.next_fire.expect("a next fire time");
        let at = next - Duration::from_millis(200) + Duration::from_millis(rng.below(500));
        tokio::time::sleep(at.duration_since(SystemTime::now()).unwrap_or_default()).await;
        // The leader: the live worker whose id the partition's lease holds.
        let leader = eventually_some("a live worker holds the schedule's partition", async || {
            let holder = server.cli(&["GET", &lease_key]);
            workers.iter().position(|w| w.id == holder.trim())
        })
        .await;
        let victim = workers.remove(leader);
        victim.process.kill9();
        last_kill = SystemTime::now();
        let pending = info(&client, "tick").await.next_fire;
        println!("round {round}: killed the leader {} at {:?}; next fire {pending:?}", victim.id, began.elapsed());
        workers.push(spawn_schedule_worker(&url, prefix, &log));
        // A new leader deals with the fire times missed meanwhile and goes on.
        let after = SystemTime::now() + Duration::from_secs(1);
        eventually(&format!("round {round}: the schedule goes on"), async || {
            info(&client, "tick").await.next_fire.is_some_and(|n| n > after)
        })
        .await;
    }

    // Paused, it starts no run any more; then every run it started exists.
    client.pause_schedule("tick").await.unwrap();
    let paused =
        eventually_some("the schedule paused", async || Some(info(&client, "tick").await).filter(|i| i.paused)).await;
    let started = paused.runs_started as usize;
    eventually(&format!("{started} runs"), async || runs(&client, "tick").await.len() >= started).await;
    let got = runs(&client, "tick").await;
    let expected: Vec<String> =
        (0..started as u32).map(|k| run_id("tick", first + Duration::from_secs(1) * k)).collect();
    assert_eq!(got, expected, "one run per second from the first fire time, none missing, none twice");
    assert_eq!(paused.skipped, 0, "no fire time skipped");
    let last_fire = first + Duration::from_secs(1) * (started as u32).saturating_sub(1);
    assert!(last_fire > last_kill, "the runs go on past the last kill: {started} runs");
    let history = client.history("schedule:tick").await.unwrap();
    check_history("schedule:tick", &history);

    // Each run completes once, and its activity ran (at least once), and nothing else ran.
    let mut latest = Duration::ZERO;
    for (k, run) in got.iter().enumerate() {
        let done = client.wait_for_completion(run, PATIENCE).await.unwrap();
        let fire = first + Duration::from_secs(1) * k as u32;
        let created = SystemTime::UNIX_EPOCH + Duration::from_millis(done.created_ms);
        latest = latest.max(created.duration_since(fire).unwrap_or_default());
        assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{run}: {done:?}");
        assert_eq!(done.output::<String>().unwrap(), format!("done {run}"));
        check_history(run, &client.history(run).await.unwrap());
    }
    let log_text = std::fs::read_to_string(&log).unwrap();
    let mut executions: BTreeMap<&str, usize> = BTreeMap::new();
    for line in log_text.lines() {
        *executions.entry(line).or_default() += 1;
    }
    assert_eq!(executions.keys().copied().collect::<Vec<_>>(), got, "each run's activity ran, and only theirs");
    let again: usize = executions.values().map(|n| n - 1).sum();
    println!(
        "{started} runs through {KILLS} kills of the leader in {:?}; the latest started {latest:?} after its fire time; {again} activities ran again",
        began.elapsed()
    );
    client.delete_schedule("tick").await.unwrap();
}
