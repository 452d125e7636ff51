//! Durable schedules on both backends, with the virtual clock: one run per fire time, named
//! after it; a time zone across a DST change; the overlap and catch-up policies; pause, resume,
//! delete and list; bad input refused where it is given.

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
