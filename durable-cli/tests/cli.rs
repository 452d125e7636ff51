//! The real `durable` binary against a redis-server of the test's own, with a worker on the
//! same task hub: every subcommand, its output (tables and `--json`) and its exit code; and the
//! check before a deploy: `durable versions`, `durable export --in-flight`, and each exported
//! instance run through `durable::testing::check_resume` against the next build.

mod common;

use common::*;
use durable::prelude::*;
use durable::testing::{ResumeCheck, check_resume};
use serde_json::json;

fn finished(v: &serde_json::Value) -> bool {
    matches!(v["runtimeStatus"].as_str(), Some("Completed" | "Failed" | "Terminated"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_status_history_list_purge() {
    let env = Env::new().await;
    let id = env.durable(&["start", "hello_cities", "--input", r#"["Tokyo","Seattle"]"#]).await.ok().stdout;
    let id = id.trim().to_string();
    assert!(!id.is_empty() && !id.contains(' '), "start prints the bare id: {id:?}");

    let s = env.poll_json(&["status", &id], finished).await;
    assert_eq!(s["runtimeStatus"], "Completed", "{s}");
    assert_eq!(s["output"], json!(["Hello Tokyo!", "Hello Seattle!"]));
    assert_eq!(s["input"], json!(["Tokyo", "Seattle"]));
    assert_eq!(s["name"], "hello_cities");
    assert_eq!(s["state"], serde_json::Value::Null, "a finished instance has no live state");

    let table = env.durable(&["status", &id]).await.ok().stdout;
    assert!(table.contains("status") && table.contains("Completed"), "{table}");
    assert!(table.contains(r#"["Hello Tokyo!","Hello Seattle!"]"#), "{table}");

    let h = env.durable(&["history", &id]).await.ok().stdout;
    assert!(h.starts_with("SEQ"), "{h}");
    for kind in ["ExecutionStarted", "TaskScheduled", "TaskCompleted", "ExecutionCompleted"] {
        assert!(h.contains(kind), "history table lacks {kind}: {h}");
    }
    let hj = env.durable(&["--json", "history", &id]).await.ok().json();
    let kinds: Vec<&str> = hj.as_array().unwrap().iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "TaskCompleted").count(), 2, "{kinds:?}");
    assert_eq!(hj[0]["input"], json!(["Tokyo", "Seattle"]), "payloads are JSON values: {hj}");

    // list: table and JSON, with filters.
    let other = env.durable(&["start", "approval", "--input", r#""pay""#, "--id", "order-1"]).await.ok();
    assert_eq!(other.stdout.trim(), "order-1");
    env.poll_json(&["status", "order-1"], |v| v["runtimeStatus"] == "Running").await;
    let t = env.durable(&["list"]).await.ok().stdout;
    assert!(t.starts_with("INSTANCE"), "{t}");
    assert!(t.contains(&id) && t.contains("order-1") && t.contains("Completed") && t.contains("Running"), "{t}");
    let l = env.durable(&["list", "--status", "completed", "--json"]).await.ok().json();
    let ids: Vec<&str> = l["instances"].as_array().unwrap().iter().map(|i| i["instanceId"].as_str().unwrap()).collect();
    assert_eq!(ids, [id.as_str()]);
    let l = env.durable(&["list", "--status", "Running,Suspended", "--name", "approval", "--json"]).await.ok().json();
    assert_eq!(l["instances"][0]["instanceId"], "order-1", "{l}");
    assert_eq!(l["instances"].as_array().unwrap().len(), 1);
    let l = env.durable(&["list", "--top", "1", "--json"]).await.ok().json();
    assert_eq!(l["instances"].as_array().unwrap().len(), 1);
    env.durable(&["list", "--status", "Sleeping"]).await.fails(2, "unknown status");
    env.durable(&["list", "--top", "0"]).await.fails(2, "--top");

    // purge: finished yes, running no (4), unknown (3).
    env.durable(&["purge", "order-1"]).await.fails(4, "order-1");
    assert_eq!(env.durable(&["purge", &id]).await.ok().stdout.trim(), format!("purged {id}"));
    env.durable(&["purge", &id]).await.fails(3, "no instance");
    env.durable(&["status", &id]).await.fails(3, "no instance");
    env.durable(&["history", &id]).await.fails(3, "no instance");
    env.durable(&["--json", "status", &id]).await.fails(3, r#""code":"InstanceNotFound""#);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_by_filter_deletes_only_matching_finished_instances() {
    let env = Env::new().await;
    // Bad usage, before Redis is asked.
    env.durable(&["purge"]).await.fails(2, "instance id");
    env.durable(&["purge", "x", "--status", "completed"]).await.fails(2, "not both");
    env.durable(&["purge", "--status", "completed,running"]).await.fails(2, "only finished instances");
    env.durable(&["purge", "--created-before", "yesterday"]).await.fails(2, "RFC 3339");

    for id in ["c1", "c2"] {
        env.durable(&["start", "hello_cities", "--input", r#"["Oslo"]"#, "--id", id]).await.ok();
        env.poll_json(&["status", id], finished).await;
    }
    env.durable(&["start", "approval", "--input", r#""pay""#, "--id", "order-9"]).await.ok();
    env.poll_json(&["status", "order-9"], |v| v["runtimeStatus"] == "Running").await;

    let none = env.durable(&["--json", "purge", "--created-after", "2999-01-01T00:00:00Z"]).await.ok().json();
    assert_eq!(none["instancesDeleted"], 0, "{none}");
    let out = env.durable(&["purge", "--status", "completed", "--name", "hello_cities"]).await.ok().stdout;
    assert_eq!(out.trim(), "purged 2 instances");
    env.durable(&["status", "c1"]).await.fails(3, "no instance");
    env.durable(&["status", "c2"]).await.fails(3, "no instance");
    let live = env.durable(&["--json", "purge", "--created-before", "2999-01-01T00:00:00Z"]).await.ok().json();
    assert_eq!(live["instancesDeleted"], 0, "the running instance is kept: {live}");
    let s = env.durable(&["--json", "status", "order-9"]).await.ok().json();
    assert_eq!(s["runtimeStatus"], "Running", "{s}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_locals_and_control() {
    let env = Env::new().await;
    env.durable(&["start", "approval", "--id", "a1", "--input", r#""a laptop""#]).await.ok();
    // Starting a live id again is a conflict.
    env.durable(&["start", "approval", "--id", "a1", "--input", r#""again""#]).await.fails(4, "already exists");
    // Bad usage, before Redis is even asked.
    env.durable(&["start", "approval", "--input", "not json"]).await.fails(2, "--input");
    env.durable(&["start", "approval", "--id", ""]).await.fails(2, "invalid instance id");
    env.durable(&["start"]).await.fails(2, "NAME");
    env.durable(&["frobnicate"]).await.fails(2, "frobnicate");

    // The live locals of the waiting instance.
    let s = env.poll_json(&["status", "a1"], |v| v["customStatus"] == "waiting for approval").await;
    assert_eq!(s["state"]["locals"]["asked"], "asked: a laptop", "{s}");
    assert_eq!(s["state"]["locals"]["greeting"], "Hello a laptop!", "{s}");
    let t = env.durable(&["status", "a1"]).await.ok().stdout;
    assert!(t.contains("suspended at") && t.contains(r#"asked = "asked: a laptop""#), "{t}");
    assert!(t.contains(r#"custom status  "waiting for approval""#), "{t}");

    // suspend / resume: an event raised while suspended waits.
    env.durable(&["suspend", "a1", "--reason", "audit"]).await.ok();
    let s = env.poll_json(&["status", "a1"], |v| v["runtimeStatus"] == "Suspended").await;
    assert_eq!(s["reason"], "audit");
    env.durable(&["raise", "a1", "approve", "--data", r#"{"by":"ann"}"#]).await.ok();
    env.durable(&["raise", "a1", "approve", "--data", "{oops"]).await.fails(2, "--data");
    let r = env.durable(&["--json", "resume", "a1"]).await.ok().json();
    assert_eq!(r, json!({ "instanceId": "a1", "action": "resume", "accepted": true }));
    let s = env.poll_json(&["status", "a1"], finished).await;
    assert_eq!(s["runtimeStatus"], "Completed", "{s}");
    assert_eq!(s["output"]["answer"], json!({ "by": "ann" }));

    // Finished: every control is a conflict (exit 4); unknown ids are not found (exit 3).
    for cmd in ["terminate", "suspend", "resume", "rewind"] {
        env.durable(&[cmd, "a1"]).await.fails(4, "Completed");
        env.durable(&[cmd, "nobody"]).await.fails(3, "nobody");
    }
    env.durable(&["raise", "a1", "approve"]).await.fails(4, "finished");
    env.durable(&["raise", "nobody", "approve"]).await.fails(3, "nobody");

    // terminate
    env.durable(&["start", "approval", "--id", "a2", "--input", r#""x""#]).await.ok();
    let out = env.durable(&["terminate", "a2", "--reason", "not needed"]).await.ok().stdout;
    assert_eq!(out.trim(), "terminating a2");
    let s = env.poll_json(&["status", "a2"], finished).await;
    assert_eq!(s["runtimeStatus"], "Terminated", "{s}");
    assert_eq!(s["reason"], "not needed");

    // rewind a failed instance: the flaky activity succeeds the second time.
    env.durable(&["start", "uses_flaky", "--id", "f1", "--input", r#""k1""#]).await.ok();
    let s = env.poll_json(&["status", "f1"], finished).await;
    assert_eq!(s["runtimeStatus"], "Failed", "{s}");
    assert!(env.durable(&["status", "f1"]).await.ok().stdout.contains("the first attempt fails"));
    env.durable(&["rewind", "f1", "--reason", "fixed"]).await.ok();
    let s = env.poll_json(&["status", "f1"], |v| v["runtimeStatus"] == "Completed").await;
    assert_eq!(s["output"], "ok k1");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities() {
    let env = Env::new().await;
    env.durable(&["entity", "get", "counter", "c1"]).await.fails(3, "does not exist");
    let out = env.durable(&["entity", "signal", "counter", "c1", "add", "--input", "10"]).await.ok().stdout;
    assert_eq!(out.trim(), "signaled counter/c1 add");
    env.durable(&["entity", "signal", "counter", "c1", "add", "--input", "5"]).await.ok();
    let e = env.poll_json(&["entity", "get", "counter", "c1"], |v| v["state"] == 15).await;
    assert_eq!(e["name"], "counter");
    assert_eq!(e["key"], "c1");
    assert_eq!(e["lastError"], serde_json::Value::Null);
    let t = env.durable(&["entity", "get", "counter", "c1"]).await.ok().stdout;
    assert!(t.contains("counter/c1") && t.contains("state       15"), "{t}");

    // An unknown operation fails that operation only; the error is shown.
    env.durable(&["entity", "signal", "counter", "c1", "multiply"]).await.ok();
    let e = env.poll_json(&["entity", "get", "counter", "c1"], |v| v["lastError"].is_string()).await;
    assert_eq!(e["state"], 15);
    assert!(e["lastError"].as_str().unwrap().contains("multiply"), "{e}");

    env.durable(&["entity", "signal", "counter", "c2", "add", "--input", "1"]).await.ok();
    env.poll_json(&["entity", "get", "counter", "c2"], |v| v["state"] == 1).await;
    let t = env.durable(&["entity", "list"]).await.ok().stdout;
    assert!(t.starts_with("NAME") && t.contains("c1") && t.contains("c2"), "{t}");
    let l = env.durable(&["--json", "entity", "list", "--name", "counter", "--top", "1"]).await.ok().json();
    assert_eq!(l["entities"].as_array().unwrap().len(), 1, "{l}");
    let l = env.durable(&["--json", "entity", "list", "--name", "nothing"]).await.ok().json();
    assert_eq!(l, json!({ "entities": [] }));
    // Entities are not in the instance list.
    let l = env.durable(&["--json", "list"]).await.ok().json();
    assert_eq!(l, json!({ "instances": [] }));

    // Its journal: the operations, who sent them (a client here), what they gave.
    let t = env.durable(&["entity", "history", "counter", "c1"]).await.ok().stdout;
    assert!(t.starts_with("TIME") && t.contains("OPERATION") && t.contains("SENDER"), "{t}");
    assert!(t.contains("add") && t.contains("client") && t.contains("multiply"), "{t}");
    let j = env.durable(&["--json", "entity", "history", "counter", "c1"]).await.ok().json();
    let ops = j["operations"].as_array().unwrap();
    assert_eq!((ops[0]["operation"].clone(), ops[0]["input"].clone()), (json!("add"), json!(10)), "{j}");
    assert_eq!(ops.len(), 3, "{j}");
    assert!(ops[2]["error"].as_str().unwrap().contains("multiply"), "{j}");
    env.durable(&["entity", "history", "counter", "nobody"]).await.fails(3, "does not exist");

    env.durable(&["entity", "signal", "counter", "c1", "add", "--input", "ten"]).await.fails(2, "--input");
    env.durable(&["entity", "signal", "co@unter", "c1", "add"]).await.fails(2, "must not contain `@`");
    env.durable(&["entity", "get", "counter"]).await.fails(2, "KEY");
    env.durable(&["purge", "@counter@c1"]).await.fails(2, "entity");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_wait_terminate_recursive_and_entity_purge() {
    let env = Env::new().await;
    // start --wait prints the output, and exits by the outcome.
    let out = env.durable(&["start", "hello_cities", r#"["Oslo"]"#, "--wait"]).await.ok().stdout;
    assert_eq!(out.trim(), r#"["Hello Oslo!"]"#);
    let s = env.durable(&["--json", "start", "hello_cities", r#"["Rome"]"#, "--wait"]).await.ok().json();
    assert_eq!((s["runtimeStatus"].clone(), s["output"].clone()), (json!("Completed"), json!(["Hello Rome!"])));
    env.durable(&["start", "fails", r#""out of paper""#, "--wait"]).await.fails(5, "out of paper");
    env.durable(&["start", "approval", r#""later""#, "--id", "slow", "--wait", "--timeout", "1"])
        .await
        .fails(6, "slow");
    env.durable(&["start", "hello_cities", "[1", "--wait"]).await.fails(2, "INPUT");
    env.durable(&["start", "hello_cities", "[]", "--input", "[]"]).await.fails(2, "cannot be used with");

    // terminate --recursive ends the sub-orchestrations too.
    env.durable(&["start", "manager", r#""raise""#, "--id", "boss"]).await.ok();
    env.poll_json(&["status", "boss:child"], |v| v["customStatus"] == "waiting for approval").await;
    let out = env.durable(&["terminate", "boss", "--recursive", "--reason", "reorg"]).await.ok().stdout;
    assert_eq!(out.trim(), "terminating boss and 1 sub-orchestrations");
    for id in ["boss", "boss:child"] {
        let s = env.poll_json(&["status", id], finished).await;
        assert_eq!(s["runtimeStatus"], "Terminated", "{id}: {s}");
    }
    let s = env.durable(&["--json", "status", "boss:child"]).await.ok().json();
    assert!(s.to_string().contains("its parent \\\"boss\\\" was terminated"), "{s}");

    // entity purge.
    env.durable(&["entity", "signal", "counter", "gone", "add", "--input", "3"]).await.ok();
    env.poll_json(&["entity", "get", "counter", "gone"], |v| v["state"] == 3).await;
    assert_eq!(
        env.durable(&["entity", "purge", "counter", "gone"]).await.ok().stdout.trim(),
        "purged entity counter/gone"
    );
    env.durable(&["entity", "get", "counter", "gone"]).await.fails(3, "does not exist");
    env.durable(&["entity", "purge", "counter", "gone"]).await.fails(3, "no entity");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_terminate_and_purge_with_a_dry_run() {
    let env = Env::new().await;
    for id in ["wait-a", "wait-b", "wait-c"] {
        env.durable(&["start", "approval", r#""x""#, "--id", id]).await.ok();
    }
    env.durable(&["start", "hello_cities", r#"["Oslo"]"#, "--wait"]).await.ok();
    for id in ["wait-a", "wait-b", "wait-c"] {
        env.poll_json(&["status", id], |v| v["customStatus"] == "waiting for approval").await;
    }
    // Bad usage first.
    env.durable(&["terminate"]).await.fails(2, "give an instance id, or filters");
    env.durable(&["terminate", "wait-a", "--name", "approval"]).await.fails(2, "not both");
    env.durable(&["terminate", "--status", "completed"]).await.fails(2, "only live instances");
    env.durable(&["terminate", "--name", "approval", "--recursive"]).await.fails(2, "give its id");

    let out = env.durable(&["terminate", "--name", "approval", "--dry-run"]).await.ok().stdout;
    assert_eq!(out.trim(), "would terminate 3 instances");
    let j = env.durable(&["--json", "terminate", "--status", "running", "--dry-run"]).await.ok().json();
    assert_eq!(j, json!({ "dryRun": true, "instancesMatched": 3 }));
    env.poll_json(&["status", "wait-a"], |v| v["runtimeStatus"] == "Running").await;
    let out = env.durable(&["terminate", "--name", "approval", "--reason", "cleanup"]).await.ok().stdout;
    assert_eq!(out.trim(), "terminating 3 instances");
    for id in ["wait-a", "wait-b", "wait-c"] {
        let s = env.poll_json(&["status", id], finished).await;
        assert_eq!((s["runtimeStatus"].clone(), s["reason"].clone()), (json!("Terminated"), json!("cleanup")), "{s}");
    }
    // Purge: the dry run counts, the purge deletes the same ones.
    let out = env.durable(&["purge", "--status", "terminated", "--dry-run"]).await.ok().stdout;
    assert_eq!(out.trim(), "would purge 3 instances");
    let out = env.durable(&["purge", "--name", "hello_cities", "--dry-run"]).await.ok().stdout;
    assert_eq!(out.trim(), "would purge 1 instance");
    let out = env.durable(&["purge", "--status", "terminated"]).await.ok().stdout;
    assert_eq!(out.trim(), "purged 3 instances");
    env.durable(&["status", "wait-a"]).await.fails(3, "no instance");
    env.shutdown().await;
}

#[tokio::test]
async fn serve_refuses_an_open_address_without_a_token() {
    let env = Env::without_worker().await;
    for addr in ["0.0.0.0:0", "[::]:0", "192.168.1.1:7071"] {
        env.durable(&["serve", "--addr", addr]).await.fails(2, "without a token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_api_and_dashboard() {
    let env = Env::new().await;
    let url = env.url();
    let served = tokio::task::spawn_blocking(move || Served::start(&url, &["--token", "t0k"])).await.unwrap();
    let addr = served.addr.clone();
    let auth = [("Authorization", "Bearer t0k")];
    let r = http(&addr, "GET", "/healthz", &[], None);
    assert_eq!(r.status, 401, "{r:?}");
    let r = http(&addr, "POST", "/orchestrations/hello_cities", &auth, Some(r#"["Oslo"]"#));
    assert_eq!(r.status, 202, "{r:?}");
    let id = r.json()["id"].as_str().unwrap().to_string();
    let s = env.poll_json(&["status", &id], finished).await;
    assert_eq!(s["output"], json!(["Hello Oslo!"]));
    let r = http(&addr, "GET", &format!("/instances/{id}"), &auth, None);
    assert_eq!((r.status, r.json()["output"].clone()), (200, json!(["Hello Oslo!"])));
    // The dashboard's page and assets need no token (they hold no data; the page asks for it).
    let r = http(&addr, "GET", "/", &[], None);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("content-type").unwrap().starts_with("text/html"), "{r:?}");
    assert!(r.body.contains("dashboard.js"), "{}", r.body);
    for asset in ["/dashboard.js", "/dashboard.css"] {
        let r = http(&addr, "GET", asset, &[], None);
        assert_eq!(r.status, 200, "{asset}: {r:?}");
    }
    drop(served);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_api_and_dashboard_work_on_a_redis_cluster() {
    let env = Env::on_cluster().await;
    assert!(env.url().starts_with("redis+cluster://"));
    let id = env.durable(&["start", "hello_cities", "--input", r#"["Lima","Quito"]"#]).await.ok().stdout;
    let id = id.trim().to_string();
    let s = env.poll_json(&["status", &id], finished).await;
    assert_eq!(s["output"], json!(["Hello Lima!", "Hello Quito!"]), "{s}");
    let h = env.durable(&["--json", "history", &id]).await.ok().json();
    assert!(h.as_array().unwrap().iter().any(|e| e["eventType"] == "ExecutionCompleted"), "{h}");
    env.durable(&["start", "approval", "--input", r#""pay""#, "--id", "c-order"]).await.ok();
    env.poll_json(&["status", "c-order"], |v| v["customStatus"] == "waiting for approval").await;
    // Listing walks the partitions, which live on different masters.
    let l = env.durable(&["list", "--json"]).await.ok().json();
    let ids: Vec<&str> = l["instances"].as_array().unwrap().iter().map(|i| i["instanceId"].as_str().unwrap()).collect();
    assert!(ids.contains(&id.as_str()) && ids.contains(&"c-order"), "{l}");
    env.durable(&["entity", "signal", "counter", "c1", "add", "--input", "5"]).await.ok();
    env.poll_json(&["entity", "get", "counter", "c1"], |v| v["state"] == 5).await;

    let url = env.url();
    let served = tokio::task::spawn_blocking(move || Served::start(&url, &[])).await.unwrap();
    let addr = served.addr.clone();
    let r = http(&addr, "POST", "/instances/c-order/raiseEvent/approve", &[], Some("true"));
    assert_eq!(r.status, 202, "{r:?}");
    let s = env.poll_json(&["status", "c-order"], finished).await;
    assert_eq!(s["output"]["answer"], json!(true), "{s}");
    let r = http(&addr, "GET", "/instances?top=10", &[], None);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("c-order"), "{r:?}");
    let r = http(&addr, "GET", "/metrics", &[], None);
    assert_eq!(r.status, 200, "{r:?}");
    let r = http(&addr, "GET", "/", &[], None);
    assert!(r.status == 200 && r.body.contains("dashboard.js"), "{r:?}");
    drop(served);
    env.durable(&["purge", &id]).await.ok();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_create_list_pause_resume_delete_on_the_real_clock() {
    let env = Env::new().await;
    // Bad input exits 2 before connecting, naming the field; no schedule is created.
    env.durable(&["schedule", "create", "bad", "0 25 * * *", "hello_cities"]).await.fails(2, "hour field");
    env.durable(&["schedule", "create", "bad", "0 2 * * *", "hello_cities", "--timezone", "Mars/Base"])
        .await
        .fails(2, "Mars/Base");
    env.durable(&["schedule", "create", "bad", "* * * * *", "x", "--catch-up", "run-all"]).await.fails(2, "window");
    env.durable(&["schedule", "create", "bad", "* * * * *", "x", "{"]).await.fails(2, "INPUT");

    // Every second (six fields), for real.
    let out = env
        .durable(&[
            "schedule",
            "create",
            "tick",
            "* * * * * *",
            "hello_cities",
            r#"["Oslo"]"#,
            "--timezone",
            "Europe/Oslo",
        ])
        .await
        .ok();
    assert_eq!(out.stdout.trim(), "tick");
    env.durable(&["schedule", "create", "tick", "* * * * *", "hello_cities"]).await.fails(4, "already exists");
    let runs = env
        .poll_json(&["list", "--name", "hello_cities", "--status", "completed"], |v| {
            v["instances"].as_array().is_some_and(|a| a.len() >= 2)
        })
        .await;
    for run in runs["instances"].as_array().unwrap() {
        let id = run["instanceId"].as_str().unwrap();
        assert!(id.starts_with("tick@") && id.ends_with('Z'), "{id}");
        assert_eq!(run["output"], json!(["Hello Oslo!"]), "{run}");
    }
    let l = env.durable(&["schedule", "list", "--json"]).await.ok().json();
    let s = &l["schedules"][0];
    assert_eq!(
        (s["id"].as_str(), s["cron"].as_str(), s["timezone"].as_str()),
        (Some("tick"), Some("* * * * * *"), Some("Europe/Oslo"))
    );
    assert_eq!(
        (s["overlap"].as_str(), s["catchUp"].as_str(), s["paused"].as_bool()),
        (Some("skip"), Some("run-last"), Some(false))
    );
    assert!(s["nextFire"].as_str().is_some_and(|t| t.ends_with('Z')), "{s}");
    let t = env.durable(&["schedule", "list"]).await.ok().stdout;
    assert!(
        t.starts_with("SCHEDULE") && t.contains("tick") && t.contains("Europe/Oslo") && t.contains("Running"),
        "{t}"
    );

    env.durable(&["schedule", "pause", "tick"]).await.ok();
    env.poll_json(&["schedule", "list"], |v| v["schedules"][0]["paused"] == true).await;
    assert!(env.durable(&["schedule", "list"]).await.ok().stdout.contains("Paused"));
    env.durable(&["schedule", "resume", "tick"]).await.ok();
    env.poll_json(&["schedule", "list"], |v| v["schedules"][0]["paused"] == false).await;
    assert_eq!(env.durable(&["schedule", "delete", "tick"]).await.ok().stdout.trim(), "schedule tick deleted");
    let l = env.durable(&["schedule", "list", "--json"]).await.ok().json();
    assert_eq!(l["schedules"], json!([]));
    env.durable(&["schedule", "pause", "tick"]).await.fails(3, "no schedule");
    env.durable(&["--json", "schedule", "delete", "tick"]).await.fails(3, r#""code":"ScheduleNotFound""#);
    env.shutdown().await;
}

#[tokio::test]
async fn redis_errors_and_usage() {
    // Nothing listens on a port we just bound and released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = format!("redis://127.0.0.1:{port}");
    durable_at(&down, &["list"]).await.fails(1, "redis at");
    durable_at(&down, &["--json", "status", "x"]).await.fails(1, r#""code":"Backend""#);
    durable_at("http://example.invalid", &["list"]).await.fails(1, "Redis URL");
    // Usage errors do not need Redis.
    durable_at(&down, &["start", "x", "--input", "{"]).await.fails(2, "--input");
    durable_at(&down, &["list", "--bogus"]).await.fails(2, "--bogus");
    durable_at(&down, &[]).await.fails(2, "Usage");
    let help = durable_at(&down, &["--help"]).await.ok().stdout;
    assert!(help.contains("Exit codes:") && help.contains("3  not found"), "{help}");
    for cmd in
        ["serve", "start", "status", "history", "list", "raise", "terminate", "purge", "entity", "versions", "export"]
    {
        assert!(help.contains(cmd), "--help lists {cmd}");
    }
    let v = durable_at(&down, &["--version"]).await.ok().stdout;
    assert!(v.starts_with("durable "), "{v}");

    // A task hub whose partition count differs from --partitions is refused clearly.
    let env = Env::new().await;
    env.durable(&["--partitions", "3", "list"]).await.fails(1, "partitions");
    env.durable(&["--hub", "bad{hub}", "list"]).await.fails(1, "prefix");
    env.shutdown().await;
}

// ------------------------------------------------------------------ before a deploy

#[activity]
async fn double(n: i64) -> Result<i64, ActivityError> {
    Ok(n * 2)
}

/// Version 1 of `parked`: instances started before version 2 existed are still in flight.
mod v1 {
    use super::*;
    #[orchestrator(name = "parked")]
    pub async fn parked(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
        let code: String = ctx.wait_for_event("go").await?; // v1 waits here
        Ok(format!("v1 {code} {n}"))
    }
}

/// Version 2 of `parked`, deployed now beside version 1.
mod v2 {
    use super::*;
    #[orchestrator(name = "parked", version = 2)]
    pub async fn parked(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
        ctx.set_custom_status("parked");
        let code: String = ctx.wait_for_event("go").await?; // v2 waits here
        Ok(format!("v2 {code} {n}"))
    }
}

/// The next build of version 2, compatible: only code after the suspension point changed.
mod v2_compatible {
    use super::*;
    #[orchestrator(name = "parked", version = 2)]
    pub async fn parked(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
        ctx.set_custom_status("parked");
        let code: String = ctx.wait_for_event("go").await?;
        Ok(format!("v2 compatible {code} {n}"))
    }
}

/// The next build of version 2, incompatible: an activity added before the suspension point
/// whose result is live there, which the instances in flight never computed.
mod v2_incompatible {
    use super::*;
    #[orchestrator(name = "parked", version = 2)]
    pub async fn parked(ctx: OrchestrationContext, n: i64) -> Result<String, OrchestrationError> {
        let extra = ctx.call_activity(double, n).await?;
        let code: String = ctx.wait_for_event("go").await?;
        Ok(format!("v2 incompatible {code} {n} {extra}"))
    }
}

/// The suspension key `durable versions` shows for the await marked `// MARK` in this file.
fn key_at(mark: &str) -> String {
    let line = include_str!("cli.rs").lines().position(|l| l.ends_with(&format!("// {mark}"))).unwrap() + 1;
    format!("ctx.wait_for_event(\"go\") (line {line})")
}

fn deploy(backend: durable::backend::Redis) -> durable::WorkerBuilder {
    Worker::builder(backend).activity(double).blocked_retry(Duration::from_millis(50))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_export_check_the_next_build_before_deploying() {
    let env = Env::without_worker().await;
    let client = Client::new(env.backend().await);
    let running = deploy(env.backend().await).orchestrator(v1::parked).orchestrator(v2::parked).start().await.unwrap();
    for i in 0..2 {
        client.start_with_id(v1::parked, format!("old-{i}"), i).await.unwrap();
    }
    for i in 0..3 {
        client.start_with_id(v2::parked, format!("new-{i}"), 10 + i).await.unwrap();
    }
    let (k1, k2) = (key_at("v1 waits here"), key_at("v2 waits here"));

    // `durable versions`: JSON (the HTTP API's shape) once all five wait, then the table.
    let suspended = |v: &serde_json::Value| -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["suspendedAt"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum())
            .collect()
    };
    let v = env.poll_json(&["versions"], |v| suspended(v) == [2, 3]).await;
    assert_eq!(
        v,
        json!([
            { "name": "parked", "version": 1, "inFlight": 2, "blocked": 0, "suspendedAt": { &k1: 2 } },
            { "name": "parked", "version": 2, "inFlight": 3, "blocked": 0, "suspendedAt": { &k2: 3 } },
        ])
    );
    let table = env.durable(&["versions"]).await.ok().stdout;
    println!("durable versions:\n{table}");
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(rows[0].starts_with("NAME") && rows[0].contains("IN FLIGHT") && rows[0].contains("SUSPENDED AT"));
    let cells = |row: &str| row.split_whitespace().take(5).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(cells(rows[1]), ["parked", "1", "2", "0", "2"], "{table}");
    assert!(rows[1].ends_with(&format!("2 × {k1}")), "{table}");
    assert_eq!(cells(rows[2]), ["parked", "2", "3", "0", "3"], "{table}");
    assert!(rows[2].ends_with(&format!("3 × {k2}")), "{table}");

    // `durable export --in-flight`: one ExportedInstance a line, which the CI test of the next
    // build runs through `check_resume`.
    env.durable(&["export"]).await.fails(2, "--in-flight");
    env.durable(&["--json", "export", "--name", "parked"]).await.fails(2, r#""code":"BadUsage""#);
    assert_eq!(env.durable(&["export", "--in-flight", "--name", "nobody"]).await.ok().stdout, "");
    let out = env.durable(&["export", "--in-flight"]).await.ok().stdout;
    assert_eq!(out, env.durable(&["--json", "export", "--in-flight", "--name", "parked"]).await.ok().stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    println!("one line of durable export --in-flight:\n{}", lines[0]);
    let mut versions = Vec::new();
    for line in &lines {
        let e: durable::ExportedInstance = serde_json::from_str(line).unwrap();
        assert_eq!(e.status.name, "parked");
        assert!(e.snapshot.is_some() && !e.history.is_empty(), "{line}");
        versions.push(e.status.version);
        // The example test of a CI job: the compatible build resumes every instance in flight,
        // from its snapshot...
        assert_eq!(
            check_resume::<v2_compatible::parked>(line),
            Ok(ResumeCheck { version: 2, by_replay: false }),
            "{}",
            e.status.instance_id
        );
        // ... and the incompatible one is refused, saying which local it lacks.
        let refused = check_resume::<v2_incompatible::parked>(line).unwrap_err();
        assert!(refused.contains("orchestrator `parked`"), "{refused}");
        assert!(refused.contains("the local `extra` is live at `ctx.wait_for_event(\"go\")`"), "{refused}");
    }
    versions.sort();
    assert_eq!(versions, [1, 1, 2, 2, 2]);

    // Deploy the incompatible build anyway: the instance that gets its event is blocked, and
    // says why; `versions`, `status` and `list` show it.
    running.shutdown().await.unwrap();
    let wrong = deploy(env.backend().await).orchestrator(v2_incompatible::parked).start().await.unwrap();
    env.durable(&["raise", "new-0", "go", "--data", r#""now""#]).await.ok();
    let s = env.poll_json(&["status", "new-0"], |v| v["blocked"] == true).await;
    assert_eq!((s["version"].clone(), s["runtimeStatus"].clone()), (json!(2), json!("Running")), "{s}");
    assert!(s["reason"].as_str().unwrap().contains("the local `extra`"), "{s}");
    let t = env.durable(&["status", "new-0"]).await.ok().stdout;
    println!("durable status new-0:\n{t}");
    assert!(t.lines().any(|l| l.starts_with("version ") && l.trim_end().ends_with(" 2")), "{t}");
    assert!(t.lines().any(|l| l.starts_with("blocked ") && l.contains("yes")), "{t}");
    assert!(t.lines().any(|l| l.starts_with("reason ") && l.contains("the local `extra`")), "{t}");
    let v = env.durable(&["--json", "versions"]).await.ok().json();
    assert_eq!(
        (v[1]["version"].clone(), v[1]["inFlight"].clone(), v[1]["blocked"].clone()),
        (json!(2), json!(3), json!(1))
    );
    assert_eq!(v[0]["blocked"], 0);
    let table = env.durable(&["versions"]).await.ok().stdout;
    println!("durable versions, one blocked:\n{table}");
    assert_eq!(table.lines().nth(2).map(cells).unwrap(), ["parked", "2", "3", "1", "3"], "{table}");
    let l = env.durable(&["list", "--name", "parked"]).await.ok().stdout;
    assert!(l.lines().any(|r| r.starts_with("new-0 ") && r.contains("Running (blocked)")), "{l}");
    assert!(l.lines().next().unwrap().contains("VERSION"), "{l}");

    // The compatible build, deployed: the blocked instance resumes with its event.
    wrong.shutdown().await.unwrap();
    let fixed =
        deploy(env.backend().await).orchestrator(v1::parked).orchestrator(v2_compatible::parked).start().await.unwrap();
    let s = env.poll_json(&["status", "new-0"], |v| v["runtimeStatus"] == "Completed").await;
    assert_eq!((s["output"].clone(), s["blocked"].clone()), (json!("v2 compatible now 10"), json!(false)), "{s}");
    let v = env.durable(&["--json", "versions"]).await.ok().json();
    assert_eq!(v[1], json!({ "name": "parked", "version": 2, "inFlight": 2, "blocked": 0, "suspendedAt": { &k2: 2 } }));
    fixed.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_show_unreadable_entries() {
    let env = Env::new().await;
    env.durable(&["dead-letters"]).await.ok();
    let none = env.durable(&["dead-letters", "--json"]).await.ok().json();
    assert_eq!(none, json!({ "deadLetters": [] }));
    // A control message from a newer release, numbered as the backend numbers entries.
    let mut c = redis::Client::open(env.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let tag = format!("{{{HUB}:p0}}");
    let n: u64 = redis::cmd("INCR").arg(format!("{tag}:seq")).query_async(&mut c).await.unwrap();
    let _: String = redis::cmd("XADD")
        .arg(format!("{tag}:ctl"))
        .arg(format!("{n}-0"))
        .arg("i")
        .arg("someone")
        .arg("m")
        .arg(r#"{"FromTheFuture":{}}"#)
        .query_async(&mut c)
        .await
        .unwrap();
    let id = env.durable(&["start", "hello_cities", "--input", r#"["Oslo"]"#]).await.ok().stdout.trim().to_string();
    let s = env.poll_json(&["status", &id], finished).await;
    assert_eq!(s["runtimeStatus"], "Completed", "{s}");
    let d = env.poll_json(&["dead-letters"], |v| v["deadLetters"].as_array().is_some_and(|a| !a.is_empty())).await;
    let d0 = &d["deadLetters"][0];
    assert_eq!(d0["stream"], format!("{tag}:ctl"), "{d}");
    assert_eq!(d0["entryId"], format!("{n}-0"));
    assert_eq!(d0["partition"], 0);
    assert!(d0["reason"].as_str().unwrap().contains("FromTheFuture"), "{d}");
    assert_eq!(d0["fields"]["m"], r#"{"FromTheFuture":{}}"#);
    let table = env.durable(&["dead-letters"]).await.ok().stdout;
    assert!(
        table.starts_with("TIME") && table.contains("FromTheFuture") && table.contains(&format!("{n}-0")),
        "{table}"
    );

    let url = env.url();
    let served = tokio::task::spawn_blocking(move || Served::start(&url, &["--token", "t0k"])).await.unwrap();
    assert_eq!(http(&served.addr, "GET", "/dead-letters", &[], None).status, 401);
    let r = http(&served.addr, "GET", "/dead-letters?top=5", &[("Authorization", "Bearer t0k")], None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["deadLetters"][0]["entryId"], format!("{n}-0"), "{r:?}");
    drop(served);
    env.shutdown().await;
}
