//! Shared by the CLI's tests: a redis-server of the test's own, a worker on it with a few
//! orchestrators and an entity, the real `durable` binary, and a tiny HTTP client.
#![allow(dead_code)]

use durable::prelude::*;
use durable_test_support::fixtures::{Counter, flaky, hello_cities, say_hello, uses_flaky};
use durable_test_support::redis_server::RedisServer;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// The task hub the tests use (not the default, so `--hub` is exercised).
pub const HUB: &str = "clitest";
/// Not the default either: the CLI must read it from the hub.
pub const PARTITIONS: u32 = 4;

/// Greets, waits a short timer, then waits for event `approve`: locals live across the wait.
#[orchestrator]
pub async fn approval(ctx: OrchestrationContext, request: String) -> Result<Value, OrchestrationError> {
    let greeting = ctx.call_activity(say_hello, request.clone()).await?;
    ctx.timer(Duration::from_millis(300)).await?;
    let asked = format!("asked: {request}");
    ctx.set_custom_status("waiting for approval");
    let answer = ctx.wait_for_event::<Value>("approve").await?;
    Ok(serde_json::json!({ "greeting": greeting, "asked": asked, "answer": answer }))
}

/// Starts an [`approval`] as its sub-orchestration (`{id}:child`) and waits for it.
#[orchestrator]
pub async fn manager(ctx: OrchestrationContext, request: String) -> Result<Value, OrchestrationError> {
    let child = format!("{}:child", ctx.instance_id());
    Ok(ctx.call_orchestrator(approval, request).with_instance_id(child).await?)
}

/// Fails with its input as the error.
#[orchestrator]
pub async fn fails(_ctx: OrchestrationContext, why: String) -> Result<(), OrchestrationError> {
    Err(why.into())
}

/// A redis-server and a worker on it (task hub [`HUB`], [`PARTITIONS`] partitions).
pub struct Env {
    pub server: RedisServer,
    pub worker: Option<durable::WorkerHandle>,
}

impl Env {
    pub async fn new() -> Self {
        let server = RedisServer::start();
        let backend = hub_backend(&server.url()).await;
        let worker = Worker::builder(backend)
            .orchestrator(hello_cities)
            .orchestrator(approval)
            .orchestrator(uses_flaky)
            .orchestrator(manager)
            .orchestrator(fails)
            .activity(say_hello)
            .activity(flaky)
            .entity::<Counter>()
            .start()
            .await
            .expect("start the worker");
        Self { server, worker: Some(worker) }
    }

    /// A redis-server with no worker on it: the test starts the workers it wants with
    /// [`Env::backend`].
    pub async fn without_worker() -> Self {
        Self { server: RedisServer::start(), worker: None }
    }

    /// A new connection to the task hub, for a worker or a client of the test's own.
    pub async fn backend(&self) -> durable::backend::Redis {
        hub_backend(&self.url()).await
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Run `durable --hub HUB ARGS…` against this server.
    pub async fn durable(&self, args: &[&str]) -> Run {
        durable_at(&self.url(), args).await
    }

    /// Run `durable … --json ARGS` until `done` holds on its parsed stdout (deadline 20 s).
    pub async fn poll_json(&self, args: &[&str], done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        loop {
            let r = self.durable(&with_json).await;
            if r.code == 0 {
                let v = r.json();
                if done(&v) {
                    return v;
                }
            }
            assert!(Instant::now() < deadline, "durable {args:?}: condition not met within 20 s; last run {r:?}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(w) = self.worker.take() {
            w.shutdown().await.unwrap();
        }
    }
}

/// The task hub [`HUB`] ([`PARTITIONS`] partitions, 2 s leases) on the redis-server at `url`.
pub async fn hub_backend(url: &str) -> durable::backend::Redis {
    durable::backend::Redis::builder(url.to_string())
        .prefix(HUB)
        .partitions(PARTITIONS)
        .lease_duration(std::time::Duration::from_secs(2))
        .connect()
        .await
        .expect("connect to the test's redis-server")
}

/// One run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self
    }
    /// Assert exit code `code` and an error message on stderr that contains `needle`.
    #[track_caller]
    pub fn fails(self, code: i32, needle: &str) -> Self {
        assert_eq!(self.code, code, "expected exit code {code}: {self:?}");
        assert!(self.stderr.contains(needle), "stderr should mention {needle:?}: {self:?}");
        assert!(self.stdout.is_empty(), "nothing on stdout when failing: {self:?}");
        self
    }
}

pub fn durable_cmd(url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_durable"));
    cmd.env("DURABLE_REDIS_URL", url)
        .env_remove("DURABLE_PARTITIONS")
        .env_remove("DURABLE_HTTP_TOKEN")
        .env("DURABLE_HUB", HUB)
        .stdin(Stdio::null());
    cmd
}

pub async fn durable_at(url: &str, args: &[&str]) -> Run {
    let mut cmd = durable_cmd(url);
    cmd.args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run the durable binary")).await.unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `durable serve` as a child process; killed on drop.
pub struct Served {
    pub child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its stdout, kept open.
    pub stdout: BufReader<std::process::ChildStdout>,
}

impl Served {
    pub fn start(url: &str, extra: &[&str]) -> Self {
        let mut cmd = durable_cmd(url);
        cmd.args(["serve", "--addr", "127.0.0.1:0"]).args(extra).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn durable serve");
        let mut first = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut first).expect("read the first line of serve");
        let addr = first
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("durable serve printed {first:?} first, not `listening on http://ADDR`"))
            .to_string();
        Self { child, addr, stdout }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Http {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Http {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {self:?}"))
    }
}

/// One HTTP/1.1 request with `Connection: close` (blocking; small bodies only).
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Http {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let body = body.unwrap_or("");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    // Read until the body is complete (Content-Length or the last chunk): some servers keep
    // the connection open despite `Connection: close`.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let body = &raw[end + 4..];
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            match len {
                Some(n) if body.len() >= n => break,
                None if head.contains("transfer-encoding: chunked") && body.ends_with(b"0\r\n\r\n") => break,
                _ => {}
            }
        }
        let n = s.read(&mut buf).unwrap_or_else(|e| panic!("{method} {path} on {addr}: reading the answer: {e}"));
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> Http {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end in {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_string() };
    Http { status, headers, body }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n..];
        s = s.strip_prefix("\r\n").unwrap_or(s);
    }
    out
}
