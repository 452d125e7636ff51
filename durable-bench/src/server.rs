//! The Redis of a run and its durability setting. `--backend redis` without `--redis` starts a
//! `redis-server` of the benchmark's own for each run (the tests' launcher: a free port, a
//! temporary directory, killed and removed on drop), persisting as `--fsync` says; with
//! `--redis URL` the server is asked how it persists (`CONFIG GET`). Either way the setting
//! is printed with every result: `[redis, AOF everysec]`, `[redis, no persistence]`, `[memory]`.

use durable_test_support::redis_server::{Persistence, RedisServer};
use std::fmt;

/// `--fsync`'s values, as given on the command line.
pub(crate) fn parse_fsync(s: &str) -> Option<Persistence> {
    match s {
        "everysec" => Some(Persistence::AofEverysec),
        "always" => Some(Persistence::AofAlways),
        "off" => Some(Persistence::Off),
        _ => None,
    }
}

/// The `redis-server` arguments of a server of the benchmark's own.
pub(crate) fn server_args(p: Persistence) -> String {
    let mut args = vec!["--save \"\""];
    args.extend(p.args());
    args.join(" ")
}

/// Which Redis the runs use.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RedisTarget {
    /// A fresh `redis-server` of the benchmark's own for each run.
    Own(Persistence),
    /// The server at this URL (`--redis`), a fresh task hub for each run.
    Url(String),
}

/// The durability setting of a run, shown as `[redis, AOF everysec]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Setting(pub(crate) String);

impl Setting {
    pub(crate) fn memory() -> Setting {
        Setting("memory".into())
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.0)
    }
}

/// How a Redis server persists, from `CONFIG GET`, and its version.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ServerConfig {
    pub(crate) appendonly: String,
    pub(crate) appendfsync: String,
    pub(crate) save: String,
    pub(crate) version: String,
}

impl ServerConfig {
    /// Ask the server at `url` (`CONFIG GET appendonly appendfsync save`, `INFO server`). A
    /// cluster URL (`redis+cluster://a,b,c`) asks its first node.
    pub(crate) async fn query(url: &str) -> Result<ServerConfig, String> {
        let node = first_node(url);
        let client = redis::Client::open(node.as_str()).map_err(|e| format!("redis URL {node}: {e}"))?;
        let mut conn =
            client.get_multiplexed_async_connection().await.map_err(|e| format!("connecting to {node}: {e}"))?;
        let mut get = async |name: &str| -> Result<String, String> {
            let reply: Vec<String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query_async(&mut conn)
                .await
                .map_err(|e| format!("CONFIG GET {name} on {node}: {e}"))?;
            Ok(reply.get(1).cloned().unwrap_or_default())
        };
        let (appendonly, appendfsync, save) = (get("appendonly").await?, get("appendfsync").await?, get("save").await?);
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("INFO server on {node}: {e}"))?;
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(ServerConfig { appendonly, appendfsync, save, version })
    }

    /// `redis, AOF everysec`; `what` names the server (`redis`, `redis cluster`).
    pub(crate) fn setting(&self, what: &str) -> Setting {
        let rdb = if self.save.is_empty() { None } else { Some(format!("RDB save \"{}\"", self.save)) };
        let how = match (self.appendonly == "yes", rdb) {
            (true, None) => format!("AOF {}", self.appendfsync),
            (true, Some(rdb)) => format!("AOF {}, {rdb}", self.appendfsync),
            (false, None) => "no persistence".into(),
            (false, Some(rdb)) => format!("no AOF, {rdb}"),
        };
        Setting(format!("{what}, {how}"))
    }

    /// What `CONFIG GET` said, for the header.
    pub(crate) fn describe(&self) -> String {
        format!(
            "Redis {}: appendonly {}, appendfsync {}, save {:?}",
            self.version, self.appendonly, self.appendfsync, self.save
        )
    }

    /// Does the server persist as `p` asks?
    fn matches(&self, p: Persistence) -> bool {
        let aof = |fsync: &str| self.appendonly == "yes" && self.appendfsync == fsync;
        self.save.is_empty()
            && match p {
                Persistence::Off => self.appendonly == "no",
                Persistence::AofEverysec => aof("everysec"),
                Persistence::AofAlways => aof("always"),
            }
    }
}

/// `redis+cluster://[auth@]a:1,b:2` → `redis://[auth@]a:1` (`rediss` likewise); any other URL
/// as it is.
fn first_node(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("+cluster://") else { return url.to_string() };
    let (auth, hosts) = match rest.rsplit_once('@') {
        Some((auth, hosts)) => (format!("{auth}@"), hosts),
        None => (String::new(), rest),
    };
    let first = hosts.split(',').next().unwrap_or(hosts);
    format!("{scheme}://{auth}{first}")
}

/// The Redis of one run: a fresh server of the benchmark's own (killed and its directory
/// removed when this is dropped, also when the run fails or is interrupted) or the one given.
pub(crate) struct RunRedis {
    pub(crate) url: String,
    pub(crate) config: ServerConfig,
    /// The server started for this run, if any: held to be stopped when this is dropped.
    #[cfg_attr(not(test), expect(dead_code, reason = "held for its drop; the tests look at it"))]
    pub(crate) server: Option<RedisServer>,
}

impl RunRedis {
    pub(crate) async fn open(target: &RedisTarget) -> Result<RunRedis, String> {
        match target {
            RedisTarget::Url(url) => {
                Ok(RunRedis { url: url.clone(), config: ServerConfig::query(url).await?, server: None })
            }
            &RedisTarget::Own(p) => {
                // Started on a blocking thread (it polls until the server answers). Should this
                // future be dropped meanwhile, the server is dropped (killed) with its result.
                let server = tokio::task::spawn_blocking(move || RedisServer::try_start_with(p))
                    .await
                    .map_err(|e| format!("starting redis-server: {e}"))??;
                let url = server.url();
                let config = ServerConfig::query(&url).await?;
                if !config.matches(p) {
                    return Err(format!(
                        "the redis-server started with {} reports {}",
                        server_args(p),
                        config.describe()
                    ));
                }
                Ok(RunRedis { url, config, server: Some(server) })
            }
        }
    }

    pub(crate) fn setting(&self) -> Setting {
        self.config.setting("redis")
    }
}

/// `redis-server --version`'s `v=…`, for the header ("unknown" if it does not run).
pub(crate) fn server_version() -> String {
    std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            out.split_whitespace().find_map(|w| w.strip_prefix("v=").map(String::from))
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(appendonly: &str, appendfsync: &str, save: &str) -> ServerConfig {
        ServerConfig {
            appendonly: appendonly.into(),
            appendfsync: appendfsync.into(),
            save: save.into(),
            version: "7".into(),
        }
    }

    #[test]
    fn settings_name_the_persistence() {
        assert_eq!(config("yes", "everysec", "").setting("redis").to_string(), "[redis, AOF everysec]");
        assert_eq!(config("yes", "always", "").setting("redis").to_string(), "[redis, AOF always]");
        assert_eq!(config("no", "everysec", "").setting("redis").to_string(), "[redis, no persistence]");
        assert_eq!(
            config("no", "everysec", "3600 1").setting("redis cluster").to_string(),
            "[redis cluster, no AOF, RDB save \"3600 1\"]"
        );
        assert_eq!(Setting::memory().to_string(), "[memory]");
        assert!(config("yes", "always", "").matches(Persistence::AofAlways));
        assert!(!config("yes", "always", "").matches(Persistence::AofEverysec));
        assert!(config("no", "everysec", "").matches(Persistence::Off));
        assert!(!config("no", "everysec", "3600 1").matches(Persistence::Off));
    }

    #[test]
    fn a_cluster_url_is_asked_through_its_first_node() {
        assert_eq!(first_node("redis+cluster://127.0.0.1:7000,127.0.0.1:7001"), "redis://127.0.0.1:7000");
        assert_eq!(first_node("rediss+cluster://:pw@h:1,h:2"), "rediss://:pw@h:1");
        assert_eq!(first_node("redis://h:1/"), "redis://h:1/");
    }

    #[test]
    fn fsync_values_parse() {
        assert_eq!(parse_fsync("everysec"), Some(Persistence::AofEverysec));
        assert_eq!(parse_fsync("always"), Some(Persistence::AofAlways));
        assert_eq!(parse_fsync("off"), Some(Persistence::Off));
        assert_eq!(parse_fsync("no"), None);
        assert_eq!(server_args(Persistence::Off), "--save \"\" --appendonly no");
    }
}
