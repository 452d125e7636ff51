//! The `http_demo` example, run as a real process and driven over HTTP: Durable Functions'
//! hello-cities and counter demos.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// Build the example with the profile and target directory of this test, and return its path.
fn build_example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf(); // target/<profile>
    let target_dir = profile_dir.parent().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let mut cmd = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root).args(["build", "-p", "durable", "--example", "http_demo", "--target-dir"]).arg(target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "cargo build --example http_demo failed");
    let bin = profile_dir.join("examples").join(format!("http_demo{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} was not built", bin.display());
    bin
}

struct Demo {
    child: Child,
    addr: String,
}

async fn start(bin: &PathBuf) -> Demo {
    let mut child = Command::new(bin)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn http_demo");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("http_demo printed nothing within 60 s")
        .unwrap()
        .expect("http_demo exited before listening");
    let addr = first.strip_prefix("listening on http://").unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    Demo { child, addr: addr.to_string() }
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    json: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client: one request per connection.
async fn http(addr: &str, method: &str, path: &str, body: &str) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    Resp { status, headers, json: serde_json::from_str(body).unwrap_or(Value::Null) }
}

async fn poll(addr: &str, path: &str, done: impl Fn(&Resp) -> bool) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = http(addr, "GET", path, "").await;
        if done(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "GET {path}: not there in time (last: {} {})", r.status, r.json);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn http_demo_process() {
    let bin = build_example();
    let mut demo = start(&bin).await;
    let a = demo.addr.as_str();

    // Hello cities: 202 + Location, then completed with the three greetings.
    let r = http(a, "POST", "/orchestrations/hello_cities", "").await;
    assert_eq!(r.status, 202);
    let location = r.header("location").unwrap().to_string();
    let path = location.strip_prefix(&format!("http://{a}")).unwrap_or_else(|| panic!("{location}")).to_string();
    let r = poll(a, &path, |r| r.status != 202).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["runtimeStatus"], "Completed");
    assert_eq!(r.json["output"], json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"]));
    let r = http(a, "GET", &format!("{path}?showHistory=true"), "").await;
    let kinds: Vec<&str> =
        r.json["history"].as_array().unwrap().iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"ExecutionStarted"));
    assert_eq!(kinds.last(), Some(&"ExecutionCompleted"));
    assert_eq!(kinds.iter().filter(|k| **k == "TaskCompleted").count(), 3);

    // The counter: 404, add 10 → 10, add 10 → 20.
    let r = http(a, "GET", "/entities/counter/QConSF2019", "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json["code"], "EntityNotFound");
    assert_eq!(http(a, "POST", "/entities/counter/QConSF2019?op=add", "10").await.status, 202);
    poll(a, "/entities/counter/QConSF2019", |r| r.status == 200 && r.json == json!(10)).await;
    assert_eq!(http(a, "POST", "/entities/counter/QConSF2019?op=add", "10").await.status, 202);
    poll(a, "/entities/counter/QConSF2019", |r| r.json == json!(20)).await;

    // The demo knows its names.
    let r = http(a, "POST", "/orchestrations/nope", "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json["known"], json!(["hello_cities"]));

    demo.child.kill().await.unwrap();
}

#[tokio::test]
async fn http_demo_refuses_bad_arguments() {
    let bin = build_example();
    let out = tokio::process::Command::new(&bin).args(["--port", "nope"]).output().await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--port"), "{out:?}");
}
