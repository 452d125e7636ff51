//! The Lua scripts (the `.lua` files beside this one, each prefixed with `lib.lua` and run as a
//! function after which the counters it moved are written, except the flow-control ones,
//! `slot.lua` and `rate.lua`, which share only `line.lua`), loading them into Redis, and running
//! them whether or not Redis's script cache has them.
//!
//! On Redis 7 and later the scripts that share `lib.lua` are also loaded as one function
//! library (`FUNCTION LOAD`) and run with `FCALL`: `lib.lua`'s definitions then run once when
//! the library loads instead of at every call (about 3.6 µs of Redis's time a call). A call
//! Redis answers "Function not found" (a restart without persistence, `FUNCTION FLUSH`, a new
//! cluster node) did not run: it runs again as a script, and scripts are used until the library
//! is loaded again (at the next heartbeat).

use super::{Redis, backend_err};
use crate::error::Error;
use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, RedisResult, Script, ServerErrorKind, ToRedisArgs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

macro_rules! lua {
    // The script's body runs as a function, then the counters it moved are written (`advance`
    // and `flush_counters` in `lib.lua`), then its reply is returned.
    ($file:literal) => {
        concat!(
            include_str!("lib.lua"),
            "\nlocal function script_body()\n",
            include_str!($file),
            "\nend\nlocal reply = script_body()\nflush_counters()\nreturn reply\n"
        )
    };
    ($lib:literal, $file:literal) => {
        concat!(include_str!($lib), "\n", include_str!($file))
    };
}

/// The scripts that share `lib.lua`, by name: what the function library holds.
const LIBRARY_SCRIPTS: [(&str, &str); 16] = [
    ("commit", include_str!("commit.lua")),
    ("create", include_str!("create.lua")),
    ("send", include_str!("send.lua")),
    ("purge", include_str!("purge.lua")),
    ("purge_where", include_str!("purge_where.lua")),
    ("expire", include_str!("expire.lua")),
    ("page", include_str!("page.lua")),
    ("lease", include_str!("lease.lua")),
    ("timers", include_str!("timers.lua")),
    ("apply", include_str!("apply.lua")),
    ("complete", include_str!("complete.lua")),
    ("abandon", include_str!("abandon.lua")),
    ("consumers", include_str!("consumers.lua")),
    ("members", include_str!("members.lua")),
    ("migrate", include_str!("migrate.lua")),
    ("snapshot", include_str!("snapshot.lua")),
];

/// The function library: `lib.lua` once, then each script as a function that starts a call
/// afresh (`lib.lua`'s per-call state: the script's time, the counters it moved), runs the
/// script's body and writes the counters. Named after a hash of its text, so that processes
/// of different releases each call their own. Its name and text.
fn library() -> (String, String) {
    let mut body = String::from(include_str!("lib.lua"));
    body.push_str("\nlocal function begin_call()\n  script_time = nil\n  counters = {}\n  moved = {}\nend\n");
    for (name, code) in LIBRARY_SCRIPTS {
        body.push_str(&format!(
            "redis.register_function('@@_{name}', function(KEYS, ARGV)\n  begin_call()\n  local function script_body()\n{code}\n  end\n  local reply = script_body()\n  flush_counters()\n  return reply\nend)\n"
        ));
    }
    let name = format!("durable_{}", &Script::new(&body).get_hash()[..16]);
    let text = format!("#!lua name={name}\n{}", body.replace("@@", &name));
    (name, text)
}

/// One of the backend's scripts. It runs by its SHA1 (`EVALSHA`); when Redis's script cache
/// does not have it (a restart, `SCRIPT FLUSH`), it runs again by its text (`EVAL`, which also
/// caches it). `NOSCRIPT` means the script did not run, so running it again never applies
/// anything twice; `EVAL` cannot answer `NOSCRIPT`, so a flush in between cannot fail the call.
pub(super) struct Lua {
    script: Script,
    code: &'static str,
    /// Its function in the library, and whether Redis has the library loaded.
    function: Option<(String, Arc<AtomicBool>)>,
}

impl Lua {
    fn new(code: &'static str) -> Self {
        Self { script: Script::new(code), code, function: None }
    }

    /// A script of the function library, whose function is `name` (see [`library`]).
    fn in_library(code: &'static str, library: &str, name: &str, loaded: &Arc<AtomicBool>) -> Self {
        Self { script: Script::new(code), code, function: Some((format!("{library}_{name}"), loaded.clone())) }
    }

    /// Whether `e` says the call did not run because Redis has not got the script (`NOSCRIPT`)
    /// or its function ("Function not found"): then it runs again by its text. The latter also
    /// turns the library off until it is loaded again.
    pub(super) fn missed(&self, e: &RedisError) -> bool {
        if is_noscript(e) {
            return true;
        }
        // Only `FCALL` answers so, and only when it did not run the function.
        if e.code() == Some("ERR")
            && e.detail() == Some("Function not found")
            && let Some((name, loaded)) = &self.function
        {
            if loaded.swap(false, Ordering::Relaxed) {
                tracing::warn!(function = %name, "Redis has not got this release's function library (it restarted without persistence, or was flushed): running scripts until it is loaded again");
            }
            return true;
        }
        false
    }

    /// A call of this script with its first key.
    pub(super) fn key<T: ToRedisArgs>(&self, key: T) -> Call<'_> {
        Call { lua: self, keys: key.to_redis_args(), args: Vec::new() }
    }

    /// The command that runs this script with `keys` and `args`: by SHA1, or by its text.
    pub(super) fn cmd(&self, by_text: bool, keys: &[Vec<u8>], args: &[Vec<u8>]) -> Cmd {
        let mut cmd = if by_text {
            let mut c = redis::cmd("EVAL");
            c.arg(self.code);
            c
        } else if let Some((name, loaded)) = &self.function
            && loaded.load(Ordering::Relaxed)
        {
            let mut c = redis::cmd("FCALL");
            c.arg(name);
            c
        } else {
            let mut c = redis::cmd("EVALSHA");
            c.arg(self.script.get_hash());
            c
        };
        cmd.arg(keys.len()).arg(keys).arg(args);
        cmd
    }
}

/// A prepared call of a [`Lua`] script: its keys and arguments.
pub(super) struct Call<'a> {
    lua: &'a Lua,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl Call<'_> {
    /// Add a key (`KEYS`) after the first.
    pub(super) fn key_more<T: ToRedisArgs>(mut self, key: T) -> Self {
        self.keys.extend(key.to_redis_args());
        self
    }

    /// Add an argument (`ARGV`).
    pub(super) fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.args.extend(arg.to_redis_args());
        self
    }

    /// Run the script: by SHA1, and by its text if Redis does not have it cached.
    pub(super) async fn invoke_async<T: FromRedisValue>(
        &self,
        con: &mut impl redis::aio::ConnectionLike,
    ) -> RedisResult<T> {
        match self.lua.cmd(false, &self.keys, &self.args).query_async(con).await {
            Err(e) if self.lua.missed(&e) => self.lua.cmd(true, &self.keys, &self.args).query_async(con).await,
            r => r,
        }
    }
}

/// The script was not run because Redis's script cache does not have it.
fn is_noscript(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
}

/// The backend's scripts, one per atomic operation.
pub(super) struct Scripts {
    pub(super) commit: Lua,
    pub(super) create: Lua,
    pub(super) send: Lua,
    pub(super) purge: Lua,
    pub(super) purge_where: Lua,
    pub(super) expire: Lua,
    pub(super) page: Lua,
    pub(super) lease: Lua,
    pub(super) timers: Lua,
    pub(super) apply: Lua,
    pub(super) complete: Lua,
    pub(super) abandon: Lua,
    pub(super) consumers: Lua,
    pub(super) members: Lua,
    pub(super) migrate: Lua,
    pub(super) snapshot: Lua,
    pub(super) slot: Lua,
    pub(super) rate: Lua,
    /// The function library's name and text, and whether Redis has it loaded.
    library: (String, String),
    loaded: Arc<AtomicBool>,
    /// Redis has no functions (before 7.0): never try again.
    unsupported: AtomicBool,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let library = library();
        let loaded = Arc::new(AtomicBool::new(false));
        let lib = |code, name| Lua::in_library(code, &library.0, name, &loaded);
        Self {
            commit: lib(lua!("commit.lua"), "commit"),
            create: lib(lua!("create.lua"), "create"),
            send: lib(lua!("send.lua"), "send"),
            purge: lib(lua!("purge.lua"), "purge"),
            purge_where: lib(lua!("purge_where.lua"), "purge_where"),
            expire: lib(lua!("expire.lua"), "expire"),
            page: lib(lua!("page.lua"), "page"),
            lease: lib(lua!("lease.lua"), "lease"),
            timers: lib(lua!("timers.lua"), "timers"),
            apply: lib(lua!("apply.lua"), "apply"),
            complete: lib(lua!("complete.lua"), "complete"),
            abandon: lib(lua!("abandon.lua"), "abandon"),
            consumers: lib(lua!("consumers.lua"), "consumers"),
            members: lib(lua!("members.lua"), "members"),
            migrate: lib(lua!("migrate.lua"), "migrate"),
            snapshot: lib(lua!("snapshot.lua"), "snapshot"),
            slot: Lua::new(lua!("line.lua", "slot.lua")),
            rate: Lua::new(lua!("line.lua", "rate.lua")),
            library,
            loaded,
            unsupported: AtomicBool::new(false),
        }
    }

    /// Whether calls go through the function library.
    pub(super) fn functions_loaded(&self) -> bool {
        self.loaded.load(Ordering::Relaxed)
    }
}

impl Redis {
    /// Load every script, so that the first calls need not send their text.
    pub(super) async fn load_scripts(&self) -> Result<(), Error> {
        let s = &self.inner.scripts;
        let mut c = self.conn();
        for lua in [
            &s.commit,
            &s.create,
            &s.send,
            &s.purge,
            &s.purge_where,
            &s.expire,
            &s.page,
            &s.lease,
            &s.timers,
            &s.apply,
            &s.complete,
            &s.abandon,
            &s.consumers,
            &s.members,
            &s.migrate,
            &s.snapshot,
            &s.slot,
            &s.rate,
        ] {
            lua.script.load_async(&mut c).await.map_err(|e| backend_err("loading a script", e))?;
        }
        self.load_functions().await;
        Ok(())
    }

    /// Load the function library if Redis has not got it loaded (as far as this handle knows),
    /// and turn calls through it on. A Redis without functions (before 7.0), or one that
    /// refuses `FUNCTION LOAD` (an ACL), keeps running scripts.
    pub(super) async fn load_functions(&self) {
        let s = &self.inner.scripts;
        if s.functions_loaded() || s.unsupported.load(Ordering::Relaxed) {
            return;
        }
        let r: RedisResult<String> =
            redis::cmd("FUNCTION").arg("LOAD").arg("REPLACE").arg(&s.library.1).query_async(&mut self.conn()).await;
        match r {
            Ok(_) => {
                s.loaded.store(true, Ordering::Relaxed);
                tracing::debug!(library = %s.library.0, "function library loaded");
            }
            Err(e) => {
                if e.to_string().to_ascii_lowercase().contains("unknown") {
                    s.unsupported.store(true, Ordering::Relaxed);
                }
                tracing::debug!(error = %e, "no function library (running scripts)");
            }
        }
    }
}
