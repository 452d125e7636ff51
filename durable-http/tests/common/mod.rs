//! Shared by the HTTP tests: a worker with a few orchestrators and the counter entity on the
//! embedded backend, and helpers to call the router.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use durable::prelude::*;
use durable_http::HttpConfig;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Instant;
use tower::ServiceExt;

#[activity]
pub async fn say_hello(name: String) -> Result<String, ActivityError> {
    Ok(format!("Hello {name}!"))
}

#[orchestrator]
pub async fn hello_cities(
    ctx: OrchestrationContext,
    cities: Option<Vec<String>>,
) -> Result<Vec<String>, OrchestrationError> {
    let cities = cities.unwrap_or_else(|| vec!["Tokyo".to_string(), "Seattle".to_string(), "London".to_string()]);
    let mut greetings = Vec::new();
    for city in cities {
        greetings.push(ctx.call_activity(say_hello, city).await?);
    }
    Ok(greetings)
}

/// Waits for event `approve` and returns its data, with a local kept across the wait.
#[orchestrator]
pub async fn approval(ctx: OrchestrationContext, request: String) -> Result<Value, OrchestrationError> {
    let asked = format!("asked: {request}");
    ctx.set_custom_status("waiting");
    let answer = ctx.wait_for_event::<Value>("approve").await?;
    Ok(serde_json::json!({ "asked": asked, "answer": answer }))
}

static FAILED_ONCE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Fails the first time it sees a key, then succeeds.
#[activity]
pub async fn flaky(key: String) -> Result<String, ActivityError> {
    if FAILED_ONCE.lock().unwrap().insert(key.clone()) {
        return Err("the first attempt fails".into());
    }
    Ok(format!("ok {key}"))
}

#[orchestrator]
pub async fn uses_flaky(ctx: OrchestrationContext, key: String) -> Result<String, OrchestrationError> {
    Ok(ctx.call_activity(flaky, key).await?)
}

#[derive(Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Counter {
    value: i64,
}

#[entity(name = "counter")]
impl Counter {
    fn add(&mut self, amount: i64) {
        self.value += amount;
    }
    fn reset(&mut self) {
        self.value = 0;
    }
    fn get(&self) -> i64 {
        self.value
    }
}

thread_local! {
    /// Set by the Redis variant of a test: the `redis-server` its `Env` uses.
    pub static REDIS_URL: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

static PREFIX: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The backend of this test: Redis when the test runs as its Redis variant, else embedded.
async fn test_backend() -> std::sync::Arc<dyn durable::backend::Backend> {
    match REDIS_URL.with(|u| u.borrow().clone()) {
        Some(url) => {
            let n = PREFIX.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let r = durable::backend::Redis::builder(url).prefix(format!("http-test-{n}")).connect().await.unwrap();
            std::sync::Arc::new(r)
        }
        None => std::sync::Arc::new(durable::backend::Memory::new()),
    }
}

pub struct Env {
    pub app: Router,
    pub client: Client,
    pub worker: Option<durable::WorkerHandle>,
}

impl Env {
    pub async fn new(config: HttpConfig) -> Self {
        Self::with_client(config, |c| c).await
    }

    pub async fn with_client(config: HttpConfig, f: impl FnOnce(Client) -> Client) -> Self {
        let backend = test_backend().await;
        let worker = Worker::builder_arc(backend.clone())
            .orchestrator(hello_cities)
            .orchestrator(approval)
            .orchestrator(uses_flaky)
            .activity(say_hello)
            .activity(flaky)
            .entity::<Counter>()
            .start()
            .await
            .unwrap();
        let client = f(Client::from_arc(backend));
        Self { app: durable_http::router(client.clone(), config), client, worker: Some(worker) }
    }

    pub async fn call(&self, method: &str, uri: &str, body: Option<&str>) -> Resp {
        call(&self.app, method, uri, body, &[]).await
    }

    /// Poll `GET uri` until `done` holds (deadline 10 s).
    pub async fn poll(&self, uri: &str, done: impl Fn(&Resp) -> bool) -> Resp {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
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
        self.client.wait_for_completion(id, std::time::Duration::from_secs(10)).await.unwrap();
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
