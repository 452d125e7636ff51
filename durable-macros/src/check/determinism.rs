//! Determinism rules: the paths and bare calls an orchestrator body may not use (wall clock,
//! randomness, threads and tasks, process timers, I/O, hash-ordered collections), each with the
//! message that says what to use instead.

pub(super) fn seg_names(path: &syn::Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

/// The determinism rule a path breaks, if any: the message to show.
pub(super) fn forbidden_path(segs: &[String]) -> Option<String> {
    let has = |s: &str| segs.iter().any(|x| x == s);
    let last = segs.last().map(String::as_str).unwrap_or("");
    let pair = |a: &str, b: &str| segs.windows(2).any(|w| w[0] == a && w[1] == b);
    let shown = segs.join("::");
    if pair("SystemTime", "now")
        || pair("Instant", "now")
        || pair("Utc", "now")
        || pair("Local", "now")
        || pair("OffsetDateTime", "now_utc")
        || pair("OffsetDateTime", "now_local")
        || pair("Timestamp", "now")
        || pair("Zoned", "now")
    {
        return Some(format!(
            "`{shown}` reads the wall clock, which is not deterministic in an orchestrator: use `ctx.now()`, the step's time as recorded in the history"
        ));
    }
    if pair("Uuid", "new_v4")
        || pair("Uuid", "now_v7")
        || pair("Uuid", "new_v7")
        || pair("Uuid", "now_v1")
        || pair("Uuid", "now_v6")
    {
        return Some(format!(
            "`{shown}` is random, so not deterministic in an orchestrator: use `ctx.new_uuid()`, which is the same on every replay"
        ));
    }
    let multi = segs.len() >= 2;
    if (multi && segs.first().is_some_and(|s| s == "rand" || s == "fastrand" || s == "getrandom"))
        || has("thread_rng")
        || has("ThreadRng")
        || has("OsRng")
    {
        return Some(format!(
            "`{shown}` is random, so not deterministic in an orchestrator: draw random values in an `#[activity]` (its result is recorded), or use `ctx.new_uuid()`"
        ));
    }
    if (has("thread") && (last == "spawn" || last == "sleep" || last == "scope"))
        || (has("tokio")
            && (last == "spawn" || last == "spawn_blocking" || last == "spawn_local" || last == "block_in_place"))
        || (has("task") && (last == "spawn" || last == "spawn_blocking" || last == "spawn_local"))
    {
        return Some(format!(
            "`{shown}` starts a thread or task, which an orchestrator cannot suspend or replay: call an `#[activity]` with `ctx.call_activity`, and run tasks in parallel with `ctx.when_all`"
        ));
    }
    if (multi && (last == "sleep" || last == "sleep_until"))
        || (has("time") && (last == "interval" || last == "timeout"))
    {
        return Some(format!(
            "`{shown}` waits on the process clock, which does not survive a restart: use a durable timer, `ctx.timer(duration).await`"
        ));
    }
    let io_root = |m: &str| {
        multi && segs.iter().any(|s| s == m) && (has("std") || has("tokio") || segs.first().is_some_and(|s| s == m))
    };
    if io_root("fs")
        || io_root("net")
        || io_root("env")
        || io_root("process")
        || (has("std") && has("io") && (last == "stdin" || last == "stdout" || last == "stderr"))
        || pair("File", "open")
        || pair("File", "create")
        || pair("TcpStream", "connect")
        || pair("UdpSocket", "bind")
        || pair("TcpListener", "bind")
    {
        return Some(format!(
            "`{shown}` does I/O, which is not replayed and may differ on the next run: move it into an `#[activity]` and call that with `ctx.call_activity`"
        ));
    }
    if last == "HashMap" || has("HashMap") {
        return Some(format!(
            "`{shown}`: the iteration order of a `HashMap` differs between processes, so an orchestrator that iterates it is not deterministic: use `std::collections::BTreeMap`"
        ));
    }
    if last == "HashSet" || has("HashSet") {
        return Some(format!(
            "`{shown}`: the iteration order of a `HashSet` differs between processes, so an orchestrator that iterates it is not deterministic: use `std::collections::BTreeSet`"
        ));
    }
    None
}

/// A bare function name that is not deterministic when called (imported with `use`).
pub(super) fn forbidden_call(name: &str) -> Option<String> {
    Some(match name {
        "sleep" | "sleep_until" => format!(
            "`{name}` waits on the process clock, which does not survive a restart: use a durable timer, `ctx.timer(duration).await`"
        ),
        "spawn" | "spawn_blocking" | "spawn_local" => format!(
            "`{name}` starts a thread or task, which an orchestrator cannot suspend or replay: call an `#[activity]` with `ctx.call_activity`, and run tasks in parallel with `ctx.when_all`"
        ),
        "random" | "rng" | "thread_rng" => format!(
            "`{name}()` is random, so not deterministic in an orchestrator: draw random values in an `#[activity]` (its result is recorded), or use `ctx.new_uuid()`"
        ),
        _ => return None,
    })
}
