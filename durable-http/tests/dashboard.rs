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
