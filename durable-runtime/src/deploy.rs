//! Knowing before a deploy: which orchestrator versions have instances in flight and where
//! they are suspended ([`Client::versions`]), and the in-flight instances as data
//! ([`Client::export_in_flight`]) that a CI job checks against new code
//! (`durable::testing::check_resume`).

use crate::client::Client;
use crate::engine::{Registry, ResumeCheck};
use crate::error::Error;
use crate::history::HistoryEvent;
use crate::ids::is_entity_instance;
use crate::instance::{InstanceQuery, InstanceStatus, RuntimeStatus};
use crate::orchestrator::Orchestrator;
use crate::payload;
use crate::state::Snapshot;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The in-flight instances of one orchestrator version.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSummary {
    /// The orchestrator's name.
    pub name: String,
    /// Its version (0: started by name, not yet run, so not yet bound to a version).
    pub version: u32,
    /// Instances not finished (pending, running, suspended).
    pub in_flight: u64,
    /// Of those, how many no registered code can run now (their status says why).
    pub blocked: u64,
    /// Where the suspended ones wait: suspension point key (with its source line) → count.
    pub suspended_at: BTreeMap<String, u64>,
}

/// One in-flight instance as data: its status, its snapshot (as stored, hex) and its history.
/// What `durable export --in-flight` writes, one JSON object per line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportedInstance {
    /// The status record (name, version, …).
    pub status: InstanceStatus,
    /// The snapshot's bytes in hex, if it has one.
    pub snapshot: Option<String>,
    /// The history.
    pub history: Vec<HistoryEvent>,
}

impl ExportedInstance {
    /// The snapshot's bytes.
    pub fn snapshot_bytes(&self) -> Result<Option<Vec<u8>>, Error> {
        self.snapshot.as_deref().map(from_hex).transpose()
    }
    /// Where it is suspended, with the source line, if it is.
    pub fn suspended_at(&self) -> Option<String> {
        suspension_point(self.snapshot_bytes().ok()??.as_slice())
    }
}

impl ExportedInstance {
    /// Whether the orchestrators of `registry` can resume this instance: what a worker with
    /// that code would decide (resume from the snapshot, or from the history replayed), or
    /// the reason it would give for not resuming it.
    pub fn check(&self, registry: &Registry) -> Result<ResumeCheck, String> {
        let snapshot = self.snapshot_bytes().map_err(|e| e.to_string())?;
        crate::engine::check_resume(registry, &self.status, snapshot.as_deref(), Some(&self.history))
    }
}

/// Whether this build's orchestrator `O` resumes an exported in-flight instance (one line of
/// `durable export --in-flight`, or [`ExportedInstance`] as JSON). `Err` is the reason a worker
/// would give for not resuming it: run this in CI over every exported instance before deploying.
pub fn check_resume<O: Orchestrator>(exported_json: &str) -> Result<ResumeCheck, String> {
    let e: ExportedInstance = serde_json::from_str(exported_json)
        .map_err(|err| format!("not an exported instance (a line of `durable export --in-flight`): {err}"))?;
    let mut registry = Registry::new();
    registry.register::<O>();
    e.check(&registry)
}

const IN_FLIGHT: [RuntimeStatus; 4] =
    [RuntimeStatus::Pending, RuntimeStatus::Running, RuntimeStatus::Suspended, RuntimeStatus::ContinuedAsNew];

impl Client {
    /// All in-flight (not finished) orchestration instances, optionally of one orchestrator.
    async fn in_flight(&self, name: Option<&str>) -> Result<Vec<InstanceStatus>, Error> {
        let mut out = Vec::new();
        let mut query = InstanceQuery { statuses: IN_FLIGHT.to_vec(), limit: Some(500), ..InstanceQuery::default() };
        query.name = name.map(str::to_string);
        loop {
            let page = self.list(query.clone()).await?;
            out.extend(page.instances.into_iter().filter(|s| !is_entity_instance(&s.instance_id)));
            match page.continuation {
                Some(c) => query.continuation = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// Per orchestrator name and version: how many instances are in flight, where they are
    /// suspended, and how many are blocked. Sorted by name, then version.
    pub async fn versions(&self) -> Result<Vec<VersionSummary>, Error> {
        let mut by: BTreeMap<(String, u32), VersionSummary> = BTreeMap::new();
        for s in self.in_flight(None).await? {
            let at = match self.backend().snapshot(&s.instance_id).await? {
                Some(bytes) => suspension_point(&bytes),
                None => None,
            };
            let e = by.entry((s.name.clone(), s.version)).or_insert_with(|| VersionSummary {
                name: s.name.clone(),
                version: s.version,
                ..VersionSummary::default()
            });
            e.in_flight += 1;
            e.blocked += u64::from(s.blocked);
            if let Some(at) = at {
                *e.suspended_at.entry(at).or_default() += 1;
            }
        }
        Ok(by.into_values().collect())
    }

    /// Every in-flight orchestration instance (optionally of one orchestrator) with its
    /// snapshot and history, to check new code against before deploying it.
    pub async fn export_in_flight(&self, name: Option<&str>) -> Result<Vec<ExportedInstance>, Error> {
        let mut out = Vec::new();
        for status in self.in_flight(name).await? {
            let snapshot = self.backend().snapshot(&status.instance_id).await?.map(|b| to_hex(&b));
            let history = self.history(&status.instance_id).await?;
            out.push(ExportedInstance { status, snapshot, history });
        }
        Ok(out)
    }
}

/// The suspension point of a stored snapshot: "`key` (line N)".
fn suspension_point(bytes: &[u8]) -> Option<String> {
    let s = Snapshot::from_bytes(bytes).ok()?;
    let st: payload::Snapshot = payload::from_state(&s.state).ok()?;
    Some(if st.line > 0 { format!("{} (line {})", st.at, st.line) } else { st.at })
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn from_hex(s: &str) -> Result<Vec<u8>, Error> {
    let bad = || Error::Payload(format!("an exported snapshot is not hex ({})", payload::abbreviate(s)));
    if !s.len().is_multiple_of(2) {
        return Err(bad());
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes().chunks(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect::<Option<Vec<u8>>>().ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&bytes)).unwrap(), bytes);
        assert!(from_hex("abc").is_err());
        assert!(from_hex("zz").is_err());
    }
}
