//! What the commands print: aligned tables for people, the HTTP API's JSON shapes for scripts.

use durable_http::render;
use durable_runtime::backend::DeadLetter;
use durable_runtime::client::EntityStatus;
use durable_runtime::{EntityJournalEntry, ExportedInstance, HistoryEvent, InstanceStatus, VersionSummary};
use serde_json::{Value, json};
use std::io::Write;

/// Where results go (stdout), and in which form.
pub struct Out {
    /// JSON instead of tables.
    pub json: bool,
}

/// A cell at most this many characters wide in tables (longer ones end in `…`).
const MAX_CELL: usize = 60;

impl Out {
    /// One line.
    pub fn line(&self, s: &str) {
        println!("{s}");
    }

    /// One JSON value, pretty-printed.
    pub fn value(&self, v: &Value) {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
    }

    /// `export`: one `ExportedInstance` as compact JSON a line, whatever `--json` says (what
    /// `durable::testing::check_resume` reads); stops at the first write that fails.
    pub fn exported(&self, items: &[ExportedInstance]) -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(std::io::stdout().lock());
        for item in items {
            serde_json::to_writer(&mut w, item)?;
            w.write_all(b"\n")?;
        }
        w.flush()
    }

    /// A control command was accepted.
    pub fn done(&self, id: &str, action: &str, text: &str) {
        if self.json {
            self.value(&json!({ "instanceId": id, "action": action, "accepted": true }));
        } else {
            self.line(text);
        }
    }

    /// `status`: the status, and the live state of a running instance.
    pub fn status(&self, s: &InstanceStatus, state: Option<Value>) {
        let mut v = render::status(s, true);
        v["state"] = state.clone().unwrap_or(Value::Null);
        if self.json {
            return self.value(&v);
        }
        let mut rows: Vec<(&str, String)> = vec![
            ("instance", s.instance_id.clone()),
            ("name", s.name.clone()),
            ("version", version(s.version)),
            ("status", s.runtime_status.to_string()),
            ("created", time(s.created_ms)),
            ("updated", time(s.updated_ms)),
            ("input", compact(&v["input"])),
        ];
        for (label, key) in [("output", "output"), ("custom status", "customStatus")] {
            if !v[key].is_null() {
                rows.push((label, compact(&v[key])));
            }
        }
        if let Some(e) = &s.error {
            rows.push(("error", e.clone()));
        }
        if s.blocked {
            rows.push(("blocked", "yes: no registered code can run it now (the reason says why)".to_string()));
        }
        if let Some(r) = s.reason.as_deref().filter(|r| !r.is_empty()) {
            rows.push(("reason", r.to_string()));
        }
        if let Some(p) = &s.parent {
            rows.push(("parent", p.instance_id.clone()));
        }
        if let Some(st) = &state {
            rows.push(("suspended at", format!("{} (pc {})", str_of(&st["at"]), compact(&st["pc"]))));
            if let Some(locals) = st["locals"].as_object() {
                for (k, val) in locals {
                    rows.push(("", format!("{k} = {}", compact(val))));
                }
            }
        }
        let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, val) in rows {
            println!("{k:<w$}  {val}");
        }
    }

    /// `history`.
    pub fn history(&self, h: &[HistoryEvent]) {
        let events: Vec<Value> = h.iter().map(render::history_event).collect();
        if self.json {
            return self.value(&Value::Array(events));
        }
        let rows = h
            .iter()
            .zip(&events)
            .map(|(e, v)| {
                let kind = str_of(&v["eventType"]);
                let details = v
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter(|(k, _)| !matches!(k.as_str(), "seq" | "timestamp" | "eventType"))
                            .map(|(k, val)| format!("{k}={}", compact(val)))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                vec![e.seq.to_string(), time(e.timestamp_ms), kind, details]
            })
            .collect();
        table(&["SEQ", "TIME", "EVENT", "DETAILS"], rows);
    }

    /// `schedule list`.
    pub fn schedules(&self, list: &[durable_runtime::ScheduleInfo]) {
        if self.json {
            let v: Vec<Value> = list.iter().map(render::schedule).collect();
            return self.value(&json!({ "schedules": v }));
        }
        let rows = list
            .iter()
            .map(|s| {
                let r = render::schedule(s);
                let state = if s.paused { "Paused".to_string() } else { s.status.to_string() };
                vec![
                    s.id.clone(),
                    s.schedule.cron_expr().to_string(),
                    s.schedule.timezone_name().to_string(),
                    s.orchestrator.clone(),
                    state,
                    r["nextFire"]
                        .as_str()
                        .map(|t| t.replace('T', " ").trim_end_matches('Z').to_string())
                        .unwrap_or_default(),
                    s.last_run.clone().unwrap_or_default(),
                ]
            })
            .collect();
        table(&["SCHEDULE", "CRON", "TIME ZONE", "ORCHESTRATOR", "STATE", "NEXT FIRE", "LAST RUN"], rows);
    }

    /// `list`.
    pub fn list(&self, list: &[InstanceStatus]) {
        if self.json {
            let v: Vec<Value> = list.iter().map(|s| render::status(s, false)).collect();
            return self.value(&json!({ "instances": v }));
        }
        let rows = list
            .iter()
            .map(|s| {
                vec![
                    s.instance_id.clone(),
                    s.name.clone(),
                    version(s.version),
                    if s.blocked { format!("{} (blocked)", s.runtime_status) } else { s.runtime_status.to_string() },
                    time(s.created_ms),
                    time(s.updated_ms),
                ]
            })
            .collect();
        table(&["INSTANCE", "NAME", "VERSION", "STATUS", "CREATED", "UPDATED"], rows);
    }

    /// `versions`: a row per orchestrator name and version, then a row per further
    /// suspension point (`COUNT × KEY (line N)`).
    pub fn versions(&self, versions: &[VersionSummary]) {
        if self.json {
            return self.value(&Value::Array(versions.iter().map(render::version_summary).collect()));
        }
        let mut rows = Vec::new();
        for v in versions {
            let mut at: Vec<String> = v.suspended_at.iter().map(|(k, n)| format!("{n} × {k}")).collect();
            let suspended: u64 = v.suspended_at.values().sum();
            if v.in_flight > suspended {
                at.push(format!("{} × not suspended yet", v.in_flight - suspended));
            }
            let mut at = at.into_iter();
            rows.push(vec![
                v.name.clone(),
                version(v.version),
                v.in_flight.to_string(),
                v.blocked.to_string(),
                at.next().unwrap_or_default(),
            ]);
            rows.extend(at.map(|a| vec![String::new(), String::new(), String::new(), String::new(), a]));
        }
        table(&["NAME", "VERSION", "IN FLIGHT", "BLOCKED", "SUSPENDED AT"], rows);
    }

    /// A dry run's count: `would terminate 3 instances` / `{"dryRun": true, "instancesMatched": 3}`.
    pub fn count(&self, n: u64, what: &str) {
        if self.json {
            return self.value(&json!({ "dryRun": true, "instancesMatched": n }));
        }
        println!("{what} {n} instance{}", if n == 1 { "" } else { "s" });
    }

    /// `entity history` (tables only; JSON is printed by the caller).
    pub fn entity_journal(&self, journal: &[EntityJournalEntry]) {
        let rows = journal
            .iter()
            .map(|e| {
                let outcome = match (&e.result, &e.error) {
                    (_, Some(err)) => format!("error: {err}"),
                    (Some(r), None) => r.clone(),
                    (None, None) => String::new(),
                };
                vec![
                    time(e.time_ms),
                    e.op.clone(),
                    e.sender.clone().unwrap_or_else(|| "client".into()),
                    e.input.clone(),
                    outcome,
                ]
            })
            .collect();
        table(&["TIME", "OPERATION", "SENDER", "INPUT", "RESULT"], rows);
    }

    /// `dead-letters`.
    pub fn dead_letters(&self, list: &[DeadLetter]) {
        if self.json {
            let v: Vec<Value> = list.iter().map(render::dead_letter).collect();
            return self.value(&json!({ "deadLetters": v }));
        }
        let rows = list
            .iter()
            .map(|d| {
                let fields: Vec<String> = d.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                vec![time(d.time_ms), d.stream.clone(), d.entry_id.clone(), d.reason.clone(), fields.join(" ")]
            })
            .collect();
        table(&["TIME", "STREAM", "ENTRY", "REASON", "FIELDS"], rows);
    }

    /// `entity get`.
    pub fn entity(&self, e: &EntityStatus) {
        let v = render::entity(e);
        if self.json {
            return self.value(&v);
        }
        println!("entity      {}/{}", e.id.name, e.id.key);
        println!("state       {}", compact(&v["state"]));
        println!("last error  {}", e.last_error.as_deref().unwrap_or("-"));
        println!("modified    {}", time(e.updated_ms));
    }

    /// `entity list` (tables only; JSON is printed by the caller).
    pub fn entities(&self, list: &[EntityStatus]) {
        let rows = list
            .iter()
            .map(|e| {
                let v = render::entity(e);
                vec![e.id.name.clone(), e.id.key.clone(), compact(&v["state"]), time(e.updated_ms)]
            })
            .collect();
        table(&["NAME", "KEY", "STATE", "MODIFIED"], rows);
    }
}

/// `2026-01-02 03:04:05.678` (UTC).
fn time(ms: u64) -> String {
    render::rfc3339(ms).replace('T', " ").trim_end_matches('Z').to_string()
}

/// A version; 0 is an instance started by name that has not run yet.
fn version(v: u32) -> String {
    if v == 0 { "0 (not yet bound)".to_string() } else { v.to_string() }
}

fn str_of(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
}

/// One-line JSON.
fn compact(v: &Value) -> String {
    v.to_string()
}

fn clip(s: &str) -> String {
    let s = s.replace(['\n', '\r', '\t'], " ");
    if s.chars().count() <= MAX_CELL {
        return s;
    }
    let mut out: String = s.chars().take(MAX_CELL - 1).collect();
    out.push('…');
    out
}

/// Columns aligned on their widest cell; the last column is not padded or clipped.
fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let n = header.len();
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.into_iter().enumerate().map(|(i, c)| if i + 1 < n { clip(&c) } else { c }).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let print = |cells: Vec<&str>| {
        let mut line = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 < n {
                line.push_str(c);
                line.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            } else {
                line.push_str(c);
            }
        }
        println!("{}", line.trim_end());
    };
    print(header.to_vec());
    for r in &rows {
        print(r.iter().map(String::as_str).collect());
    }
}
