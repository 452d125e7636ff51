//! The built-in schedule orchestrator, `durable.schedule`: wait for the next fire time, apply
//! the catch-up and overlap policies, start the runs as sub-orchestrations named after their
//! fire times, and continue as new every few runs.

use super::cron::rfc3339;
use super::{CatchUpPolicy, OverlapPolicy, Schedule, ScheduleState, ScheduleStatus, run_id};
use crate::context::OrchestrationContext;
use crate::error::OrchestrationError;
use crate::task::{Either, Task};
use crate::time::{Millis, from_millis, to_millis};
use durable_macros::orchestrator;

/// Continue as new after this many fire times dealt with (when no run is in flight).
const FIRES_PER_EXECUTION: u32 = 20;

/// At most this many missed fire times are run by [`CatchUpPolicy::RunAll`] at once.
const MAX_CATCH_UP: usize = 1000;

#[orchestrator(name = "durable.schedule", crate = "durable_runtime")]
pub(crate) async fn durable_schedule(
    ctx: OrchestrationContext,
    state: ScheduleState,
) -> Result<(), OrchestrationError> {
    let mut state = state;
    if state.cursor.is_none() {
        state.cursor = Some(to_millis(ctx.now()));
    }
    let mut running: Option<Task<serde_json::Value>> = None;
    if let Some(f) = state.buffered.take() {
        running = Some(start_run(&ctx, &mut state, f));
        state.running = state.last_run.clone();
    }
    let mut fires = 0u32;
    loop {
        if fires >= FIRES_PER_EXECUTION && running.is_none() {
            ctx.continue_as_new(state);
            return Ok(());
        }
        let cursor = state.cursor.unwrap_or(0);
        let Some(next) = state.schedule.next_after_ms(cursor) else {
            set_status(&ctx, &state, None);
            return Ok(());
        };
        set_status(&ctx, &state, Some(next));
        let timer = ctx.timer_at(from_millis(next));
        let mut fired = true;
        if let Some(peek) = running.as_ref().map(|r| r.peek()) {
            let which = ctx.select(peek, timer).await;
            fired = matches!(which, Either::Right(_));
        } else {
            timer.await?;
        }
        if !fired {
            // The run in flight ended before the next fire time.
            run_ended(&ctx, &mut state, &mut running);
            continue;
        }
        // The timer fired, so it is at least `next` (a step's time can trail a timer's by a
        // hair on Redis; the fire time must not be missed for it).
        let now = to_millis(ctx.now()).max(next);
        let due = due_fire_times(&state.schedule, cursor, now);
        state.cursor = Some(due.last_fire.unwrap_or(next).max(next));
        state.skipped += due.skipped;
        for f in due.run {
            fires += 1;
            if running.as_ref().is_some_and(|r| ctx.is_completed(r)) {
                run_ended(&ctx, &mut state, &mut running);
            }
            if running.is_none() {
                running = Some(start_run(&ctx, &mut state, f));
                state.running = state.last_run.clone();
                continue;
            }
            match state.schedule.overlap {
                OverlapPolicy::Skip => state.skipped += 1,
                OverlapPolicy::BufferOne if state.buffered.is_none() => state.buffered = Some(f),
                OverlapPolicy::BufferOne => state.skipped += 1,
                OverlapPolicy::AllowAll => {
                    let detached = start_run(&ctx, &mut state, f);
                    ctx.release(detached);
                }
            }
        }
        if due.skipped > 0 {
            fires += 1;
        }
    }
}

/// The run in flight ended: consume its result, and start the buffered fire time's run.
fn run_ended(ctx: &OrchestrationContext, state: &mut ScheduleState, running: &mut Option<Task<serde_json::Value>>) {
    if let Some(done) = running.take() {
        ctx.release(done);
    }
    state.running = None;
    if let Some(f) = state.buffered.take() {
        *running = Some(start_run(ctx, state, f));
        state.running = state.last_run.clone();
    }
}

/// Start the run of fire time `fire` as a sub-orchestration named after it.
fn start_run(ctx: &OrchestrationContext, state: &mut ScheduleState, fire: Millis) -> Task<serde_json::Value> {
    let id = run_id(&state.id, fire);
    state.runs_started += 1;
    state.last_run = Some(id.clone());
    ctx.call_orchestrator_by_name::<_, serde_json::Value>(&state.orchestrator, state.input.clone()).with_instance_id(id)
}

fn set_status(ctx: &OrchestrationContext, state: &ScheduleState, next: Option<Millis>) {
    ctx.set_custom_status(ScheduleStatus {
        next_fire: next.map(rfc3339),
        next_fire_ms: next,
        last_run: state.last_run.clone(),
        running: state.running.clone(),
        runs_started: state.runs_started,
        skipped: state.skipped,
    });
}

struct Due {
    /// The fire times to run, oldest first.
    run: Vec<Millis>,
    /// How many fire times in `(cursor, now]` are not run.
    skipped: u64,
    /// The latest fire time at or before now.
    last_fire: Option<Millis>,
}

/// The fire times in `(cursor, now]` and which of them run under the catch-up policy.
fn due_fire_times(schedule: &Schedule, cursor: Millis, now: Millis) -> Due {
    let missed_after = Schedule::MISSED_AFTER.as_millis() as u64;
    let window = match schedule.catch_up {
        CatchUpPolicy::RunAll { window } => window.as_millis() as u64,
        _ => 0,
    };
    // Every fire time in (cursor, now], keeping the last MAX_CATCH_UP of them; after a long
    // downtime of a frequent cron (months of a per-second one), enumerate from a window that
    // widens until it holds a fire time instead, and count what lies before it as skipped
    // no more.
    let mut times = std::collections::VecDeque::new();
    let mut earlier = 0u64;
    let mut t = cursor;
    let mut steps = 0u32;
    while let Some(f) = schedule.next_after_ms(t) {
        if f > now {
            break;
        }
        steps += 1;
        if steps > 100_000 {
            earlier += times.len() as u64;
            times.clear();
            t = widening_start(schedule, cursor.max(t), now);
            steps = 0;
            continue;
        }
        times.push_back(f);
        if times.len() > MAX_CATCH_UP {
            times.pop_front();
            earlier += 1;
        }
        t = f;
    }
    let times: Vec<Millis> = times.into();
    let last_fire = times.last().copied();
    let run: Vec<Millis> = match schedule.catch_up {
        CatchUpPolicy::SkipMissed => last_fire.filter(|f| now - f <= missed_after).into_iter().collect(),
        CatchUpPolicy::RunLast => last_fire.into_iter().collect(),
        CatchUpPolicy::RunAll { .. } => times.iter().copied().filter(|f| now - f <= window.max(missed_after)).collect(),
    };
    let skipped = earlier + (times.len() - run.len()) as u64;
    Due { run, skipped, last_fire }
}

/// A start from which the fire times up to `now` are few: the latest of `now` less a minute,
/// an hour, a day, a month, a year that has a fire time after it (at least `from`).
fn widening_start(schedule: &Schedule, from: Millis, now: Millis) -> Millis {
    for back in [60_000, 3_600_000, 86_400_000, 32 * 86_400_000, 367 * 86_400_000] {
        let start = now.saturating_sub(back).max(from);
        if schedule.next_after_ms(start).is_some_and(|f| f <= now) {
            return start;
        }
    }
    from
}
