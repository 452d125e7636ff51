//! JSON renderings of statuses, histories and entities (the API's shapes, also used by the
//! `durable` CLI), RFC 3339 times, opaque tokens.

use crate::error::ApiError;
use durable_runtime::client::EntityStatus;
use durable_runtime::time::Millis;
use durable_runtime::{
    CatchUpPolicy, EntityJournalEntry, HistoryEvent, InstanceStatus, OverlapPolicy, ScheduleInfo, VersionSummary,
};
use serde_json::{Map, Value, json};

/// A JSON text stored by the runtime, as a JSON value (a string if it somehow is not JSON).
pub fn payload(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or_else(|_| Value::String(json.to_string()))
}

/// The status body of `GET /instances/{id}` and of the list.
pub fn status(s: &InstanceStatus, show_input: bool) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(s.name));
    m.insert("instanceId".into(), json!(s.instance_id));
    m.insert("runtimeStatus".into(), json!(s.runtime_status.to_string()));
    if show_input {
        m.insert("input".into(), payload(&s.input));
    }
    m.insert("output".into(), s.output.as_deref().map(payload).unwrap_or(Value::Null));
    m.insert("customStatus".into(), s.custom_status.as_deref().map(payload).unwrap_or(Value::Null));
    m.insert("createdTime".into(), json!(rfc3339(s.created_ms)));
    m.insert("lastUpdatedTime".into(), json!(rfc3339(s.updated_ms)));
    m.insert("error".into(), json!(s.error));
    m.insert("reason".into(), json!(s.reason));
    m.insert("parentInstanceId".into(), json!(s.parent.as_ref().map(|p| &p.instance_id)));
    m.insert("version".into(), json!(s.version));
    m.insert("blocked".into(), json!(s.blocked));
    Value::Object(m)
}

/// One orchestrator version with instances in flight, as `GET /orchestrations/versions` and
/// `durable versions --json` show it: `{"name", "version", "inFlight", "blocked", "suspendedAt"}`,
/// `suspendedAt` mapping each suspension point (with its source line) to how many wait there.
pub fn version_summary(v: &VersionSummary) -> Value {
    json!({
        "name": v.name,
        "version": v.version,
        "inFlight": v.in_flight,
        "blocked": v.blocked,
        "suspendedAt": v.suspended_at,
    })
}

/// One dead letter, as `GET /dead-letters` and `durable dead-letters --json` show it:
/// `{"id", "stream", "entryId", "partition", "reason", "time", "fields"}`.
pub fn dead_letter(d: &durable_runtime::backend::DeadLetter) -> Value {
    json!({
        "id": d.id,
        "stream": d.stream,
        "entryId": d.entry_id,
        "partition": d.partition,
        "reason": d.reason,
        "time": rfc3339(d.time_ms),
        "fields": d.fields,
    })
}

/// One history event: `{"eventType": "TaskCompleted", "timestamp": "...", "seq": 3, ...fields}`,
/// with payload fields (input, result, data, output, custom status) as JSON values.
pub fn history_event(e: &HistoryEvent) -> Value {
    let mut m = Map::new();
    m.insert("seq".into(), json!(e.seq));
    m.insert("timestamp".into(), json!(rfc3339(e.timestamp_ms)));
    let kind = serde_json::to_value(&e.kind).unwrap_or(Value::Null);
    match kind {
        Value::Object(fields) => {
            for (k, v) in fields {
                let v = match (k.as_str(), v) {
                    ("input" | "result" | "data" | "output" | "status", Value::String(s)) => payload(&s),
                    ("fire_at", Value::Number(n)) => {
                        n.as_u64().map(|ms| json!(rfc3339(ms))).unwrap_or(Value::Number(n))
                    }
                    (_, v) => v,
                };
                let key = if k == "type" { "eventType".to_string() } else { camel(&k) };
                m.insert(key, v);
            }
        }
        Value::String(s) => {
            m.insert("eventType".into(), Value::String(s));
        }
        _ => {}
    }
    Value::Object(m)
}

/// An entity as `GET /entities/{name}/{key}?showMetadata=true` and `GET /entities` show it:
/// `{"name", "key", "state", "lastError", "lastModifiedTime"}`, with the state as a JSON value.
pub fn entity(e: &EntityStatus) -> Value {
    json!({
        "name": e.id.name,
        "key": e.id.key,
        "state": e.state.as_deref().map(payload),
        "lastError": e.last_error,
        "lastModifiedTime": rfc3339(e.updated_ms),
    })
}

/// One operation of an entity's journal as `GET /entities/{name}/{key}/history` shows it:
/// `{time, operation, input, sender, result, error}`, payloads as JSON values where they are
/// whole (a cut one stays a string).
pub fn journal_entry(e: &EntityJournalEntry) -> Value {
    json!({
        "time": rfc3339(e.time_ms),
        "operation": e.op,
        "input": payload(&e.input),
        "sender": e.sender,
        "result": e.result.as_deref().map(payload),
        "error": e.error,
    })
}

fn camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut up = false;
    for c in s.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC with milliseconds (`2026-01-02T03:04:05.678Z`).
pub fn rfc3339(ms: Millis) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, mo, d) = civil_from_days(days);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms % 1000)
}

/// Parse an RFC 3339 time (`2026-01-02T03:04:05Z`, fractional seconds and `±hh:mm` offsets
/// allowed; `t`/space for `T`) into ms since the Unix epoch (times before 1970 are 0).
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) && !t.is_empty() { t.parse().ok() } else { None }
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &s[start..i];
        let first3: String = digits.chars().chain("000".chars()).take(3).collect();
        frac_ms = first3.parse().ok()?;
    }
    let r = s.get(i..)?.as_bytes();
    let offset_min = if r == b"Z" || r == b"z" {
        0
    } else if r.len() == 6 && (r[0] == b'+' || r[0] == b'-') && r[3] == b':' {
        let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
        if oh > 23 || om > 59 {
            return None;
        }
        if r[0] == b'-' { -(oh * 60 + om) } else { oh * 60 + om }
    } else {
        return None;
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec.min(59) - offset_min * 60;
    Some((secs * 1000 + frac_ms).max(0) as Millis)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

// Howard Hinnant's civil-date algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A backend continuation token as an opaque, header-safe token (hex).
pub fn encode_token(t: &str) -> String {
    t.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The backend continuation token inside a token from [`encode_token`].
pub fn decode_token(t: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "BadContinuationToken",
            "continuationToken is not a token this API returned; pass the `x-ms-continuation-token` of the previous page",
        )
    };
    if !t.len().is_multiple_of(2) || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    String::from_utf8(bytes).map_err(|_| bad())
}

/// A boolean query flag: `true`/`false`/`1`/`0`, any case; absent is `false`.
pub fn flag(name: &str, v: &Option<String>) -> Result<bool, ApiError> {
    match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => {
            Err(ApiError::bad_request("BadQuery", format!("{name} must be `true` or `false`, not {other:?}")))
        }
    }
}

/// A schedule, as `GET /schedules` and `durable schedule list --json` show it: `{"id",
/// "cron", "timezone", "orchestrator", "input", "overlap", "catchUp", "catchUpWindowSecs",
/// "paused", "runtimeStatus", "nextFire", "lastRun", "runsStarted", "skipped", "error"}`.
pub fn schedule(s: &ScheduleInfo) -> Value {
    let (catch_up, window) = catch_up_name(s.schedule.catch_up_policy());
    json!({
        "id": s.id,
        "cron": s.schedule.cron_expr(),
        "timezone": s.schedule.timezone_name(),
        "orchestrator": s.orchestrator,
        "input": s.input,
        "overlap": overlap_name(s.schedule.overlap_policy()),
        "catchUp": catch_up,
        "catchUpWindowSecs": window,
        "paused": s.paused,
        "runtimeStatus": s.status.to_string(),
        "nextFire": s.next_fire.map(|t| rfc3339(durable_runtime::time::Millis::try_from(
            t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(0))),
        "lastRun": s.last_run,
        "running": s.running,
        "runsStarted": s.runs_started,
        "skipped": s.skipped,
        "error": s.error,
    })
}

/// `skip`, `buffer-one`, `allow-all`.
pub fn overlap_name(p: OverlapPolicy) -> &'static str {
    match p {
        OverlapPolicy::Skip => "skip",
        OverlapPolicy::BufferOne => "buffer-one",
        OverlapPolicy::AllowAll => "allow-all",
    }
}

/// `run-last`, `skip-missed`, `run-all` (with its window in seconds).
pub fn catch_up_name(p: CatchUpPolicy) -> (&'static str, Option<u64>) {
    match p {
        CatchUpPolicy::RunLast => ("run-last", None),
        CatchUpPolicy::SkipMissed => ("skip-missed", None),
        CatchUpPolicy::RunAll { window } => ("run-all", Some(window.as_secs())),
    }
}

/// A schedule from its parts as the API and the CLI take them: the cron expression, the time
/// zone (UTC if none), the overlap policy (`skip` if none), the catch-up policy (`run-last`
/// if none; `run-all` needs a window in seconds). The error names what is wrong.
pub fn parse_schedule(
    cron: &str,
    timezone: Option<&str>,
    overlap: Option<&str>,
    catch_up: Option<&str>,
    window_secs: Option<u64>,
) -> Result<durable_runtime::Schedule, durable_runtime::Error> {
    let bad = |field: &str, reason: String| durable_runtime::Error::InvalidSchedule { field: field.into(), reason };
    let mut s = durable_runtime::Schedule::cron(cron)?;
    if let Some(tz) = timezone {
        s = s.timezone(tz)?;
    }
    let overlap = match overlap.unwrap_or("skip") {
        "skip" => OverlapPolicy::Skip,
        "buffer-one" => OverlapPolicy::BufferOne,
        "allow-all" => OverlapPolicy::AllowAll,
        other => {
            return Err(bad("overlap", format!("unknown overlap policy {other:?}; use skip, buffer-one or allow-all")));
        }
    };
    let catch_up = match (catch_up.unwrap_or("run-last"), window_secs) {
        ("run-last", None) => CatchUpPolicy::RunLast,
        ("skip-missed", None) => CatchUpPolicy::SkipMissed,
        ("run-all", Some(w)) => CatchUpPolicy::RunAll { window: std::time::Duration::from_secs(w) },
        ("run-all", None) => return Err(bad("catch-up", "run-all needs a window (how far back, in seconds)".into())),
        (p @ ("run-last" | "skip-missed"), Some(_)) => {
            return Err(bad("catch-up", format!("a window goes with run-all only, not {p}")));
        }
        (other, _) => {
            return Err(bad(
                "catch-up",
                format!("unknown catch-up policy {other:?}; use run-last, skip-missed or run-all"),
            ));
        }
    };
    Ok(s.overlap(overlap).catch_up(catch_up))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        for ms in [0u64, 1, 999, 86_399_999, 951_782_400_000, 1_700_000_000_123, 4_102_444_800_000] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms), "{}", rfc3339(ms));
        }
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20+01:00"), Some(1_700_000_000_000));
        assert_eq!(parse_rfc3339("2023-11-14 22:13:20.1z"), Some(1_700_000_000_100));
        for bad in [
            "",
            "2023-11-14",
            "2023-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2023-11-14T22:13:20",
            "x023-11-14T22:13:20Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn tokens_round_trip() {
        assert_eq!(decode_token(&encode_token("12:héllo")).unwrap(), "12:héllo");
        assert!(decode_token("zz").is_err());
        assert!(decode_token("abc").is_err());
        assert!(decode_token("ff").is_err());
    }
}
