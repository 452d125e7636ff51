//! A `tracing` subscriber that keeps the runtime's spans (`durable.*`) in memory with their
//! fields, so tests can check the trace structure the runtime records (`trace_id`, `span_id`,
//! `parent_span_id`) without OpenTelemetry; spans travel between processes as JSON lines.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// One captured span.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapturedSpan {
    /// Its name (`durable.step`, …).
    pub name: String,
    /// Its fields, as text.
    pub fields: BTreeMap<String, String>,
    /// The process that recorded it.
    pub pid: u32,
    /// When it was created and last closed, in µs since the Unix epoch.
    pub start_us: u64,
    /// When its last handle was dropped (0 while open).
    pub end_us: u64,
}

impl CapturedSpan {
    /// Field `name`, if recorded.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
    /// Its `trace_id` field.
    pub fn trace_id(&self) -> Option<&str> {
        self.get("trace_id")
    }
    /// Its `span_id` field.
    pub fn span_id(&self) -> Option<&str> {
        self.get("span_id")
    }
    /// Its `parent_span_id` field.
    pub fn parent_span_id(&self) -> Option<&str> {
        self.get("parent_span_id")
    }
    /// As one JSON line.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a span serializes")
    }
    /// From a JSON line written by [`to_json_line`](Self::to_json_line).
    pub fn from_json_line(line: &str) -> Option<Self> {
        serde_json::from_str(line).ok()
    }
}

static SPANS: Mutex<Vec<CapturedSpan>> = Mutex::new(Vec::new());

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }
}

/// The subscriber: keeps spans whose name starts with `durable.`, at every level.
struct Capture;

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_span() && metadata.name().starts_with("durable.")
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = BTreeMap::new();
        span.record(&mut Fields(&mut fields));
        let mut spans = SPANS.lock().unwrap_or_else(|p| p.into_inner());
        spans.push(CapturedSpan {
            name: span.metadata().name().to_string(),
            fields,
            pid: std::process::id(),
            start_us: now_us(),
            end_us: 0,
        });
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut spans = SPANS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = spans.get_mut(span.into_u64() as usize - 1) {
            values.record(&mut Fields(&mut s.fields));
        }
    }
    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
    fn event(&self, _event: &Event<'_>) {}
    fn enter(&self, _span: &Id) {}
    fn exit(&self, _span: &Id) {}
    fn try_close(&self, id: Id) -> bool {
        let mut spans = SPANS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = spans.get_mut(id.into_u64() as usize - 1) {
            s.end_us = now_us();
        }
        false
    }
}

/// Install the capturing subscriber as this process's global default (once).
pub fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| tracing::subscriber::set_global_default(Capture).expect("no other global subscriber"));
}

/// The spans captured so far in this process.
pub fn captured() -> Vec<CapturedSpan> {
    SPANS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// One trace as an indented tree, children under their parent in start order, each line
/// `name  key=value …  +start ms (duration ms) [pid]`, times from the trace's first span.
pub fn render_tree(spans: &[CapturedSpan], trace_id: &str, shown: &[&str]) -> String {
    let mine: Vec<&CapturedSpan> = spans.iter().filter(|s| s.trace_id() == Some(trace_id)).collect();
    let t0 = mine.iter().map(|s| s.start_us).min().unwrap_or(0);
    let ids: Vec<&str> = mine.iter().filter_map(|s| s.span_id()).collect();
    let mut out = String::new();
    fn walk(
        out: &mut String,
        all: &[&CapturedSpan],
        parent: Option<&str>,
        ids: &[&str],
        depth: usize,
        t0: u64,
        shown: &[&str],
    ) {
        let mut children: Vec<&&CapturedSpan> = all
            .iter()
            .filter(|s| match parent {
                Some(p) => s.parent_span_id() == Some(p),
                None => s.parent_span_id().is_none_or(|p| !ids.contains(&p)),
            })
            .collect();
        children.sort_by_key(|s| s.start_us);
        for s in children {
            let _ = write!(out, "{}{}", "  ".repeat(depth), s.name);
            for k in shown {
                if let Some(v) = s.get(k) {
                    let _ = write!(out, " {k}={v}");
                }
            }
            let start = s.start_us.saturating_sub(t0) as f64 / 1e3;
            let took = s.end_us.saturating_sub(s.start_us) as f64 / 1e3;
            let _ = writeln!(out, "  +{start:.1}ms ({took:.1}ms) [pid {}]", s.pid);
            walk(out, all, s.span_id(), ids, depth + 1, t0, shown);
        }
    }
    walk(&mut out, &mine, None, &ids, 0, t0, shown);
    out
}
