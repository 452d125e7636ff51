//! A Redis Cluster of the test's own: 3 masters and 3 replicas, `redis-server
//! --cluster-enabled yes` on free ports in a temporary directory, joined with `redis-cli
//! --cluster create … --cluster-replicas 1`, with a small `cluster-node-timeout` (1 s) so that a
//! killed master's replica takes over within a few seconds. Killed (and its directory removed)
//! on drop; [`RedisCluster::shared`] is one cluster for the whole test process, killed when the
//! process exits.
//!
//! ```no_run
//! use durable_test_support::redis_cluster::RedisCluster;
//!
//! let cluster = RedisCluster::start();
//! let url = cluster.url(); // redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
//! # drop(url);
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a node may be unreachable before the cluster fails it over (ms).
pub const NODE_TIMEOUT_MS: u64 = 1000;

/// One node of a [`RedisCluster`].
struct Node {
    child: Option<Child>,
    port: u16,
}

/// A running Redis Cluster of 3 masters and 3 replicas.
pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
    /// Every node's `requirepass` (and `masterauth`), if any.
    password: Option<String>,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl RedisCluster {
    /// Start 6 nodes and join them into a cluster of 3 masters with a replica each; returns
    /// once every node sees the cluster as `ok`.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A cluster whose nodes require `password` (`requirepass`, and `masterauth` for the
    /// replicas): its URL carries it.
    pub fn start_with_password(password: &str) -> Self {
        Self::start_with(Some(password.to_string()))
    }

    fn start_with(password: Option<String>) -> Self {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("durable-cluster-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the cluster test directory");
        let mut last_err = String::new();
        for _ in 0..3 {
            let mut c = RedisCluster { nodes: Vec::new(), dir: dir.clone(), password: password.clone() };
            match c.spawn_all().and_then(|()| c.create()) {
                Ok(()) => return c,
                Err(e) => last_err = e,
            }
        }
        panic!("could not start a Redis Cluster: {last_err}");
    }

    /// One cluster for the whole test process (started by the first call), killed with its
    /// directory when the process exits (by a watchdog process: statics are never dropped).
    pub fn shared() -> &'static RedisCluster {
        static SHARED: OnceLock<RedisCluster> = OnceLock::new();
        SHARED.get_or_init(|| {
            let c = RedisCluster::start();
            let pids: Vec<String> =
                c.nodes.iter().filter_map(|n| n.child.as_ref()).map(|ch| ch.id().to_string()).collect();
            // In the background of a shell that exits at once: the watchdog outlives this call.
            let script = format!(
                "(while kill -0 {} 2>/dev/null; do sleep 0.5; done; kill -9 {} 2>/dev/null; rm -rf '{}') >/dev/null 2>&1 &",
                std::process::id(),
                pids.join(" "),
                c.dir.display()
            );
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("start the cluster's watchdog");
            c
        })
    }

    fn spawn_all(&mut self) -> Result<(), String> {
        for _ in 0..6 {
            let port = free_port();
            let mut node = Node { child: None, port };
            self.spawn(&mut node)?;
            self.nodes.push(node);
        }
        Ok(())
    }

    fn spawn(&self, node: &mut Node) -> Result<(), String> {
        let dir = self.dir.join(node.port.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("redis-server");
        if let Some(pw) = &self.password {
            cmd.args(["--requirepass", pw, "--masterauth", pw]);
        }
        let child = cmd
            .args(["--port", &node.port.to_string(), "--bind", "127.0.0.1", "--protected-mode", "no"])
            .args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
            .args(["--cluster-port", &free_port().to_string()])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            // A replica takes over however long it was cut off from its master.
            .args(["--cluster-replica-validity-factor", "0"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "redis-server could not be run ({e}); install it (`apt-get install redis-server`, as .ci/run does)"
                )
            })?;
        node.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.cli(node.port, &["PING"]).trim() == "PONG" {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("redis-server on port {} did not answer PING within 10 s", node.port))
    }

    fn create(&mut self) -> Result<(), String> {
        let addrs: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let mut cmd = Command::new("redis-cli");
        if let Some(pw) = &self.password {
            cmd.args(["--no-auth-warning", "-a", pw]);
        }
        let out = cmd
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .map_err(|e| format!("redis-cli could not be run: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        self.wait_ok(Duration::from_secs(30))
    }

    /// Wait until every running node sees the cluster as `ok`, with 3 masters serving all
    /// slots and every running replica in sync with its master.
    pub fn wait_ok(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let mut last = String::new();
        while Instant::now() < deadline {
            let all_ok = self.running_ports().iter().all(|p| {
                last = self.cli(*p, &["CLUSTER", "INFO"]);
                last.contains("cluster_state:ok") && last.contains("cluster_slots_ok:16384")
            });
            // Replicas in sync with their masters (the cluster is `ok` before they are).
            let synced = self.running_ports().iter().all(|p| {
                let info = self.cli(*p, &["INFO", "replication"]);
                info.contains("role:master")
                    || (info.contains("master_link_status:up") && info.contains("master_sync_in_progress:0"))
            });
            if all_ok && synced && self.masters().len() == 3 {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("the cluster is not ok after {within:?}: {last}"))
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3` (three of the nodes: the client
    /// discovers the others), with `:PASSWORD@` before them if the nodes require one.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().take(3).map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let auth = self.password.as_ref().map(|pw| format!(":{pw}@")).unwrap_or_default();
        format!("redis+cluster://{auth}{}", nodes.join(","))
    }

    /// The process ids of the nodes that run, with their ports.
    pub fn pids(&self) -> Vec<(u16, u32)> {
        self.nodes.iter().filter_map(|n| Some((n.port, n.child.as_ref()?.id()))).collect()
    }

    /// The ports of the nodes that run.
    pub fn running_ports(&self) -> Vec<u16> {
        self.nodes.iter().filter(|n| n.child.is_some()).map(|n| n.port).collect()
    }

    /// The ports of the masters that run and serve slots, as a running node sees them.
    pub fn masters(&self) -> Vec<u16> {
        let Some(&port) = self.running_ports().first() else { return Vec::new() };
        self.cli(port, &["CLUSTER", "NODES"])
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let flags = f.get(2)?;
                if !flags.contains("master") || flags.contains("fail") || f.len() < 9 {
                    return None;
                }
                f.get(1)?.split(['@', ':']).nth(1)?.parse().ok()
            })
            .filter(|p| self.running_ports().contains(p))
            .collect()
    }

    /// The port of the master serving `key`'s slot.
    pub fn master_of(&self, key: &str) -> u16 {
        let port = self.running_ports()[0];
        let slot: u16 = self.cli(port, &["CLUSTER", "KEYSLOT", key]).trim().parse().expect("a slot");
        for m in self.masters() {
            if self.cli(m, &["CLUSTER", "NODES"]).lines().any(|l| l.contains("myself") && serves(l, slot)) {
                return m;
            }
        }
        panic!("no running master serves slot {slot} of {key:?}");
    }

    /// kill -9 the node on `port`.
    pub fn kill(&mut self, port: u16) {
        let node = self.nodes.iter_mut().find(|n| n.port == port).expect("a node of this cluster");
        if let Some(mut c) = node.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Run a command with redis-cli against the node on `port`; its output.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.arg("-p").arg(port.to_string());
        if let Some(pw) = &self.password {
            cmd.args(["--no-auth-warning", "-a", pw]);
        }
        match cmd.args(args).output() {
            Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
            Err(_) => String::new(),
        }
    }
}

/// Whether a `CLUSTER NODES` line lists `slot` among its slot ranges.
fn serves(line: &str, slot: u16) -> bool {
    line.split_whitespace().skip(8).any(|r| {
        let (a, b) = r.split_once('-').unwrap_or((r, r));
        matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
    })
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}
