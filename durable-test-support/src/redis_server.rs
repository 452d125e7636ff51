//! A `redis-server` of the test's own, on a free port in a temporary directory; killed (and its
//! directory removed) on drop. Never the machine's 127.0.0.1:6379.
//!
//! ```no_run
//! use durable_test_support::redis_server::RedisServer;
//!
//! let server = RedisServer::start();
//! let url = server.url(); // redis://127.0.0.1:PORT/
//! # drop(url);
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A running `redis-server` (or one killed by [`RedisServer::kill`], until
/// [`RedisServer::restart`]).
pub struct RedisServer {
    child: Option<Child>,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: PathBuf,
    persistence: Persistence,
}

/// How a server keeps its data. Never RDB snapshots (`--save ""` always).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// `--appendonly no`: nothing is written to disk.
    Off,
    /// `--appendonly yes --appendfsync everysec`: the AOF is fsynced once a second (Redis's
    /// default for AOF; a crash of the machine may lose the last second).
    AofEverysec,
    /// `--appendonly yes --appendfsync always`: the AOF is fsynced before each write is
    /// acknowledged.
    AofAlways,
}

impl Persistence {
    /// Its `redis-server` arguments besides `--save ""`.
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Persistence::Off => &["--appendonly", "no"],
            Persistence::AofEverysec => &["--appendonly", "yes", "--appendfsync", "everysec"],
            Persistence::AofAlways => &["--appendonly", "yes", "--appendfsync", "always"],
        }
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl RedisServer {
    /// An in-memory server (no persistence).
    pub fn start() -> Self {
        Self::start_with(Persistence::Off)
    }

    /// A server with `--appendonly yes --appendfsync always`: nothing acknowledged is lost
    /// when it is killed and restarted.
    pub fn start_durable() -> Self {
        Self::start_with(Persistence::AofAlways)
    }

    /// A server that keeps its data as `persistence` says; panics if none could be started.
    pub fn start_with(persistence: Persistence) -> Self {
        Self::try_start_with(persistence).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A server that keeps its data as `persistence` says, or why none could be started (after
    /// five tries on free ports).
    pub fn try_start_with(persistence: Persistence) -> Result<Self, String> {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("durable-redis-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut last_err = String::new();
        for _ in 0..5 {
            // Made again each try: a failed try's server removes it when dropped.
            std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let port = free_port();
            let mut s = Self { child: None, port, dir: dir.clone(), persistence };
            match s.spawn() {
                Ok(()) => return Ok(s),
                Err(e) => last_err = e,
            }
        }
        Err(format!("could not start redis-server: {last_err}"))
    }

    /// How it keeps its data.
    pub fn persistence(&self) -> Persistence {
        self.persistence
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--save")
            .arg("")
            .arg("--protected-mode")
            .arg("no")
            .arg("--loglevel")
            .arg("warning")
            .arg("--logfile")
            .arg(self.dir.join("redis.log"));
        cmd.args(self.persistence.args());
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().map_err(|e| {
            format!("redis-server could not be run ({e}); install it (`apt-get install redis-server`, as .ci/run does)")
        })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
                return Err(format!("redis-server exited with {status}: {log}"));
            }
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err("redis-server did not answer PING within 10 s".into())
    }

    /// Its temporary directory (removed when it is dropped): a place for a test's files too.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// kill -9 the server.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port and directory (with a durable server, from its AOF).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("redis-server did not restart: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Write a snapshot of the data now (`SAVE`, an RDB file) and keep a copy of it, for
    /// [`RedisServer::restart_from`]. For a server started with [`RedisServer::start`].
    pub fn save_snapshot(&self) -> PathBuf {
        assert_eq!(self.persistence, Persistence::Off, "a server with an AOF restarts from it, not from a snapshot");
        let reply = self.cli(&["SAVE"]);
        assert_eq!(reply.trim(), "OK", "SAVE failed: {reply}");
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let copy = self.dir.join(format!("snapshot-{n}.rdb"));
        std::fs::copy(self.dir.join("dump.rdb"), &copy).expect("copy the snapshot");
        copy
    }

    /// kill -9 the server and start it again on the same port from `snapshot` (made by
    /// [`RedisServer::save_snapshot`]): Redis goes back in time to when the snapshot was taken,
    /// as after a crash that lost its last writes (`appendfsync everysec`, or a failover to a
    /// replica that was behind).
    pub fn restart_from(&mut self, snapshot: &Path) {
        self.kill();
        std::fs::copy(snapshot, self.dir.join("dump.rdb")).expect("restore the snapshot");
        self.restart();
    }

    /// Run a command with redis-cli and return its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out =
            Command::new("redis-cli").arg("-p").arg(self.port.to_string()).args(args).output().expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

/// How many calls of the library function whose name ends with `function` (e.g. `_commit`,
/// `_send`: the backend's scripts run as `FCALL durable_<hash>_<script>`) Redis's slow log
/// holds: set `slowlog-log-slower-than` first (0 logs every command).
pub async fn function_calls_logged(c: &mut redis::aio::MultiplexedConnection, function: &str) -> usize {
    let log: Vec<redis::Value> = redis::cmd("SLOWLOG").arg("GET").arg(-1).query_async(c).await.unwrap();
    log.iter()
        .filter(|entry| {
            let redis::Value::Array(fields) = entry else { return false };
            let Some(redis::Value::Array(args)) = fields.get(3) else { return false };
            let arg = |k: usize| match args.get(k) {
                Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            };
            arg(0).eq_ignore_ascii_case("FCALL") && arg(1).ends_with(function)
        })
        .count()
}
