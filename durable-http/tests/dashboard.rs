//! The dashboard's static assets: served at `/` without a token, and under a nesting prefix.

mod common;

use common::*;
use durable::backend::Memory;
use durable_http::HttpConfig;

#[tokio::test]
async fn assets_need_no_token_and_the_api_still_does() {
    let env = Env::new(Memory::new(), HttpConfig::new().with_token("s3cret")).await;
    let r = env.call("GET", "/", None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r.text.contains(r#"<script src="dashboard.js">"#), "relative asset URLs: {}", r.text);
    let js = env.call("GET", "/dashboard.js", None).await;
    assert_eq!((js.status.as_u16(), js.header("content-type")), (200, Some("text/javascript; charset=utf-8")));
    // Only relative URLs: no fetch of an absolute path (it would escape a nesting prefix).
    assert!(!js.text.contains("fetch(\"/") && !js.text.contains("api(\"GET\", \"/"), "absolute URL in the script");
    let css = env.call("GET", "/dashboard.css", None).await;
    assert_eq!((css.status.as_u16(), css.header("content-type")), (200, Some("text/css; charset=utf-8")));
    env.call("GET", "/instances", None).await.expect_error(401, "Unauthorized");
    env.shutdown().await;
}

#[tokio::test]
async fn nested_under_a_prefix() {
    let env = Env::new(Memory::new(), HttpConfig::new()).await;
    let app = axum::Router::new().nest("/durable", env.app.clone());
    // axum routes `/durable` (not `/durable/`): the page's base makes its relative URLs
    // resolve under the prefix.
    let r = call(&app, "GET", "/durable", None, &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.text.contains(r#"<base href="durable/">"#), "{}", r.text);
    let r = env.call("GET", "/", None).await;
    assert!(r.text.contains(r#"<base href="./">"#), "{}", r.text);
    let r = call(&app, "GET", "/durable/dashboard.js", None, &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = call(&app, "GET", "/durable/instances", None, &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    env.shutdown().await;
}

/// The part of the script between two section comments (`// ---------- name ----------`).
fn section<'a>(js: &'a str, name: &str) -> &'a str {
    let start = js.find(&format!("// ---------- {name} ----------")).unwrap_or_else(|| panic!("no {name} section"));
    let rest = &js[start..];
    let end = rest[12..].find("// ---------- ").map_or(rest.len(), |e| e + 12);
    &rest[..end]
}

/// The Schedules tab: linked from the page, routed by the script, and each API call it makes
/// (list, create, pause, resume, delete, a run's status) is a route that answers, with the
/// fields it shows.
#[tokio::test]
async fn the_schedules_tab_calls_routes_that_exist() {
    let env = Env::new(Memory::new(), HttpConfig::new()).await;
    let page = env.call("GET", "/", None).await;
    assert!(page.text.contains(r##"<a href="#/schedules" id="nav-schedules">Schedules</a>"##), "{}", page.text);
    let js = env.call("GET", "/dashboard.js", None).await.text;
    assert!(js.contains(r#"else if (tab === "schedules") viewSchedules(view);"#), "the tab is routed");
    let tab = section(&js, "schedules");
    assert!(tab.contains("function viewSchedules(view)"), "{tab}");

    // Create, as the tab's form does.
    let create = r#"api("POST", "schedules/" + enc(cId.value.trim()), spec)"#;
    assert!(tab.contains(create), "the tab creates with {create}");
    let spec = r#"{"cron": "* * * * *", "orchestrator": "hello_cities", "input": ["Oslo"], "overlap": "skip", "catchUp": "run-last"}"#;
    let r = env.call("POST", "/schedules/tab", Some(spec)).await;
    assert_eq!(r.status, 201, "{r:?}");

    // The list, with every field the tab shows.
    assert!(tab.contains(r#"api("GET", "schedules")"#), "the tab lists with GET schedules");
    let r = env.poll("/schedules", |r| r.json["schedules"][0]["nextFire"].is_string()).await;
    let s = &r.json["schedules"][0];
    for field in ["id", "cron", "timezone", "orchestrator", "paused", "runtimeStatus", "nextFire", "lastRun", "running"]
    {
        assert!(tab.contains(&format!("s.{field}")), "the tab shows {field}");
        assert!(s.get(field).is_some(), "GET /schedules has no {field}: {s}");
    }
    assert_eq!(
        (s["id"].as_str(), s["timezone"].as_str(), s["paused"].as_bool()),
        (Some("tab"), Some("UTC"), Some(false))
    );
    // A run's status, beside its id.
    assert!(tab.contains(r#"api("GET", "instances/" + enc(id))"#), "the tab reads each run's status");

    // The buttons.
    let buttons = [
        (r#"api("POST", "schedules/" + enc(s.id) + "/pause")"#, "POST", "/schedules/tab/pause", 202),
        (r#"api("POST", "schedules/" + enc(s.id) + "/resume")"#, "POST", "/schedules/tab/resume", 202),
        (r#"api("DELETE", "schedules/" + enc(s.id))"#, "DELETE", "/schedules/tab", 200),
    ];
    for (call, method, path, status) in buttons {
        assert!(tab.contains(call), "the tab calls {call}");
        let r = env.call(method, path, None).await;
        assert_eq!(r.status.as_u16(), status, "{method} {path}: {r:?}");
        if path.ends_with("/pause") {
            env.poll("/schedules/tab", |r| r.json["paused"] == true).await;
        }
    }
    let r = env.call("GET", "/schedules", None).await;
    assert_eq!(r.json["schedules"], serde_json::json!([]), "deleted: {r:?}");
    env.shutdown().await;
}
