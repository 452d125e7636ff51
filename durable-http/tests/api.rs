//! Every endpoint and every error status of the HTTP API, through the router (tower
//! `oneshot`), on both backends.

#![allow(missing_docs)]

mod common;

use axum::Router;
use common::{Env, call};
use durable::prelude::*;
use durable_http::HttpConfig;
use durable_test_support::backends::TestBackend;
use serde_json::{Value, json};

async fn start_then_status_until_completed<B: TestBackend>(backend: B) {
    let env = Env::new(backend, HttpConfig::new()).await;
    let r = env.call("POST", "/orchestrations/hello_cities", Some(r#"["Paris","Rome"]"#)).await;
    assert_eq!(r.status, 202, "{r:?}");
    let id = r.json["id"].as_str().unwrap().to_string();
    let loc = r.header("location").unwrap().to_string();
    assert_eq!(loc, format!("/instances/{id}"), "no Host header: relative URLs");
    for (k, suffix) in [
        ("statusQueryGetUri", "".to_string()),
        ("sendEventPostUri", "/raiseEvent/{eventName}".to_string()),
        ("terminatePostUri", "/terminate?reason={text}".to_string()),
        ("suspendPostUri", "/suspend?reason={text}".to_string()),
        ("resumePostUri", "/resume?reason={text}".to_string()),
        ("rewindPostUri", "/rewind?reason={text}".to_string()),
        ("purgeHistoryDeleteUri", "".to_string()),
    ] {
        assert_eq!(r.json[k], format!("{loc}{suffix}"), "{k}");
    }
    env.finish(&id).await;
    let r = env.call("GET", &loc, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["runtimeStatus"], "Completed");
    assert_eq!(r.json["name"], "hello_cities");
    assert_eq!(r.json["instanceId"], id);
    assert_eq!(r.json["output"], json!(["Hello Paris!", "Hello Rome!"]));
    assert!(r.json.get("input").is_none(), "input only when asked");
    assert!(r.json.get("history").is_none(), "history only when asked");
    assert!(r.json["createdTime"].as_str().unwrap().ends_with('Z'));
    assert!(r.json["lastUpdatedTime"].as_str().unwrap().contains('T'));
    assert!(r.json["error"].is_null());

    let r = env.call("GET", &format!("{loc}?showHistory=true&showInput=true&showState=true"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["input"], json!(["Paris", "Rome"]));
    assert!(r.json["state"].is_null(), "a finished instance has no live state");
    let history = r.json["history"].as_array().unwrap();
    assert_eq!(history[0]["eventType"], "ExecutionStarted");
    assert_eq!(history[0]["input"], json!(["Paris", "Rome"]));
    let last = history.last().unwrap();
    assert_eq!(last["eventType"], "ExecutionCompleted");
    assert_eq!(last["output"], json!(["Hello Paris!", "Hello Rome!"]));
    assert!(history.iter().any(|e| e["eventType"] == "TaskCompleted" && e["result"] == "Hello Rome!"));
    env.shutdown().await;
}

async fn start_honours_an_incoming_traceparent<B: TestBackend>(backend: B) {
    let env = Env::new(backend, HttpConfig::new()).await;
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let headers = [("traceparent", caller), ("content-type", "application/json")];
    let r = call(&env.app, "POST", "/orchestrations/hello_cities", Some(r#"["Oslo"]"#), &headers).await;
    assert_eq!(r.status, 202, "{r:?}");
    let id = r.json["id"].as_str().unwrap().to_string();
    let trace = env.client.status(&id).await.unwrap().unwrap().trace.expect("a trace context is recorded");
    assert_eq!(trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736", "the caller's trace");
    assert_ne!(trace.span_id_hex(), "00f067aa0ba902b7", "a child of the caller's span");
    // Without a header (or with a malformed one), the instance starts a trace of its own.
    for headers in [&[][..], &[("traceparent", "00-nonsense")][..]] {
        let r = call(&env.app, "POST", "/orchestrations/hello_cities", Some(r#"["Oslo"]"#), headers).await;
        assert_eq!(r.status, 202, "{r:?}");
        let id = r.json["id"].as_str().unwrap().to_string();
        let own = env.client.status(&id).await.unwrap().unwrap().trace.expect("a trace context is recorded");
        assert_ne!(own.trace_id, trace.trace_id);
    }
    env.shutdown().await;
}

async fn empty_body_is_null_input<B: TestBackend>(backend: B) {
    let env = Env::new(backend, HttpConfig::new()).await;
    for body in [None, Some(""), Some("  \n"), Some("null")] {
        let r = env.call("POST", "/orchestrations/hello_cities", body).await;
        assert_eq!(r.status, 202, "{body:?}: {r:?}");
        let id = r.json["id"].as_str().unwrap().to_string();
        env.finish(&id).await;
        let r = env.call("GET", &format!("/instances/{id}"), None).await;
        assert_eq!(r.json["output"], json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"]));
    }
    env.shutdown().await;
}

async fn urls_use_host_prefix_and_base_url<B: TestBackend>(backend: B) {
    let env = Env::new(backend.clone(), HttpConfig::new()).await;
    let nested = Router::new().nest("/api/durable", env.app.clone());
    let r = call(
        &nested,
        "POST",
        "/api/durable/orchestrations/approval?instanceId=a%2Fb%20c",
        Some("\"x\""),
        &[("host", "example.com:8080")],
    )
    .await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.json["id"], "a/b c");
    let loc = r.header("location").unwrap();
    assert_eq!(loc, "http://example.com:8080/api/durable/instances/a%2Fb%20c");
    let r = call(&nested, "GET", "/api/durable/instances/a%2Fb%20c", None, &[]).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.json["instanceId"], "a/b c");
    // A host header with odd characters is not echoed: relative URLs instead.
    let r =
        call(&nested, "POST", "/api/durable/orchestrations/approval", Some("\"x\""), &[("host", "evil.com/x?y")]).await;
    assert!(r.header("location").unwrap().starts_with("/api/durable/instances/"), "{r:?}");

    let env2 = Env::new(backend, HttpConfig::new().with_base_url("https://durable.example.com/v1/")).await;
    let r = env2.call("POST", "/orchestrations/approval?instanceId=x", Some("\"x\"")).await;
    assert_eq!(r.header("location"), Some("https://durable.example.com/v1/instances/x"));
    assert_eq!(r.json["sendEventPostUri"], "https://durable.example.com/v1/instances/x/raiseEvent/{eventName}");
    env.shutdown().await;
    env2.shutdown().await;
}

async fn start_errors<B: TestBackend>(backend: B) {
    let env =
        Env::with_client(backend, HttpConfig::new().with_max_body_bytes(200), |c| c.with_max_payload_bytes(100)).await;
    let r = env.call("POST", "/orchestrations/approval?instanceId=dup", Some("\"a\"")).await;
    assert_eq!(r.status, 202);
    let msg = env
        .call("POST", "/orchestrations/approval?instanceId=dup", Some("\"a\""))
        .await
        .expect_error(409, "InstanceAlreadyExists")
        .to_string();
    assert!(msg.contains("dup"), "{msg}");

    let msg = env
        .call("POST", "/orchestrations/hello_cities", Some("[\"Paris\","))
        .await
        .expect_error(400, "BadJson")
        .to_string();
    assert!(msg.contains("not valid JSON"), "{msg}");
    env.call("POST", "/orchestrations/hello_cities", Some("nope")).await.expect_error(400, "BadJson");
    let long = "x".repeat(300);
    let msg = env
        .call("POST", &format!("/orchestrations/hello_cities?instanceId={long}"), None)
        .await
        .expect_error(400, "InvalidInstanceId")
        .to_string();
    assert!(msg.contains("256"), "{msg}");
    env.call("POST", "/orchestrations/hello_cities?instanceId=", None).await.expect_error(400, "InvalidInstanceId");
    env.call("POST", "/orchestrations/hello_cities?instanceId=%01", None).await.expect_error(400, "InvalidInstanceId");
    env.call("POST", "/orchestrations/hello_cities?instanceId=@counter@k", None)
        .await
        .expect_error(400, "InvalidInstanceId");
    // Over the HTTP body limit, then over the client's payload limit.
    let big = format!("\"{}\"", "y".repeat(300));
    env.call("POST", "/orchestrations/approval", Some(&big)).await.expect_error(413, "PayloadTooLarge");
    let medium = format!("\"{}\"", "y".repeat(150));
    let msg = env
        .call("POST", "/orchestrations/approval", Some(&medium))
        .await
        .expect_error(413, "PayloadTooLarge")
        .to_string();
    assert!(msg.contains("100 bytes"), "{msg}");
    // Wrong-shaped query.
    env.call("POST", "/orchestrations/approval?instanceId=a&instanceId=b", Some("\"x\""))
        .await
        .expect_error(400, "BadQuery");
    assert_eq!(
        env.client.list(Default::default()).await.unwrap().instances.len(),
        1,
        "no instance was created by a refused request"
    );
    env.shutdown().await;
}

async fn unknown_orchestrator_names<B: TestBackend>(backend: B) {
    // Without a list of names: accepted, and the instance fails saying why.
    let env = Env::new(backend.clone(), HttpConfig::new()).await;
    let r = env.call("POST", "/orchestrations/nope", None).await;
    assert_eq!(r.status, 202);
    let id = r.json["id"].as_str().unwrap().to_string();
    env.finish(&id).await;
    let r = env.call("GET", &format!("/instances/{id}"), None).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.json["runtimeStatus"], "Failed");
    assert!(r.json["error"].as_str().unwrap().contains("nope"), "{r:?}");
    env.shutdown().await;

    // With one: 404 listing the known names, which the OpenAPI document enumerates.
    let env = Env::new(backend, HttpConfig::new().with_orchestrators(["hello_cities", "approval"])).await;
    let doc = env.call("GET", "/openapi.json", None).await.json;
    let name = &doc["paths"]["/orchestrations/{name}"]["post"]["parameters"][0];
    assert_eq!(name["schema"]["enum"], json!(["hello_cities", "approval"]), "{name}");
    let r = env.call("POST", "/orchestrations/nope", None).await;
    r.expect_error(404, "UnknownOrchestrator");
    assert_eq!(r.json["known"], json!(["hello_cities", "approval"]));
    assert_eq!(env.call("POST", "/orchestrations/hello_cities", None).await.status, 202);
    env.shutdown().await;
}

async fn running_instance_status_state_and_events<B: TestBackend>(backend: B) {
    let env = Env::new(backend, HttpConfig::new()).await;
    let r = env.call("POST", "/orchestrations/approval?instanceId=ap1", Some("\"a raise\"")).await;
    assert_eq!(r.status, 202);
    // Until it waits for the event (its first step asks, the next one waits).
    let r = env.poll("/instances/ap1?showState=true", |r| r.json["customStatus"] == "waiting").await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.header("location"), Some("/instances/ap1"));
    assert_eq!(r.json["runtimeStatus"], "Running");
    assert_eq!(r.json["customStatus"], "waiting");
    let state = &r.json["state"];
    assert!(state["at"].is_string() && state["pc"].is_u64(), "{state}");
    assert_eq!(state["locals"]["asked"], "asked: a raise", "{state}");

    // Event errors first.
    env.call("POST", "/instances/ap1/raiseEvent/approve", Some("{bad")).await.expect_error(400, "BadJson");
    env.call("POST", "/instances/nope/raiseEvent/approve", Some("1")).await.expect_error(404, "InstanceNotFound");
    env.call("POST", "/instances/@counter@x/raiseEvent/approve", Some("1")).await.expect_error(404, "InstanceNotFound");
    let r = env.call("POST", "/instances/ap1/raiseEvent/approve", Some(r#"{"ok":true}"#)).await;
    assert_eq!(r.status, 202, "{r:?}");
    env.finish("ap1").await;
    let r = env.call("GET", "/instances/ap1", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["output"], json!({ "asked": "asked: a raise", "answer": { "ok": true } }));
    let msg =
        env.call("POST", "/instances/ap1/raiseEvent/approve", None).await.expect_error(409, "InvalidState").to_string();
    assert!(msg.contains("finished"), "{msg}");
    env.shutdown().await;
}

async fn status_errors<B: TestBackend>(backend: B) {
    let env = Env::new(backend, HttpConfig::new()).await;
    env.call("GET", "/instances/nope", None).await.expect_error(404, "InstanceNotFound");
    env.call("GET", &format!("/instances/{}", "z".repeat(400)), None).await.expect_error(404, "InstanceNotFound");
    env.call("GET", "/instances/@counter@k", None).await.expect_error(404, "InstanceNotFound");
    env.call("GET", "/instances/x?showHistory=maybe", None).await.expect_error(400, "BadQuery");
    env.call("GET", "/instances/%FF", None).await.expect_error(400, "BadPath");
    env.shutdown().await;
}

async fn suspend_resume_terminate<B: TestBackend>(backend: B) {
    let env = Env::new(backend, HttpConfig::new()).await;
    env.call("POST", "/orchestrations/approval?instanceId=s1", Some("\"x\"")).await;
    assert_eq!(env.call("POST", "/instances/s1/suspend?reason=maintenance", None).await.status, 202);
    let r = env.poll("/instances/s1", |r| r.json["runtimeStatus"] == "Suspended").await;
    assert_eq!(r.status, 202);
    assert_eq!(r.json["reason"], "maintenance");
    assert_eq!(env.call("POST", "/instances/s1/resume?reason=done", None).await.status, 202);
    env.poll("/instances/s1", |r| r.json["runtimeStatus"] == "Running").await;
    assert_eq!(env.call("POST", "/instances/s1/terminate?reason=enough", None).await.status, 202);
    env.finish("s1").await;
    let r = env.call("GET", "/instances/s1?showHistory=true", None).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.json["runtimeStatus"], "Terminated");
    let kinds: Vec<&str> =
        r.json["history"].as_array().unwrap().iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    for k in ["ExecutionSuspended", "ExecutionResumed", "ExecutionTerminated"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    // Bulk: a dry run counts, then every live match is terminated.
    env.call("POST", "/orchestrations/approval?instanceId=bulk1", Some("\"z\"")).await;
    env.poll("/instances/bulk1", |r| r.json["runtimeStatus"] == "Running").await;
    let r = env.call("POST", "/instances/terminate?instanceIdPrefix=bulk&dryRun=true", None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json, json!({ "dryRun": true, "instancesMatched": 1 }));
    let r = env.call("POST", "/instances/terminate?instanceIdPrefix=bulk&reason=sweep", None).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.json["instancesTerminated"], 1);
    env.finish("bulk1").await;
    env.call("POST", "/instances/terminate?runtimeStatus=Completed", None).await.expect_error(400, "BadQuery");
    let r = env.call("DELETE", "/instances?instanceIdPrefix=bulk&dryRun=true", None).await;
    assert_eq!(r.json, json!({ "dryRun": true, "instancesMatched": 1 }), "{r:?}");

    // `recursive=true` answers how many instances it terminated (the CLI's tests cover the
    // sub-orchestrations it finds).
    env.call("POST", "/orchestrations/approval?instanceId=s2", Some("\"y\"")).await;
    let r = env.call("POST", "/instances/s2/terminate?reason=all&recursive=true", None).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.json["instancesTerminated"], 1, "{r:?}");
    env.finish("s2").await;
    for op in ["terminate", "suspend", "resume"] {
        env.call("POST", &format!("/instances/s1/{op}"), None).await.expect_error(409, "InvalidState");
        env.call("POST", &format!("/instances/nope/{op}?reason=x"), None).await.expect_error(404, "InstanceNotFound");
        env.call("POST", &format!("/instances/s1/{op}?reason=a&reason=b"), None).await.expect_error(400, "BadQuery");
    }
    env.shutdown().await;
}

async fn rewind_a_failed_instance<B: TestBackend>(backend: B) {
    let env = Env::new(backend, HttpConfig::new()).await;
    // The flaky activity fails once per key in this process: a key of this run's own.
    static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let k = format!("rw{}", RUN.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
    env.call("POST", &format!("/orchestrations/uses_flaky?instanceId={k}"), Some(&format!("\"{k}\""))).await;
    env.finish(&k).await;
    let r = env.call("GET", &format!("/instances/{k}"), None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["runtimeStatus"], "Failed");
    assert!(r.json["error"].as_str().unwrap().contains("the first attempt fails"), "{r:?}");
    assert_eq!(env.call("POST", &format!("/instances/{k}/rewind?reason=fixed"), None).await.status, 202);
    let r = env.poll(&format!("/instances/{k}"), |r| r.status == 200).await;
    assert_eq!(r.json["output"], format!("ok {k}"));
    env.call("POST", &format!("/instances/{k}/rewind"), None).await.expect_error(409, "InvalidState");
    env.call("POST", "/instances/nope/rewind", None).await.expect_error(404, "InstanceNotFound");
    env.shutdown().await;
}

async fn list_with_filters_and_continuation<B: TestBackend>(backend: B) {
    let env = Env::new(backend, HttpConfig::new()).await;
    for i in 0..5 {
        env.call("POST", &format!("/orchestrations/hello_cities?instanceId=done{i}"), Some("[]")).await;
        env.finish(&format!("done{i}")).await;
    }
    env.call("POST", "/orchestrations/approval?instanceId=live", Some("\"x\"")).await;
    // An entity exists too: it is not listed as an instance.
    env.call("POST", "/entities/counter/k?op=add", Some("1")).await;
    env.poll("/entities/counter/k", |r| r.status == 200).await;

    let r = env.call("GET", "/instances", None).await;
    assert_eq!(r.status, 200);
    let ids: Vec<&str> =
        r.json["instances"].as_array().unwrap().iter().map(|s| s["instanceId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 6, "{ids:?}");
    assert!(r.json["continuationToken"].is_null());
    assert!(r.header("x-ms-continuation-token").is_none());
    // By instance id prefix.
    let r = env.call("GET", "/instances?instanceIdPrefix=li", None).await;
    let by_prefix: Vec<&str> =
        r.json["instances"].as_array().unwrap().iter().map(|s| s["instanceId"].as_str().unwrap()).collect();
    assert_eq!(by_prefix, ["live"]);

    // Pages of 2 via the header.
    let mut seen = Vec::new();
    let mut uri = "/instances?runtimeStatus=Completed&top=2".to_string();
    loop {
        let r = env.call("GET", &uri, None).await;
        assert_eq!(r.status, 200, "{r:?}");
        let page = r.json["instances"].as_array().unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|s| s["instanceId"].as_str().unwrap().to_string()));
        match r.header("x-ms-continuation-token") {
            Some(t) => {
                assert_eq!(r.json["continuationToken"], t);
                uri = format!("/instances?runtimeStatus=Completed&top=2&continuationToken={t}");
            }
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["done0", "done1", "done2", "done3", "done4"]);

    let r = env.call("GET", "/instances?runtimeStatus=running,Pending&showInput=true", None).await;
    let page = r.json["instances"].as_array().unwrap();
    assert_eq!(page.len(), 1, "{r:?}");
    assert_eq!(page[0]["input"], "x");
    let r = env.call("GET", "/instances?name=approval", None).await;
    assert_eq!(r.json["instances"].as_array().unwrap().len(), 1);
    let r = env.call("GET", "/instances?createdTimeFrom=2999-01-01T00:00:00Z", None).await;
    assert_eq!(r.json["instances"].as_array().unwrap().len(), 0);
    let r = env
        .call(
            "GET",
            "/instances?createdTimeFrom=2000-01-01T00:00:00%2B02:00&createdTimeTo=2999-01-01T00:00:00.5Z",
            None,
        )
        .await;
    assert_eq!(r.json["instances"].as_array().unwrap().len(), 6, "{r:?}");

    env.call("GET", "/instances?runtimeStatus=Sleeping", None).await.expect_error(400, "BadQuery");
    env.call("GET", "/instances?createdTimeFrom=yesterday", None).await.expect_error(400, "BadQuery");
    env.call("GET", "/instances?top=0", None).await.expect_error(400, "BadQuery");
    env.call("GET", "/instances?top=-1", None).await.expect_error(400, "BadQuery");
    env.call("GET", "/instances?top=1001", None).await.expect_error(400, "BadQuery");
    let r = env.call("GET", "/instances?top=1&continuationToken=", None).await;
    assert_eq!(r.json["instances"][0]["instanceId"], ids[0], "an empty token is the first page");
    env.call("GET", "/instances?continuationToken=xyz", None).await.expect_error(400, "BadContinuationToken");
    // Well-formed hex, but not a token the backend made.
    env.call("GET", "/instances?continuationToken=6e6f7065", None).await.expect_error(400, "BadContinuationToken");
    env.shutdown().await;
}

async fn purge_one_and_many<B: TestBackend>(backend: B) {
    let env = Env::new(backend, HttpConfig::new()).await;
    for i in 0..3 {
        env.call("POST", &format!("/orchestrations/hello_cities?instanceId=p{i}"), Some("[]")).await;
        env.finish(&format!("p{i}")).await;
    }
    env.call("POST", "/orchestrations/approval?instanceId=live", Some("\"x\"")).await;
    env.call("DELETE", "/instances/live", None).await.expect_error(409, "InvalidState");
    let r = env.call("DELETE", "/instances/p0", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["instancesDeleted"], 1);
    env.call("DELETE", "/instances/p0", None).await.expect_error(404, "InstanceNotFound");
    env.call("GET", "/instances/p0", None).await.expect_error(404, "InstanceNotFound");
    env.call("DELETE", "/instances/@counter@k", None).await.expect_error(404, "InstanceNotFound");

    env.call("DELETE", "/instances?runtimeStatus=Bogus", None).await.expect_error(400, "BadQuery");
    env.call("DELETE", "/instances?top=3", None).await.expect_error(400, "BadQuery");
    let r = env.call("DELETE", "/instances?runtimeStatus=Running", None).await;
    assert_eq!(r.json["instancesDeleted"], 0, "running instances are never purged");
    let r = env.call("DELETE", "/instances?createdTimeFrom=2999-01-01T00:00:00Z", None).await;
    assert_eq!(r.json["instancesDeleted"], 0);
    let r = env.call("DELETE", "/instances", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["instancesDeleted"], 2);
    let r = env.call("GET", "/instances", None).await;
    assert_eq!(r.json["instances"].as_array().unwrap().len(), 1, "the running one stays");
    env.shutdown().await;
}

async fn entities<B: TestBackend>(backend: B) {
    let env = Env::new(backend.clone(), HttpConfig::new()).await;
    env.call("GET", "/entities/counter/QConSF2019", None).await.expect_error(404, "EntityNotFound");
    let r = env.call("POST", "/entities/counter/QConSF2019?op=add", Some("10")).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.header("location"), Some("/entities/counter/QConSF2019"));
    let r = env.poll("/entities/counter/QConSF2019", |r| r.status == 200).await;
    assert_eq!(r.json, json!(10));
    env.call("POST", "/entities/counter/QConSF2019?op=add", Some("10")).await;
    env.poll("/entities/counter/QConSF2019", |r| r.json == json!(20)).await;

    // A failing operation leaves the state and is reported.
    env.call("POST", "/entities/counter/QConSF2019?op=add", Some("\"ten\"")).await;
    let r = env.poll("/entities/counter/QConSF2019?showMetadata=true", |r| r.json["lastError"].is_string()).await;
    assert_eq!(r.json["state"], 20);
    assert_eq!(r.json["name"], "counter");
    assert_eq!(r.json["key"], "QConSF2019");
    assert!(r.json["lastModifiedTime"].is_string());
    env.call("POST", "/entities/counter/QConSF2019?op=reset", None).await;
    env.poll("/entities/counter/QConSF2019", |r| r.json == json!(0)).await;

    // Its journal: each operation with its input, sender and outcome, oldest first.
    let r = env.call("GET", "/entities/counter/QConSF2019/history", None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let ops: Vec<(&str, Value)> = r.json["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["operation"].as_str().unwrap(), o["input"].clone()))
        .collect();
    assert_eq!(ops, [("add", json!(10)), ("add", json!(10)), ("add", json!("ten")), ("reset", Value::Null)]);
    assert!(r.json["operations"][2]["error"].is_string() && r.json["operations"][0]["sender"].is_null(), "{r:?}");
    env.call("GET", "/entities/counter/nobody/history", None).await.expect_error(404, "EntityNotFound");

    env.call("POST", "/entities/counter/b?op=add", Some("1")).await;
    env.poll("/entities/counter/b", |r| r.status == 200).await;
    let r = env.call("GET", "/entities?name=counter", None).await;
    assert_eq!(r.status, 200);
    let keys: Vec<&str> = r.json["entities"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["QConSF2019", "b"]);
    let r = env.call("GET", "/entities?top=1", None).await;
    assert_eq!(r.json["entities"].as_array().unwrap().len(), 1);
    let r = env.call("GET", "/entities?name=other", None).await;
    assert_eq!(r.json["entities"], json!([]));

    env.call("POST", "/entities/counter/k", Some("1")).await.expect_error(400, "BadQuery");
    env.call("POST", "/entities/counter/k?op=", Some("1")).await.expect_error(400, "BadQuery");
    env.call("POST", "/entities/counter/k?op=add", Some("{")).await.expect_error(400, "BadJson");
    env.call("POST", "/entities/a@b/k?op=add", Some("1")).await.expect_error(400, "InvalidEntityId");
    env.call("GET", "/entities/a@b/k", None).await.expect_error(400, "InvalidEntityId");
    env.call("GET", "/entities?name=a@b", None).await.expect_error(400, "InvalidEntityId");
    env.call("GET", "/entities?top=zero", None).await.expect_error(400, "BadQuery");
    env.call("POST", &format!("/entities/counter/{}?op=add", "k".repeat(300)), Some("1"))
        .await
        .expect_error(400, "InvalidInstanceId");
    env.call("POST", "/entities/counter/%01?op=add", Some("1")).await.expect_error(400, "InvalidInstanceId");

    let r = env.call("DELETE", "/entities/counter/b", None).await;
    assert_eq!(r.status, 200, "{r:?}");
    env.call("DELETE", "/entities/counter/b", None).await.expect_error(404, "EntityNotFound");
    env.call("GET", "/entities/counter/b", None).await.expect_error(404, "EntityNotFound");
    env.shutdown().await;

    let env =
        Env::with_client(backend, HttpConfig::new().with_entities(["counter"]).with_max_body_bytes(10), |c| c).await;
    let r = env.call("POST", "/entities/other/k?op=add", Some("1")).await;
    r.expect_error(404, "UnknownEntity");
    assert_eq!(r.json["known"], json!(["counter"]));
    env.call("POST", "/entities/counter/k?op=add", Some("12345678901234")).await.expect_error(413, "PayloadTooLarge");
    env.shutdown().await;
}

async fn bearer_token<B: TestBackend>(backend: B) {
    let env = Env::new(backend, HttpConfig::new().with_token("s3cret")).await;
    for uri in ["/healthz", "/instances", "/nowhere", "/openapi.json", "/orchestrations/versions"] {
        let r = env.call("GET", uri, None).await;
        r.expect_error(401, "Unauthorized");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        call(&env.app, "GET", uri, None, &[("authorization", "Bearer wrong")]).await.expect_error(401, "Unauthorized");
        call(&env.app, "GET", uri, None, &[("authorization", "Basic s3cret")]).await.expect_error(401, "Unauthorized");
    }
    let r = call(&env.app, "GET", "/healthz", None, &[("authorization", "Bearer s3cret")]).await;
    assert_eq!(r.status, 200);
    let r = call(&env.app, "GET", "/orchestrations/versions", None, &[("authorization", "Bearer s3cret")]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = call(&env.app, "POST", "/orchestrations/hello_cities", None, &[("authorization", "bearer s3cret")]).await;
    assert_eq!(r.status, 202);
    env.call("POST", "/orchestrations/hello_cities", None).await.expect_error(401, "Unauthorized");
    env.shutdown().await;
}

async fn unknown_routes_and_methods<B: TestBackend>(backend: B) {
    let env = Env::new(backend, HttpConfig::new()).await;
    env.call("GET", "/nowhere", None).await.expect_error(404, "NoRoute");
    env.call("GET", "/instances/a/b/c", None).await.expect_error(404, "NoRoute");
    env.call("PUT", "/instances/x", None).await.expect_error(405, "MethodNotAllowed");
    env.call("GET", "/orchestrations/x", None).await.expect_error(405, "MethodNotAllowed");
    env.shutdown().await;
}

async fn openapi_lists_every_route_and_the_router_answers_each<B: TestBackend>(backend: B) {
    let env = Env::new(backend, HttpConfig::new()).await;
    let r = env.call("GET", "/openapi.json", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["openapi"], "3.0.3");
    for (method, path) in durable_http::openapi::ROUTES {
        assert!(r.json["paths"][path][method]["responses"].is_object(), "{method} {path} is not documented");
        let concrete =
            path.replace("{name}", "counter").replace("{key}", "k").replace("{id}", "x").replace("{event}", "e");
        let resp = env.call(&method.to_uppercase(), &concrete, None).await;
        assert_ne!(resp.json["code"], "NoRoute", "{method} {path} is documented but not routed");
        assert_ne!(resp.status, 405, "{method} {path} is documented but not routed");
        let code = resp.status.as_u16().to_string();
        assert!(
            r.json["paths"][path][method]["responses"].get(&code).is_some(),
            "{method} {concrete} answered {code}, which the document does not list"
        );
    }
    env.shutdown().await;
}

async fn schedules_create_get_list_pause_resume_delete<B: TestBackend>(backend: B) {
    let env = Env::new(backend, HttpConfig::new()).await;
    // Bad input: 400 naming the field; nothing is created.
    let bad = env.call("POST", "/schedules/s", Some(r#"{"cron": "0 25 * * *", "orchestrator": "hello_cities"}"#)).await;
    assert!(bad.expect_error(400, "InvalidSchedule").contains("hour field"), "{bad:?}");
    let bad = env
        .call("POST", "/schedules/s", Some(r#"{"cron": "@daily", "orchestrator": "x", "timezone": "Europe/Nowhere"}"#))
        .await;
    assert!(bad.expect_error(400, "InvalidSchedule").contains("Europe/Nowhere"), "{bad:?}");
    env.call("POST", "/schedules/s", Some(r#"{"cron": "@daily"}"#)).await.expect_error(400, "BadBody");
    env.call("POST", "/schedules/s", None).await.expect_error(400, "BadBody");
    let r = env.call("GET", "/schedules", None).await;
    assert_eq!((r.status.as_u16(), r.json.clone()), (200, json!({ "schedules": [] })));

    let body = r#"{"cron": "0 2 * * *", "timezone": "Europe/Paris", "orchestrator": "hello_cities",
        "input": ["Paris"], "overlap": "buffer-one", "catchUp": "run-all", "catchUpWindowSecs": 3600}"#;
    let r = env.call("POST", "/schedules/nightly", Some(body)).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!((r.json["id"].as_str(), r.json["cron"].as_str()), (Some("nightly"), Some("0 2 * * *")));
    assert_eq!((r.json["overlap"].as_str(), r.json["catchUp"].as_str()), (Some("buffer-one"), Some("run-all")));
    assert_eq!((r.json["catchUpWindowSecs"].as_u64(), r.json["input"].clone()), (Some(3600), json!(["Paris"])));
    env.call("POST", "/schedules/nightly", Some(body)).await.expect_error(409, "ScheduleAlreadyExists");
    let r = env.poll("/schedules/nightly", |r| r.json["nextFire"].is_string()).await;
    assert!(r.json["nextFire"].as_str().unwrap().ends_with(":00:00.000Z"), "{r:?}");
    let r = env.call("GET", "/schedules", None).await;
    assert_eq!(r.json["schedules"][0]["id"], "nightly", "{r:?}");

    assert_eq!(env.call("POST", "/schedules/nightly/pause", None).await.status, 202);
    env.poll("/schedules/nightly", |r| r.json["paused"] == true).await;
    assert_eq!(env.call("POST", "/schedules/nightly/resume", None).await.status, 202);
    env.poll("/schedules/nightly", |r| r.json["paused"] == false).await;
    let r = env.call("DELETE", "/schedules/nightly", None).await;
    assert_eq!((r.status.as_u16(), r.json.clone()), (200, json!({ "schedulesDeleted": 1 })));
    env.call("GET", "/schedules/nightly", None).await.expect_error(404, "ScheduleNotFound");
    env.call("POST", "/schedules/nightly/pause", None).await.expect_error(404, "ScheduleNotFound");
    env.call("DELETE", "/schedules/nightly", None).await.expect_error(404, "ScheduleNotFound");
    env.shutdown().await;
}

/// Version 3 of `approval`, which the test's worker does not register: its instances wait,
/// blocked, until a worker that does runs.
#[orchestrator(name = "approval", version = 3)]
async fn approval_v3(ctx: OrchestrationContext, request: String) -> Result<Value, OrchestrationError> {
    let answer = ctx.wait_for_event::<Value>("approve").await?;
    Ok(json!({ "request": request, "answer": answer }))
}

async fn versions_in_flight_and_blocked_instances<B: TestBackend>(backend: B) {
    let env = Env::new(backend, HttpConfig::new()).await;
    let r = env.call("GET", "/orchestrations/versions", None).await;
    assert_eq!((r.status.as_u16(), r.json.clone()), (200, json!([])), "{r:?}");
    env.call("POST", "/orchestrations/hello_cities?instanceId=done", None).await;
    env.finish("done").await;
    for id in ["w1", "w2"] {
        assert_eq!(
            env.call("POST", &format!("/orchestrations/approval?instanceId={id}"), Some("\"x\"")).await.status,
            202
        );
        env.poll(&format!("/instances/{id}?showState=true"), |r| r.json["state"].is_object()).await;
    }
    env.client.start_with_id(approval_v3, "v3", "y".to_string()).await.unwrap();

    // The status says which version an instance runs on and whether it is blocked.
    let r = env.poll("/instances/v3", |r| r.json["blocked"] == true).await;
    assert_eq!(r.json["version"], 3, "{r:?}");
    let reason = r.json["reason"].as_str().unwrap();
    assert!(reason.contains("version 3 of orchestrator `approval` is not registered"), "{reason}");
    let r = env.call("GET", "/instances/w1", None).await;
    assert_eq!((r.json["version"].clone(), r.json["blocked"].clone()), (json!(1), json!(false)), "{r:?}");
    let r = env.call("GET", "/instances/done", None).await;
    assert_eq!((r.json["version"].clone(), r.json["blocked"].clone()), (json!(1), json!(false)), "{r:?}");
    let r = env.call("GET", "/instances?name=approval", None).await;
    let listed: Vec<(Value, Value)> =
        r.json["instances"].as_array().unwrap().iter().map(|s| (s["version"].clone(), s["blocked"].clone())).collect();
    assert_eq!(listed.len(), 3, "{r:?}");
    assert!(listed.contains(&(json!(3), json!(true))) && listed.contains(&(json!(1), json!(false))), "{listed:?}");

    // Per name and version: in flight, blocked, where they wait (finished instances are not in
    // flight; the blocked one never ran, so it waits nowhere yet).
    let r = env.call("GET", "/orchestrations/versions", None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json.as_array().unwrap();
    assert_eq!(v.len(), 2, "{r:?}");
    assert_eq!(
        (&v[0]["name"], &v[0]["version"], &v[0]["inFlight"], &v[0]["blocked"]),
        (&json!("approval"), &json!(1), &json!(2), &json!(0)),
        "{r:?}"
    );
    let at = v[0]["suspendedAt"].as_object().unwrap();
    assert_eq!(at.len(), 1, "{r:?}");
    let (key, n) = at.iter().next().unwrap();
    assert!(key.starts_with("ctx.wait_for_event::<Value>(\"approve\") (line "), "{key}");
    assert_eq!(n, 2);
    assert_eq!(v[1], json!({ "name": "approval", "version": 3, "inFlight": 1, "blocked": 1, "suspendedAt": {} }));

    // The route takes the path an orchestrator named `versions` would start at: POST still does.
    let r = env.call("POST", "/orchestrations/versions?instanceId=named", None).await;
    assert_eq!((r.status.as_u16(), r.json["id"].clone()), (202, json!("named")), "{r:?}");
    env.finish("named").await;
    let r = env.call("GET", "/instances/named", None).await;
    assert!(r.json["error"].as_str().unwrap().contains("unknown orchestrator `versions`"), "{r:?}");
    env.call("DELETE", "/orchestrations/versions", None).await.expect_error(405, "MethodNotAllowed");

    // The OpenAPI document describes the route and the new status fields.
    let doc = env.call("GET", "/openapi.json", None).await.json;
    let op = &doc["paths"]["/orchestrations/versions"]["get"];
    assert_eq!(
        op["responses"]["200"]["content"]["application/json"]["schema"]["items"]["$ref"],
        "#/components/schemas/VersionSummary"
    );
    let schemas = &doc["components"]["schemas"];
    for field in ["name", "version", "inFlight", "blocked", "suspendedAt"] {
        assert!(schemas["VersionSummary"]["properties"][field].is_object(), "VersionSummary.{field}");
    }
    assert_eq!(schemas["InstanceStatus"]["properties"]["version"]["type"], "integer");
    assert_eq!(schemas["InstanceStatus"]["properties"]["blocked"]["type"], "boolean");
    env.shutdown().await;
}

async fn healthz_and_metrics<B: TestBackend>(backend: B) {
    let env = Env::new(backend, HttpConfig::new()).await;
    let r = env.call("GET", "/healthz", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["status"], "ok");
    env.call("POST", "/orchestrations/hello_cities?instanceId=m1", None).await;
    env.finish("m1").await;
    env.call("POST", "/orchestrations/approval?instanceId=m2", Some("\"x\"")).await;
    env.call("GET", "/instances/nope", None).await;
    let r = env.call("GET", "/metrics", None).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let t = &r.text;
    assert!(
        t.contains("durable_http_requests_total{method=\"POST\",route=\"/orchestrations/{name}\",status=\"202\"} 2"),
        "{t}"
    );
    assert!(
        t.contains("durable_http_requests_total{method=\"GET\",route=\"/instances/{id}\",status=\"404\"} 1"),
        "{t}"
    );
    assert!(t.contains("durable_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\"} 1"), "{t}");
    assert!(t.contains("durable_instances{status=\"Completed\"} 1"), "{t}");
    assert!(
        t.contains("durable_instances{status=\"Running\"} 1") || t.contains("durable_instances{status=\"Pending\"} 1"),
        "{t}"
    );
    // The worker runs in this process: its counters and the backend's queues are there.
    let value = |name: &str| -> u64 {
        t.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing:\n{t}"))
            .parse()
            .unwrap()
    };
    assert!(value("durable_steps_total") >= 4, "{t}");
    assert!(value("durable_activities_completed_total") >= 3, "{t}");
    assert!(value("durable_instances_completed_total") >= 1, "{t}");
    assert!(value("durable_step_seconds_count") >= 4, "{t}");
    assert!(t.contains("durable_queue_timers "), "{t}");
    assert!(t.contains("durable_payloads_refused_total "), "{t}");
    assert!(t.contains("durable_instances_blocked "), "{t}");
    assert!(t.contains("durable_lease_changes_total{change=\"acquired\"} "), "{t}");
    // Per-partition depths and the oldest message's age on Redis (partitioned).
    if t.contains("durable_partition_queue_messages{") {
        assert!(t.contains("durable_partition_oldest_message_age_seconds{partition=\"0\"} "), "{t}");
        assert!(t.contains("durable_queue_oldest_message_age_seconds "), "{t}");
    }
    assert!(t.contains("durable_activity_seconds_bucket{le=\"+Inf\"}"), "{t}");
    env.shutdown().await;
}

durable_test_support::on_both_backends! {
    #[tokio::test]
    start_then_status_until_completed,
    start_honours_an_incoming_traceparent,
    empty_body_is_null_input,
    urls_use_host_prefix_and_base_url,
    start_errors,
    unknown_orchestrator_names,
    running_instance_status_state_and_events,
    status_errors,
    suspend_resume_terminate,
    rewind_a_failed_instance,
    list_with_filters_and_continuation,
    purge_one_and_many,
    entities,
    bearer_token,
    unknown_routes_and_methods,
    openapi_lists_every_route_and_the_router_answers_each,
    schedules_create_get_list_pause_resume_delete,
    versions_in_flight_and_blocked_instances,
    healthz_and_metrics,
}
