//! Which code resumes a suspended instance, and from which state.
//!
//! The instance's own version first, then newer registered versions, lowest first:
//! 1. the snapshot, when the code that wrote it is here (same version, same fingerprint), or
//!    when the code here still has the snapshot's suspension point with the same live locals
//!    (the generated step function checks the point's key, the locals' names and their types
//!    before any user code runs);
//! 2. otherwise the history, replayed through the code: if it reproduces the recorded events,
//!    the replayed state is used (the rule of Durable Functions);
//! 3. otherwise no code here can resume it: the reason says, per version, what changed and
//!    what to deploy. Never resumed wrongly.

use super::registry::{OrchestratorEntry, Registry};
use super::replay::{Replayed, replay};
use super::step::panic_message;
use crate::context::OrchestrationContext;
use crate::history::HistoryEvent;
use crate::instance::InstanceStatus;
use crate::orchestrator::{StepInput, StepResult};
use crate::state::Snapshot;
use crate::time::Millis;
use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What [`choose`] looks at.
pub(super) struct Resume<'a> {
    pub registry: &'a Registry,
    pub instance_id: &'a str,
    pub status: &'a InstanceStatus,
    pub snapshot: Option<&'a Snapshot>,
    /// Why the stored snapshot could not be decoded, if it could not.
    pub unreadable: Option<&'a str>,
    pub history: Option<&'a [HistoryEvent]>,
    pub now: Millis,
}

/// The code and state to resume from.
pub(super) struct Chosen<'a> {
    pub entry: OrchestratorEntry,
    pub snapshot: Cow<'a, Snapshot>,
    /// The state was rebuilt by replaying the history.
    pub by_replay: bool,
}

/// Choose the registered code and the state to resume an instance from, or say why none can.
pub(super) fn choose<'a>(r: &Resume<'a>) -> Result<Chosen<'a>, String> {
    let name = r.status.name.as_str();
    let own = r.status.version;
    let mut candidates: Vec<OrchestratorEntry> = r.registry.get_version(name, own).copied().into_iter().collect();
    candidates.extend(r.registry.versions(name).into_iter().filter(|e| e.version > own).copied());
    if candidates.is_empty() {
        return Err(format!(
            "it runs on version {own} of orchestrator `{name}`, which is not registered on this worker (it registers \
             versions {}); register `#[orchestrator(name = \"{name}\", version = {own})]` (the code that started it) on a \
             worker: the instance waits and resumes then",
            r.registry.known_versions(name)
        ));
    }
    let mut why = Vec::new();
    if let Some(e) = r.unreadable {
        why.push(format!("its snapshot cannot be read: {e}"));
    }
    if let Some(s) = r.snapshot {
        for entry in &candidates {
            match probe(entry, r.instance_id, r.now, s) {
                Ok(()) => return Ok(Chosen { entry: *entry, snapshot: Cow::Borrowed(s), by_replay: false }),
                Err(e) => why.push(format!("version {}: {e}", entry.version)),
            }
        }
    } else if r.unreadable.is_none() {
        why.push("its snapshot is missing".to_string());
    }
    match r.history {
        Some(history) => {
            for entry in &candidates {
                match replay(entry, r.instance_id, history) {
                    Ok(Replayed { snapshot: Some(s), .. }) => {
                        return Ok(Chosen { entry: *entry, snapshot: Cow::Owned(s), by_replay: true });
                    }
                    Ok(_) => why.push(format!(
                        "replaying its history through version {} does not end suspended",
                        entry.version
                    )),
                    Err(e) => why.push(format!("replaying its history through version {}: {e}", entry.version)),
                }
            }
        }
        None => why.push("its history was not loaded here; it is replayed at the next retry".to_string()),
    }
    let written_by = r.snapshot.map_or(own, |s| s.version);
    Err(format!(
        "no code registered on this worker can resume it (orchestrator `{name}`, versions {}): {}. Deploy code that can: \
         register the code that wrote its state (`#[orchestrator(name = \"{name}\", version = {written_by})]` with the \
         old body) beside the new version, or undo the change; the instance waits and resumes as soon as a worker runs \
         matching code",
        candidates.iter().map(|e| e.version.to_string()).collect::<Vec<_>>().join(", "),
        why.join("; ")
    ))
}

/// Run `entry`'s step function on snapshot `s` without delivering anything: `Err` with the
/// reason if it refuses the snapshot (another suspension point, other live locals or types).
/// Pure: what the step asks for is dropped.
fn probe(entry: &OrchestratorEntry, instance_id: &str, now: Millis, s: &Snapshot) -> Result<(), String> {
    let ctx = OrchestrationContext::new(instance_id, now, s.runtime.clone());
    match catch_unwind(AssertUnwindSafe(|| (entry.step)(&ctx, StepInput::Resume(&s.state)))) {
        Ok(StepResult::BadState(e)) => Err(e),
        Ok(_) => Ok(()),
        // The code resumed and then panicked: it can read the state; the panic is the
        // orchestrator's own, and the real step reports it.
        Err(p) => {
            let _ = panic_message(p.as_ref());
            Ok(())
        }
    }
}

/// Whether the code in a registry can resume an instance: what [`check_resume`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeCheck {
    /// The orchestrator version that would resume it.
    pub version: u32,
    /// It resumes from its history, replayed (the snapshot itself was not readable by the
    /// code).
    pub by_replay: bool,
}

/// Whether the orchestrators in `registry` can resume an instance with this status, snapshot
/// (as stored) and history (if known) — what a worker would decide, without running anything.
/// `Err` is the reason a worker would put in the instance's status.
pub fn check_resume(
    registry: &Registry,
    status: &InstanceStatus,
    snapshot: Option<&[u8]>,
    history: Option<&[HistoryEvent]>,
) -> Result<ResumeCheck, String> {
    let decoded = snapshot.map(Snapshot::from_bytes).transpose().map_err(|e| e.to_string());
    let (snapshot, unreadable) = match &decoded {
        Ok(s) => (s.as_ref(), None),
        Err(e) => (None, Some(e.as_str())),
    };
    let now = status.updated_ms;
    let r = Resume { registry, instance_id: &status.instance_id, status, snapshot, unreadable, history, now };
    choose(&r).map(|c| ResumeCheck { version: c.entry.version, by_replay: c.by_replay })
}
