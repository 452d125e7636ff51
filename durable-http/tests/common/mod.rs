//! Shared by the HTTP tests: a worker with a few orchestrators and the counter entity on the
//! backend under test, and helpers to call the router.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use durable::backend::Backend;
use durable::prelude::*;
use durable_http::HttpConfig;
use durable_test_support::fixtures::{Counter, flaky, hello_cities, say_hello, uses_flaky};
use durable_test_support::wait::PATIENCE;
use serde_json::Value;
use std::time::Instant;
use tower::ServiceExt;

/// Waits for event `approve` and returns its data, with a local kept across the wait.
#[orchestrator]
pub async fn approval(ctx: OrchestrationContext, request: String) -> Result<Value, OrchestrationError> {
    let asked = format!("asked: {request}");
    ctx.set_custom_status("waiting");
    let answer = ctx.wait_for_event::<Value>("approve").await?;
    Ok(serde_json::json!({ "asked": asked, "answer": answer }))
}

pub struct Env {
    pub app: Router,
    pub client: Client,
    pub worker: Option<durable::WorkerHandle>,
}

impl Env {
    /// The router of a client of `backend`, and a worker on it.
    pub async fn new<B: Backend + Clone>(backend: B, config: HttpConfig) -> Self {
        Self::with_client(backend, config, |c| c).await
    }

    /// [`Env::new`] with the client changed by `f`.
    pub async fn with_client<B: Backend + Clone>(
        backend: B,
        config: HttpConfig,
        f: impl FnOnce(Client) -> Client,
    ) -> Self {
        let worker = Worker::builder(backend.clone())
            .orchestrator(hello_cities)
            .orchestrator(approval)
            .orchestrator(uses_flaky)
            .activity(say_hello)
            .activity(flaky)
            .entity::<Counter>()
            .start()
            .await
            .unwrap();
        let client = f(Client::new(backend));
        Self { app: durable_http::router(client.clone(), config), client, worker: Some(worker) }
    }

    pub async fn call(&self, method: &str, uri: &str, body: Option<&str>) -> Resp {
        call(&self.app, method, uri, body, &[]).await
    }

    /// Poll `GET uri` until `done` holds (for up to [`PATIENCE`]).
    pub async fn poll(&self, uri: &str, done: impl Fn(&Resp) -> bool) -> Resp {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let r = self.call("GET", uri, None).await;
            if done(&r) {
                return r;
            }
            assert!(Instant::now() < deadline, "GET {uri}: condition not met in time; last answer {r:?}");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    pub async fn finish(&self, id: &str) {
        self.client.wait_for_completion(id, PATIENCE).await.unwrap();
    }

    pub async fn shutdown(mut self) {
        if let Some(w) = self.worker.take() {
            w.shutdown().await.unwrap();
        }
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Assert a JSON error with this status and code; returns the message.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> &str {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        assert_eq!(self.json["code"], code, "{self:?}");
        let msg = self.json["error"].as_str().unwrap_or_else(|| panic!("no error message: {self:?}"));
        assert!(!msg.is_empty());
        msg
    }
}

pub async fn call(app: &Router, method: &str, uri: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, headers, text, json }
}
