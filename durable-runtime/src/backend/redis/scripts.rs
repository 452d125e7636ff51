//! The Lua scripts (the `.lua` files beside this one, each prefixed with `lib.lua` and run as a
//! function after which the counters it moved are written, except the flow-control ones,
//! `slot.lua` and `rate.lua`, which share only `line.lua`), loading them into Redis, and running
//! them whether or not Redis's script cache has them.

use super::{Redis, backend_err};
use crate::error::Error;
use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, RedisResult, Script, ServerErrorKind, ToRedisArgs};

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

/// One of the backend's scripts. It runs by its SHA1 (`EVALSHA`); when Redis's script cache
/// does not have it (a restart, `SCRIPT FLUSH`), it runs again by its text (`EVAL`, which also
/// caches it). `NOSCRIPT` means the script did not run, so running it again never applies
/// anything twice; `EVAL` cannot answer `NOSCRIPT`, so a flush in between cannot fail the call.
pub(super) struct Lua {
    script: Script,
    code: &'static str,
}

impl Lua {
    fn new(code: &'static str) -> Self {
        Self { script: Script::new(code), code }
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
            Err(e) if is_noscript(&e) => self.lua.cmd(true, &self.keys, &self.args).query_async(con).await,
            r => r,
        }
    }
}

/// The script was not run because Redis's script cache does not have it.
pub(super) fn is_noscript(e: &RedisError) -> bool {
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
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            commit: Lua::new(lua!("commit.lua")),
            create: Lua::new(lua!("create.lua")),
            send: Lua::new(lua!("send.lua")),
            purge: Lua::new(lua!("purge.lua")),
            purge_where: Lua::new(lua!("purge_where.lua")),
            expire: Lua::new(lua!("expire.lua")),
            page: Lua::new(lua!("page.lua")),
            lease: Lua::new(lua!("lease.lua")),
            timers: Lua::new(lua!("timers.lua")),
            apply: Lua::new(lua!("apply.lua")),
            complete: Lua::new(lua!("complete.lua")),
            abandon: Lua::new(lua!("abandon.lua")),
            consumers: Lua::new(lua!("consumers.lua")),
            members: Lua::new(lua!("members.lua")),
            migrate: Lua::new(lua!("migrate.lua")),
            snapshot: Lua::new(lua!("snapshot.lua")),
            slot: Lua::new(lua!("line.lua", "slot.lua")),
            rate: Lua::new(lua!("line.lua", "rate.lua")),
        }
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
        Ok(())
    }
}
