//! Checking a history after a fault: no event lost or doubled.

use crate::fixtures::{self, hello};
use durable::engine::replay_orchestrator;
use durable::{Client, EventKind, HistoryEvent, RuntimeStatus};
use std::collections::HashSet;
use std::time::Duration;

/// No event twice: contiguous sequence numbers, one start, each task scheduled and finished
/// once. Panics naming instance `id` and showing the history otherwise.
pub fn check_history(id: &str, history: &[HistoryEvent]) {
    let mut started = 0;
    let mut scheduled = HashSet::new();
    let mut finished = HashSet::new();
    for (i, e) in history.iter().enumerate() {
        assert_eq!(e.seq, i as u64, "{id}: history sequence has a gap or a duplicate: {history:?}");
        match &e.kind {
            EventKind::ExecutionStarted { .. } => started += 1,
            EventKind::TaskScheduled { id: t, .. } | EventKind::SubOrchestrationCreated { id: t, .. } => {
                assert!(scheduled.insert(*t), "{id}: task {t} scheduled twice: {history:?}")
            }
            EventKind::TaskCompleted { id: t, .. }
            | EventKind::TaskFailed { id: t, .. }
            | EventKind::SubOrchestrationCompleted { id: t, .. }
            | EventKind::SubOrchestrationFailed { id: t, .. } => {
                assert!(finished.insert(*t), "{id}: task {t} finished twice: {history:?}")
            }
            _ => {}
        }
    }
    assert_eq!(started, 1, "{id}: {history:?}");
}

/// Wait for each `(id, parent, cities)` of the fault tests' workload — [`fixtures::parent`] when
/// `parent`, else [`hello`] (whose child a parent starts) — to complete within `timeout` in
/// all: the right output, a history without gap or duplicate that replays (its child's too).
pub async fn check_all_completed(client: &Client, expected: &[(String, bool, Vec<String>)], timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    for (id, parent, cities) in expected {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let done = client.wait_for_completion(id, left).await.unwrap();
        assert_eq!(done.runtime_status, RuntimeStatus::Completed, "{id}: {done:?}");
        let greetings: Vec<String> = cities.iter().map(|c| format!("Hello {c}!")).collect();
        let history = client.history(id).await.unwrap();
        check_history(id, &history);
        if *parent {
            assert_eq!(done.output::<String>().unwrap(), greetings.join(" "));
            replay_orchestrator::<fixtures::parent>(id, &history).unwrap();
            let child = format!("{id}:0");
            let child_history = client.history(&child).await.unwrap();
            check_history(&child, &child_history);
            replay_orchestrator::<hello>(&child, &child_history).unwrap();
        } else {
            assert_eq!(done.output::<Vec<String>>().unwrap(), greetings);
            replay_orchestrator::<hello>(id, &history).unwrap();
        }
    }
}
