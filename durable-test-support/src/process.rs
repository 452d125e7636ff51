//! A child process that runs one `#[ignore]`d test of the current test binary (a worker, for
//! fault tests that kill real processes), with its output lines readable and its stdin
//! writable; killed on drop.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running child process.
pub struct ChildProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdin: Option<ChildStdin>,
}

impl ChildProcess {
    /// Run the ignored test `test` of this test binary in a new process with `env` set.
    pub fn spawn(test: &str, env: &[(&str, String)]) -> Self {
        let mut command = Command::new(std::env::current_exe().expect("the test binary's path"));
        command.args([test, "--exact", "--ignored", "--nocapture", "--test-threads=1"]);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child =
            command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawns");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Self { child, lines, stdin }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The rest of the first output line containing `word`, from `word` on; panics after
    /// `patience`.
    pub fn expect_line(&self, word: &str, patience: Duration) -> String {
        let deadline = Instant::now() + patience;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                // The test harness prints `test NAME ... ` before the first line, unterminated.
                Ok(l) if l.contains(word) => return l[l.find(word).unwrap_or(0)..].to_string(),
                Ok(_) => {}
                Err(e) => panic!("process {} never printed {word:?}: {e}", self.pid()),
            }
        }
    }

    /// Write a line to its stdin.
    pub fn send_line(&mut self, line: &str) {
        writeln!(self.stdin.as_mut().expect("stdin is piped"), "{line}").expect("the process reads its stdin");
    }

    /// Send it a signal (`"-STOP"`, `"-CONT"`, `"-9"`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(sig).arg(self.pid().to_string()).status().expect("runs kill").success();
        assert!(ok, "kill {sig} {} failed", self.pid());
    }

    /// `kill -9` it and reap it.
    pub fn kill9(mut self) {
        self.signal("-9");
        let _ = self.child.wait();
    }

    /// Wait for it to exit.
    pub fn wait(mut self) {
        let _ = self.child.wait();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
