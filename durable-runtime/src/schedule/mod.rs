//! Durable schedules: start an orchestrator at each fire time of a cron expression in a time
//! zone, exactly once per fire time, with overlap and catch-up policies.
//!
//! ```no_run
//! # use durable_runtime::{Client, schedule::{Schedule, OverlapPolicy}};
//! # async fn demo(client: Client) -> Result<(), durable_runtime::Error> {
//! let every_night = Schedule::cron("0 2 * * *")?.timezone("Europe/Paris")?.overlap(OverlapPolicy::Skip);
//! client.schedule_by_name("nightly-report", every_night, "report", serde_json::json!({"to": "ops"})).await?;
//! # Ok(()) }
//! ```
//!
//! A schedule is an instance of the built-in orchestrator `durable.schedule` (every worker that
//! steps orchestrations registers it) with id `schedule:<id>`. It waits on a durable timer for
//! the next fire time, then starts each run as a sub-orchestration with instance id
//! `<id>@<fire time, RFC 3339 UTC>` (`nightly-report@2026-03-29T00:00:00Z`). A step of an
//! orchestration commits exactly once and an instance id is used once, so each fire time
//! starts at most one run, however many workers there are and across restarts. It continues
//! as new every few runs so its history stays short. Pausing suspends it (the timer fire waits;
//! on resume the catch-up policy decides what runs for the fire times missed meanwhile);
//! deleting terminates and purges it (runs in flight go on).

pub(crate) mod cron;
pub(crate) mod orchestrator;

use crate::error::Error;
use crate::time::{Millis, from_millis};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// The registered name of the built-in schedule orchestrator.
pub const SCHEDULE_ORCHESTRATOR: &str = "durable.schedule";
/// The prefix of a schedule's instance id: schedule `nightly` is instance `schedule:nightly`.
pub const SCHEDULE_ID_PREFIX: &str = "schedule:";

/// What to do at a fire time while the run started at an earlier one is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OverlapPolicy {
    /// Do not start a run for this fire time (the default).
    #[default]
    Skip,
    /// Keep this fire time (only one: later ones are skipped while it waits) and start its run
    /// as soon as the run in flight ends.
    BufferOne,
    /// Start the run anyway: runs may overlap.
    AllowAll,
}

/// What to do with the fire times missed while no worker ran the schedule (downtime, a paused
/// schedule, a timer that fired late). A fire time is missed when its timer fires more than
/// [`Schedule::MISSED_AFTER`] late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CatchUpPolicy {
    /// Run none of them: only a fire time whose timer fires on time starts a run.
    SkipMissed,
    /// Run the latest one, once (the default).
    #[default]
    RunLast,
    /// Run every fire time within `window` before now, oldest first.
    RunAll {
        /// How far back missed fire times are still run.
        window: Duration,
    },
}

/// When and how a schedule fires: a cron expression, a time zone and the policies. Checked
/// where it is built: [`Schedule::cron`] and [`Schedule::timezone`] refuse bad input with an
/// error naming the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    cron: String,
    timezone: String,
    #[serde(default)]
    overlap: OverlapPolicy,
    #[serde(default)]
    catch_up: CatchUpPolicy,
}

impl Schedule {
    /// How late a timer may fire before its fire time counts as missed
    /// ([`CatchUpPolicy`]): one minute.
    pub const MISSED_AFTER: Duration = Duration::from_secs(60);

    /// A schedule firing on cron expression `expr` (five fields, `minute hour day-of-month
    /// month day-of-week`, or six with seconds first; `@daily` and the like), in UTC until
    /// [`timezone`](Self::timezone) says otherwise.
    ///
    /// ```
    /// # use durable_runtime::schedule::Schedule;
    /// assert!(Schedule::cron("0 2 * * *").is_ok());
    /// let e = Schedule::cron("0 25 * * *").unwrap_err();
    /// assert_eq!(e.to_string(), "invalid schedule: the hour field of the cron expression \"0 25 * * *\" is wrong: `25`: 25 is out of range 0-23");
    /// ```
    pub fn cron(expr: &str) -> Result<Schedule, Error> {
        cron::Cron::parse(expr).map_err(|e| Error::InvalidSchedule {
            field: e.field.clone(),
            reason: format!("the {} field of the cron expression {expr:?} is wrong: {}", e.field, e.reason),
        })?;
        Ok(Schedule {
            cron: expr.trim().to_string(),
            timezone: "UTC".into(),
            overlap: OverlapPolicy::default(),
            catch_up: CatchUpPolicy::default(),
        })
    }

    /// Fire times are wall-clock times in this IANA time zone (`Europe/Paris`), with its DST
    /// rules: a time skipped when the clocks go forward fires at the instant they jump to, a
    /// time that happens twice when they go back fires once, the first time.
    pub fn timezone(mut self, name: &str) -> Result<Schedule, Error> {
        cron::time_zone(name).map_err(|e| Error::InvalidSchedule { field: e.field, reason: e.reason })?;
        self.timezone = name.to_string();
        Ok(self)
    }

    /// What to do when a fire time comes while the previous run is still going.
    pub fn overlap(mut self, policy: OverlapPolicy) -> Schedule {
        self.overlap = policy;
        self
    }

    /// What to do with fire times missed during downtime.
    pub fn catch_up(mut self, policy: CatchUpPolicy) -> Schedule {
        self.catch_up = policy;
        self
    }

    /// The cron expression.
    pub fn cron_expr(&self) -> &str {
        &self.cron
    }

    /// The time zone's name.
    pub fn timezone_name(&self) -> &str {
        &self.timezone
    }

    /// The overlap policy.
    pub fn overlap_policy(&self) -> OverlapPolicy {
        self.overlap
    }

    /// The catch-up policy.
    pub fn catch_up_policy(&self) -> CatchUpPolicy {
        self.catch_up
    }

    /// The first fire time strictly after `after` (`None` if there is none in the next 30
    /// years, e.g. `0 0 30 2 *`).
    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        self.next_after_ms(crate::time::to_millis(after)).map(from_millis)
    }

    pub(crate) fn next_after_ms(&self, after: Millis) -> Option<Millis> {
        let cron = cron::Cron::parse(&self.cron).ok()?;
        let tz = cron::time_zone(&self.timezone).ok()?;
        cron.next_after(&tz, after)
    }
}

/// A schedule as [`Client::list_schedules`](crate::Client::list_schedules) shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleInfo {
    /// The schedule's id (its instance is `schedule:<id>`).
    pub id: String,
    /// When and how it fires.
    pub schedule: Schedule,
    /// The orchestrator each run starts.
    pub orchestrator: String,
    /// The JSON input of each run.
    pub input: serde_json::Value,
    /// Paused ([`Client::pause_schedule`](crate::Client::pause_schedule)).
    pub paused: bool,
    /// The status of the schedule's instance (`Running` while it is active; `Failed` if it
    /// stopped on an error, which is in `error`).
    pub status: crate::instance::RuntimeStatus,
    /// The next fire time, as of the schedule's last step.
    pub next_fire: Option<SystemTime>,
    /// The instance id of the last run started.
    pub last_run: Option<String>,
    /// The run the overlap policy waits on (started and not yet seen to end by the schedule);
    /// `None` under [`OverlapPolicy::AllowAll`], which waits on none.
    pub running: Option<String>,
    /// Runs started so far.
    pub runs_started: u64,
    /// Fire times skipped by the overlap or catch-up policy so far.
    pub skipped: u64,
    /// Why the schedule's instance failed, if it did.
    pub error: Option<String>,
}

/// What the schedule orchestrator keeps in its input (across `continue_as_new`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ScheduleState {
    pub id: String,
    pub schedule: Schedule,
    pub orchestrator: String,
    pub input: serde_json::Value,
    /// The last fire time dealt with (run or skipped); `None` before the first step.
    #[serde(default)]
    pub cursor: Option<Millis>,
    /// A fire time buffered by [`OverlapPolicy::BufferOne`] (its run in flight is gone by the
    /// time the state is carried over, so it starts at once).
    #[serde(default)]
    pub buffered: Option<Millis>,
    #[serde(default)]
    pub runs_started: u64,
    #[serde(default)]
    pub skipped: u64,
    #[serde(default)]
    pub last_run: Option<String>,
    /// The run in flight the overlap policy waits on.
    #[serde(default)]
    pub running: Option<String>,
}

/// The custom status of a schedule's instance.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub(crate) struct ScheduleStatus {
    pub next_fire: Option<String>,
    pub next_fire_ms: Option<Millis>,
    pub last_run: Option<String>,
    #[serde(default)]
    pub running: Option<String>,
    pub runs_started: u64,
    pub skipped: u64,
}

/// The instance id of the run of schedule `id` at fire time `fire_ms`.
pub fn run_instance_id(id: &str, fire: SystemTime) -> String {
    run_id(id, crate::time::to_millis(fire))
}

pub(crate) fn run_id(id: &str, fire_ms: Millis) -> String {
    format!("{id}@{}", cron::rfc3339(fire_ms))
}

/// Check a schedule id: not empty, at most 200 bytes, no control characters.
pub(crate) fn check_id(id: &str) -> Result<(), Error> {
    let reason = if id.is_empty() {
        "it is empty"
    } else if id.len() > 200 {
        "it is over 200 bytes (a run's instance id adds its fire time)"
    } else if id.chars().any(char::is_control) {
        "it contains control characters"
    } else {
        return Ok(());
    };
    Err(Error::InvalidSchedule { field: "id".into(), reason: format!("the schedule id {id:?} is refused: {reason}") })
}

/// What [`ScheduleInfo`] is made from: an instance of the schedule orchestrator.
pub(crate) fn info_of(status: &crate::instance::InstanceStatus) -> Option<ScheduleInfo> {
    let state: ScheduleState = serde_json::from_str(&status.input).ok()?;
    let custom: ScheduleStatus =
        status.custom_status.as_deref().and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
    Some(ScheduleInfo {
        id: state.id,
        schedule: state.schedule,
        orchestrator: state.orchestrator,
        input: state.input,
        paused: status.runtime_status == crate::instance::RuntimeStatus::Suspended,
        status: status.runtime_status,
        next_fire: custom.next_fire_ms.map(from_millis),
        last_run: custom.last_run.or(state.last_run),
        running: if status.is_finished() { None } else { custom.running },
        runs_started: custom.runs_started.max(state.runs_started),
        skipped: custom.skipped.max(state.skipped),
        error: status.error.clone(),
    })
}
