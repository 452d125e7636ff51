//! The dashboard in headless Chromium, driven over WebDriver (chromedriver) with a tiny client:
//! `durable serve` on a redis-server of the test's own, a worker on the same task hub. The list
//! shows a started instance and its version; its page shows the timeline and the live locals;
//! the terminate button terminates it; an instance no registered code can run is marked
//! blocked in the list and its page says why in a banner; the Schedules tab creates a schedule
//! with its form, shows it with its last run, and pauses, resumes and deletes it.
//!
//! Skips (and passes, saying so) when chromium or chromedriver is not installed
//! (`apt-get install chromium chromium-driver`; `DURABLE_CHROMIUM` and `DURABLE_CHROMEDRIVER`
//! name other binaries). `DURABLE_UPDATE_SCREENSHOT=1` writes the
//! instance page's screenshot to docs/dashboard.png.

mod common;

use common::*;
use durable::prelude::*;
use durable_test_support::fixtures::hello_cities;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary named by environment variable `var` (if set; `None` if it does not exist), else
/// the first of `names` on `PATH`.
fn find(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        let p = PathBuf::from(p);
        return p.exists().then_some(p);
    }
    let dirs: Vec<PathBuf> = std::env::var_os("PATH").map(|d| std::env::split_paths(&d).collect()).unwrap_or_default();
    names.iter().flat_map(|n| dirs.iter().map(move |d| d.join(n))).find(|c| c.exists())
}

/// A chromedriver process and one browser session; both ended on drop.
struct Browser {
    driver: Child,
    addr: String,
    session: String,
    profile: PathBuf,
}

impl Browser {
    fn start(chromium: &Path, chromedriver: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", chromedriver.display()));
        let addr = format!("127.0.0.1:{port}");
        let profile = std::env::temp_dir().join(format!("durable-chromium-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let mut b = Self { driver, addr, session: String::new(), profile };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(&b.addr).is_ok() {
                let r = http(&b.addr, "GET", "/status", &[], None);
                if r.status == 200 && r.json()["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1000",
                    format!("--user-data-dir={}", b.profile.display()),
                ]
            }
        } } });
        let r = b.raw("POST", "/session", Some(caps));
        b.session = r["sessionId"].as_str().unwrap_or_else(|| panic!("no session from chromedriver: {r}")).to_string();
        b
    }

    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let r = http(&self.addr, method, path, &[], body.as_deref());
        let v = r.json();
        assert!(r.status < 400, "WebDriver {method} {path} answered {}: {v}", r.status);
        v["value"].clone()
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Run a script in the page and return its value.
    fn js(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({ "script": script, "args": [] })))
    }

    /// Poll `script` until it returns something truthy (deadline 20 s).
    fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.js(script);
            if !(v.is_null() || v == false || v == 0 || v == "") {
                return v;
            }
            if Instant::now() > deadline {
                let page = self.js("return document.body.innerText");
                panic!("the dashboard did not show {what} within 20 s; page text:\n{}", page.as_str().unwrap_or(""));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn click(&self, css: &str) {
        let e = self.cmd("POST", "/element", Some(json!({ "using": "css selector", "value": css })));
        let id = e.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).expect("element id").to_string();
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Wait for the element matching `css`, then click it.
    fn click_when(&self, css: &str) {
        let found = format!("return document.querySelector('{}') !== null", css.replace('\'', "\\'"));
        self.wait_for(css, &found);
        self.click(css);
    }

    fn screenshot(&self) -> Vec<u8> {
        let b64 = self.cmd("GET", "/screenshot", None);
        base64_decode(b64.as_str().expect("screenshot is base64 text"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = std::panic::catch_unwind(|| {
                http(&self.addr, "DELETE", &format!("/session/{}", self.session), &[], None)
            });
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    for chunk in clean.chunks(4) {
        let data: Vec<u8> = chunk.iter().copied().filter(|&c| c != b'=').collect();
        let mut n = 0u32;
        for (i, c) in data.iter().enumerate() {
            n |= val(*c) << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..data.len().saturating_sub(1)]);
    }
    out
}

/// Version 3 of `approval`, which the test's worker does not register: its instance is blocked.
#[orchestrator(name = "approval", version = 3)]
async fn approval_v3(ctx: OrchestrationContext, request: String) -> Result<Value, OrchestrationError> {
    let answer = ctx.wait_for_event::<Value>("approve").await?;
    Ok(json!({ "request": request, "answer": answer }))
}

#[test]
fn base64_decodes() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGk="), b"hi");
    assert_eq!(base64_decode("YWJj"), b"abc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    let (Some(chromium), Some(chromedriver)) =
        (find("DURABLE_CHROMIUM", &["chromium", "chromium-browser"]), find("DURABLE_CHROMEDRIVER", &["chromedriver"]))
    else {
        println!(
            "SKIPPED dashboard_in_headless_chromium: chromium and chromedriver are not installed \
             (apt-get install -y chromium chromium-driver)"
        );
        return;
    };
    let env = Env::new().await;
    let url = env.url();
    let served = tokio::task::spawn_blocking(move || Served::start(&url, &[])).await.unwrap();
    let base = format!("http://{}/", served.addr);

    // A few finished instances for the list, and one waiting with live locals.
    for input in [r#"["Tokyo","Seattle","London"]"#, r#"["Paris"]"#] {
        env.durable(&["start", "hello_cities", "--input", input]).await.ok();
    }
    env.durable(&["start", "approval", "--id", "order-42", "--input", r#""a new laptop""#]).await.ok();
    env.poll_json(&["status", "order-42"], |v| v["customStatus"] == "waiting for approval").await;
    let client = Client::new(env.backend().await);
    client.start_with_id(approval_v3, "stuck-7", "a chair".to_string()).await.unwrap();
    env.poll_json(&["status", "stuck-7"], |v| v["blocked"] == true).await;

    // 230 more, to page through (50 a page), and a parent with a child.
    for i in 0..230 {
        client.start_with_id(hello_cities, &format!("bulk-{i:03}"), Some(vec!["Oslo".to_string()])).await.unwrap();
    }
    env.durable(&["start", "manager", r#""raise""#, "--id", "boss-3"]).await.ok();
    env.poll_json(&["status", "boss-3:child"], |v| v["customStatus"] == "waiting for approval").await;

    // An entity with two operations in its journal.
    env.durable(&["entity", "signal", "counter", "visited", "add", "--input", "2"]).await.ok();
    env.durable(&["entity", "signal", "counter", "visited", "add", "--input", "5"]).await.ok();
    env.poll_json(&["entity", "get", "counter", "visited"], |v| v["state"] == 7).await;

    let browser = tokio::task::spawn_blocking(move || {
        let b = Browser::start(&chromium, &chromedriver);
        b.goto(&base);
        // The list shows the instance, live.
        b.wait_for("order-42 in the list", r#"return document.querySelector('tr[data-id="order-42"]') !== null"#);
        b.wait_for("a full first page", r#"return document.querySelectorAll('#instances tr[data-id]').length === 50"#);
        let status = b.js(r#"return document.querySelector('tr[data-id="order-42"] .badge').textContent"#);
        assert_eq!(status, "Running");
        // Versions in the list, and the blocked one marked.
        let version = b.js(r#"return document.querySelector('tr[data-id="order-42"] td.version').textContent"#);
        assert_eq!(version, "v1");
        let version = b.js(r#"return document.querySelector('tr[data-id="stuck-7"] td.version').textContent"#);
        assert_eq!(version, "v3");
        let marked = b.js(r#"return [...document.querySelectorAll('#instances .badge.blocked')].map(e => e.closest('tr').dataset.id)"#);
        assert_eq!(marked, json!(["stuck-7"]));
        std::fs::write(std::env::temp_dir().join("durable-dashboard-list.png"), b.screenshot()).unwrap();
        // Its page: the timeline (the whole execution, the activity, the timer) and the locals.
        b.click(r#"tr[data-id="order-42"]"#);
        b.wait_for("the instance page", r#"return location.hash === '#/instances/order-42'"#);
        b.wait_for(
            "activity and timer bars",
            r#"const k = [...document.querySelectorAll('#timeline rect.bar')].map(r => r.dataset.kind);
               return k.includes('orchestration') && k.includes('activity') && k.includes('timer')"#,
        );
        let locals = b.wait_for(
            "the live locals",
            r#"const r = document.querySelector('#locals tr[data-local="asked"]'); return r && r.innerText"#,
        );
        assert!(locals.as_str().unwrap().contains("asked: a new laptop"), "{locals}");
        let greeting = b.js(r#"return document.querySelector('#locals tr[data-local="greeting"]').innerText"#);
        assert!(greeting.as_str().unwrap().contains("Hello a new laptop!"), "{greeting}");
        b.wait_for("the input", r#"return document.querySelector('#input').textContent === '"a new laptop"'"#);
        assert_eq!(b.js("return document.querySelector('#version').textContent"), "1");
        assert_eq!(b.js("return document.querySelector('#blocked-banner').hidden"), true);
        let png = b.screenshot();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "a PNG screenshot ({} bytes)", png.len());
        let out = std::env::temp_dir().join("durable-dashboard.png");
        std::fs::write(&out, &png).unwrap();
        if std::env::var_os("DURABLE_UPDATE_SCREENSHOT").is_some() {
            let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard.png");
            std::fs::write(&docs, &png).unwrap();
            println!("wrote {}", docs.display());
        }
        // Terminate from the page.
        b.click("#btn-terminate");
        b.wait_for(
            "Terminated",
            r#"const s = document.querySelector('#status'); return s && s.textContent === 'Terminated'"#,
        );
        b.wait_for("a disabled terminate button", "return document.querySelector('#btn-terminate').disabled");
        // The blocked instance's page: a banner with the reason.
        b.js("location.hash = '#/instances/stuck-7'; return true");
        let banner = b.wait_for(
            "the blocked banner",
            r#"const e = document.querySelector('#blocked-banner');
               return e && !e.hidden && e.offsetHeight > 0 && e.textContent"#,
        );
        let banner = banner.as_str().unwrap();
        assert!(banner.starts_with("blocked: version 3 of orchestrator `approval` is not registered"), "{banner}");
        assert_eq!(b.js("return document.querySelector('#version').textContent"), "3");
        std::fs::write(std::env::temp_dir().join("durable-dashboard-blocked.png"), b.screenshot()).unwrap();
        // Paging past 200, filtered by id prefix: 50, 50, 50, 50, 30 in creation order.
        b.js("location.hash = '#/?prefix=bulk-'; return true");
        let first = b.wait_for(
            "the first page of bulk instances",
            r#"const ids = [...document.querySelectorAll('#instances tr[data-id]')].map(r => r.dataset.id);
               return ids.length === 50 && ids.every(i => i.startsWith('bulk-')) && ids;"#,
        );
        assert_eq!(first[0], "bulk-000");
        assert_eq!(b.js("return document.querySelector('#page-prev').disabled"), true);
        for page in 2..=5 {
            b.click("#page-next");
            let want = if page == 5 { 30 } else { 50 };
            let ids = b.wait_for(
                &format!("page {page}"),
                &format!(
                    r#"const ids = [...document.querySelectorAll('#instances tr[data-id]')].map(r => r.dataset.id);
                       return document.querySelector('#count').dataset.page === '{page}' && ids.length === {want} && ids;"#
                ),
            );
            assert_eq!(ids[0], format!("bulk-{:03}", (page - 1) * 50), "page {page}");
        }
        b.wait_for("the last page", "return document.querySelector('#page-next').disabled");
        b.click("#page-prev");
        b.wait_for(
            "page 4 again",
            r#"const r = document.querySelector('#instances tr[data-id]'); return r && r.dataset.id === 'bulk-150'"#,
        );
        // Parent and child link each other.
        b.js("location.hash = '#/instances/boss-3'; return true");
        b.click_when("#children a");
        b.wait_for("the child's page", "return decodeURIComponent(location.hash) === '#/instances/boss-3:child'");
        b.click_when("#parent");
        b.wait_for("the parent's page again", "return location.hash === '#/instances/boss-3'");

        // An entity's journal: click it in the list, its last operations show, newest first.
        b.js("location.hash = '#/entities'; return true");
        b.click_when(r#"tr[data-entity="counter/visited"]"#);
        let journal = b.wait_for(
            "the entity's journal",
            r#"const rows = [...document.querySelectorAll('#entity-journal tr')].map(r => r.innerText);
               return rows.length === 2 && rows[0].includes('add') && rows;"#,
        );
        let rows: Vec<String> = serde_json::from_value(journal).unwrap();
        assert!(rows[0].contains('5') && rows[1].contains('2') && rows.iter().all(|r| r.contains("client")), "{rows:?}");

        // The Schedules tab: create one every two seconds with its form; it shows active, with
        // its spec, next fire time and last run (completed); pause, resume and delete it.
        b.js("location.hash = '#/schedules'; return true");
        b.wait_for("no schedules", "const c = document.querySelector('#schedule-count'); return c && c.textContent === '0 schedules'");
        b.js(
            r#"const set = (id, v) => { document.querySelector('#' + id).value = v; };
               set('schedule-id', 'every-2s'); set('schedule-cron', '*/2 * * * * *');
               set('schedule-orchestrator', 'hello_cities'); set('schedule-input', '["Oslo"]'); return true"#,
        );
        b.click("#schedule-create");
        let row = r#"document.querySelector('tr[data-schedule="every-2s"]')"#;
        let state = |want: &str| format!("const r = {row}; return r && r.querySelector('td.state [data-state]').dataset.state === '{want}'");
        let cells = b.wait_for(
            "the schedule, active, with a completed last run",
            &format!(
                r#"const r = {row};
                   return r && r.querySelector('td.state [data-state]').dataset.state === 'active'
                     && r.querySelector('td.last-run .badge[data-status="Completed"]') !== null
                     && [...r.querySelectorAll('td')].map(td => td.innerText);"#
            ),
        );
        let cells: Vec<String> = serde_json::from_value(cells).unwrap();
        assert_eq!(&cells[..4], ["every-2s", "*/2 * * * * *", "UTC", "hello_cities"], "{cells:?}");
        assert!(cells[5].starts_with("20"), "a next fire time: {cells:?}");
        assert!(cells[6].starts_with("every-2s@20") && cells[6].ends_with("Completed"), "the last run: {cells:?}");
        std::fs::write(std::env::temp_dir().join("durable-dashboard-schedules.png"), b.screenshot()).unwrap();
        // Clicked from the page's script: the list is redrawn every few seconds, and a WebDriver
        // click could land on a row just replaced.
        let press = |action: &str| {
            b.js(&format!(r#"{row}.querySelector('button[data-action="{action}"]').click(); return true"#));
        };
        press("pause");
        b.wait_for("the schedule paused", &state("paused"));
        press("resume");
        b.wait_for("the schedule active again", &state("active"));
        press("delete");
        b.wait_for("the schedule gone", &format!("return {row} === null && document.querySelector('#schedule-count').textContent === '0 schedules'"));
        b
    })
    .await
    .unwrap();
    let s = env.poll_json(&["status", "order-42"], |v| v["runtimeStatus"] == "Terminated").await;
    assert_eq!(s["runtimeStatus"], "Terminated");
    drop(browser);
    drop(served);
    env.shutdown().await;
}
