//! Checking a history after a fault: no event lost or doubled.

use durable::{EventKind, HistoryEvent};
use std::collections::HashSet;

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
