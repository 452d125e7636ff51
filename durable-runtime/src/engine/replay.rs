//! Rebuilding an instance's state from its history, checking that the code still does what the
//! history says it did.

use super::OrchestratorEntry;
use super::step::{Base, Outcome, event_message, failed_on_limit, run_step};
use crate::error::Error;
use crate::history::{EventKind, HistoryEvent};
use crate::messages::{Command, TaskMessage};
use crate::orchestrator::Orchestrator;
use crate::payload::abbreviate;
use crate::state::{OpenTask, RuntimeState, Snapshot};

/// What replaying a history gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Replayed {
    /// The snapshot after the last step, if the execution is suspended.
    pub snapshot: Option<Snapshot>,
    /// The event that ended the execution, if it ended.
    pub finished: Option<EventKind>,
    /// How many steps were replayed.
    pub steps: usize,
    pub(crate) before_last_step: Option<Snapshot>,
    pub(crate) last_step: Vec<EventKind>,
}

/// Replay a history through orchestrator `O` (see [`replay`]). Useful in tests: a history taken
/// from `Client::history` must replay without error through the current code.
pub fn replay_orchestrator<O: Orchestrator>(instance_id: &str, history: &[HistoryEvent]) -> Result<Replayed, Error> {
    replay(&OrchestratorEntry::of::<O>(), instance_id, history)
}

/// Rebuild an instance's snapshot from its history by feeding the recorded messages, step by
/// step, through the orchestrator, and compare what each step asks for (activities, timers,
/// events, sub-orchestrations, outcome) with what the history recorded. A difference is an
/// [`Error::Nondeterminism`] that names the first differing event.
pub fn replay(entry: &OrchestratorEntry, instance_id: &str, history: &[HistoryEvent]) -> Result<Replayed, Error> {
    let fail = |seq: u64, what: String| {
        Error::Nondeterminism(format!(
            "replaying instance {instance_id:?} through orchestrator `{}` failed at history event #{seq}: {what}; \
             the orchestrator's code changed since this history was written, or it is not deterministic \
             (it must not read the clock, random numbers, the environment or I/O except through `ctx` and activities)",
            entry.name
        ))
    };
    let Some(first) = history.first() else {
        return Err(fail(0, "the history is empty".into()));
    };
    let EventKind::ExecutionStarted { name, input, .. } = &first.kind else {
        return Err(fail(first.seq, format!("the history starts with {:?}, not ExecutionStarted", first.kind)));
    };
    if name != entry.name {
        return Err(fail(first.seq, format!("the history is of orchestrator `{name}`")));
    }
    let mut state: Option<Snapshot> = None;
    let mut out = Replayed { snapshot: None, finished: None, steps: 0, before_last_step: None, last_step: Vec::new() };
    let mut prelude_base: Option<(Option<Snapshot>, Vec<Command>)> = None;
    let mut i = 1;
    while i < history.len() {
        let ev = &history[i];
        match &ev.kind {
            EventKind::OrchestratorStarted => {
                let mut j = i + 1;
                while j < history.len() && !is_boundary(&history[j].kind) {
                    j += 1;
                }
                let group = &history[i + 1..j];
                if out.finished.is_some() {
                    return Err(fail(ev.seq, "a step is recorded after the execution ended".into()));
                }
                let messages: Vec<TaskMessage> = group.iter().filter_map(|e| event_message(&e.kind)).collect();
                let (from, prelude) = match prelude_base.take() {
                    Some((s, p)) => (s, p),
                    None => (state.clone(), Vec::new()),
                };
                let base = || match &from {
                    Some(s) => Base::Resume(s),
                    None => Base::Start { input, runtime: RuntimeState::default() },
                };
                let recorded: Vec<EventKind> = group.iter().map(|e| e.kind.clone()).collect();
                // Payloads are not limited when replaying, except in a step that failed for a
                // payload over the limit: it is replayed with that limit, to fail the same way.
                let mut run =
                    run_step(entry, instance_id, ev.timestamp_ms, base(), &messages, prelude.clone(), usize::MAX);
                if let Some(limit) = failed_on_limit(&recorded)
                    && run.as_ref().map(|r| &r.events) != Some(&recorded)
                {
                    run = run_step(entry, instance_id, ev.timestamp_ms, base(), &messages, prelude, limit);
                }
                let produced = run.as_ref().map(|r| r.events.clone()).unwrap_or_default();
                for (k, recorded) in group.iter().enumerate() {
                    match produced.get(k) {
                        Some(p) if *p == recorded.kind => {}
                        Some(p) => {
                            return Err(fail(
                                recorded.seq,
                                format!(
                                    "the history records {} but the code now produces {}",
                                    show(&recorded.kind),
                                    show(p)
                                ),
                            ));
                        }
                        None => {
                            return Err(fail(
                                recorded.seq,
                                format!(
                                    "the history records {} but the code now produces nothing more in this step",
                                    show(&recorded.kind)
                                ),
                            ));
                        }
                    }
                }
                if let Some(extra) = produced.get(group.len()) {
                    let seq = group.last().map_or(ev.seq, |e| e.seq);
                    return Err(fail(seq, format!("after this event the code now also produces {}", show(extra))));
                }
                out.before_last_step = from.clone();
                out.last_step = recorded;
                out.steps += 1;
                match run.map(|r| r.outcome) {
                    None => state = from,
                    Some(Outcome::Suspended(s)) => state = Some(s),
                    Some(Outcome::Blocked(msg)) => return Err(fail(ev.seq, msg)),
                    Some(_) => {
                        state = None;
                        out.finished = group.last().map(|e| e.kind.clone()).filter(|k| k.is_terminal());
                    }
                }
                i = j;
                continue;
            }
            EventKind::ExecutionRewound { .. } => {
                if !matches!(out.finished, Some(EventKind::ExecutionFailed { .. })) {
                    return Err(fail(ev.seq, "a rewind is recorded but the execution had not failed".into()));
                }
                let prep = rewind_prepare(out.before_last_step.as_ref(), &out.last_step);
                prelude_base = Some((prep.base, prep.prelude));
                out.finished = None;
            }
            EventKind::ExecutionTerminated { .. } => {
                state = None;
                out.finished = Some(ev.kind.clone());
            }
            EventKind::ExecutionSuspended { .. } | EventKind::ExecutionResumed { .. } => {}
            other => {
                return Err(fail(ev.seq, format!("{} is recorded outside of a step", show(other))));
            }
        }
        i += 1;
    }
    out.snapshot = state;
    Ok(out)
}

fn is_boundary(k: &EventKind) -> bool {
    matches!(
        k,
        EventKind::OrchestratorStarted
            | EventKind::ExecutionSuspended { .. }
            | EventKind::ExecutionResumed { .. }
            | EventKind::ExecutionRewound { .. }
            | EventKind::ExecutionTerminated { .. }
    )
}

fn show(k: &EventKind) -> String {
    abbreviate(&format!("{k:?}"))
}

/// How to run a failed execution's last step again.
pub(crate) struct RewindPrep {
    /// The state before the failed step (`None`: the failed step was the first).
    pub base: Option<Snapshot>,
    /// Commands that schedule the failed activities again.
    pub prelude: Vec<Command>,
    /// The failed step's messages other than the failures, to deliver again.
    pub requeue: Vec<TaskMessage>,
    /// Child instances whose failure failed the step: they are rewound too.
    pub child_rewinds: Vec<String>,
}

/// Prepare a rewind: go back to the state before the failed step, and make the tasks whose
/// final failure it delivered open again (activities scheduled again with the next attempt
/// number; sub-orchestrations rewound).
pub(crate) fn rewind_prepare(before: Option<&Snapshot>, failed_step: &[EventKind]) -> RewindPrep {
    let retried =
        |id: u64| failed_step.iter().any(|e| matches!(e, EventKind::TaskRetryScheduled { id: r, .. } if *r == id));
    let mut failed = Vec::new();
    let mut requeue = Vec::new();
    for e in failed_step {
        match e {
            EventKind::TaskFailed { id, .. } if !retried(*id) => failed.push(*id),
            EventKind::SubOrchestrationFailed { id, .. } => failed.push(*id),
            _ => {
                if let Some(m) = event_message(e) {
                    requeue.push(m);
                }
            }
        }
    }
    let mut base = before.cloned();
    let mut prelude = Vec::new();
    let mut child_rewinds = Vec::new();
    if let Some(s) = base.as_mut() {
        for id in failed {
            match s.runtime.open.get_mut(&id) {
                Some(OpenTask::Activity { name, input, attempt, waiting_retry, .. }) => {
                    *attempt += 1;
                    *waiting_retry = false;
                    prelude.push(Command::ScheduleActivity {
                        id,
                        name: name.clone(),
                        input: input.clone(),
                        attempt: *attempt,
                    });
                }
                Some(OpenTask::SubOrchestration { instance_id, .. }) => child_rewinds.push(instance_id.clone()),
                _ => {}
            }
        }
    }
    RewindPrep { base, prelude, requeue, child_rewinds }
}
