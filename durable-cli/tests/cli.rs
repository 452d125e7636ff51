//! The real `durable` binary against a redis-server of the test's own, with a worker on the
//! same task hub: every subcommand, its output (tables and `--json`) and its exit code.

mod common;

use common::*;
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

    env.durable(&["entity", "signal", "counter", "c1", "add", "--input", "ten"]).await.fails(2, "--input");
    env.durable(&["entity", "signal", "co@unter", "c1", "add"]).await.fails(2, "must not contain `@`");
    env.durable(&["entity", "get", "counter"]).await.fails(2, "KEY");
    env.durable(&["purge", "@counter@c1"]).await.fails(2, "entity");
    env.shutdown().await;
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
    for cmd in ["serve", "start", "status", "history", "list", "raise", "terminate", "purge", "entity"] {
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
