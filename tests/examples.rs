//! Every example runs to its expected output, on the embedded backend and on Redis
//! (`--redis URL`, a redis-server of the test's own).

use durable_test_support::redis_server::RedisServer;
use std::path::PathBuf;
use std::process::Command;

const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "hello_cities",
        &[
            "Completed: [\"Hello Tokyo!\", \"Hello Seattle!\", \"Hello London!\"]",
            "ExecutionCompleted   output=[\"Hello Tokyo!\"",
        ],
    ),
    ("chaining", &["output: 45"]),
    ("fan_out_fan_in", &["total bytes: 34000"]),
    ("human_interaction", &["expense #1 approved", "expense #2 escalated to the manager"]),
    ("monitor", &["output: nightly-build is done", "\"checks\":4"]),
    ("counter", &["before any operation: None", "double_it: (20, 40)", "state now: Some(Counter { value: 40 })"]),
    ("aggregator", &["mean 22.25, max 24.50", "readings kept: 12"]),
];

/// Build the examples with this test's profile and target directory; their directory.
fn build_examples() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf();
    let target_dir = profile_dir.parent().unwrap();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args(["build", "-q", "-p", "durable", "--examples", "--target-dir"]);
    cmd.arg(target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    assert!(cmd.status().expect("run cargo build").success(), "building the examples failed");
    profile_dir.join("examples")
}

fn run_all(extra: &[&str]) {
    let dir = build_examples();
    for (name, expected) in EXAMPLES {
        let out = Command::new(dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
            .args(extra)
            .output()
            .unwrap_or_else(|e| panic!("running example {name}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "example {name} {extra:?} failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        for line in *expected {
            assert!(stdout.contains(line), "example {name} {extra:?} did not print {line:?}:\n{stdout}");
        }
    }
}

#[test]
fn every_example_runs_on_the_embedded_backend() {
    run_all(&[]);
}

#[test]
fn every_example_runs_on_redis() {
    let server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}", server.port);
    run_all(&["--redis", &url]);
}
