//! The Lua scripts (the `.lua` files beside this one, each prefixed with `lib.lua`) and loading
//! them into Redis.

use super::{Redis, backend_err};
use crate::error::Error;
use redis::Script;

macro_rules! lua {
    ($file:literal) => {
        concat!(include_str!("lib.lua"), "\n", include_str!($file))
    };
}

/// The backend's scripts, one per atomic operation.
pub(super) struct Scripts {
    pub(super) commit: Script,
    pub(super) create: Script,
    pub(super) send: Script,
    pub(super) purge: Script,
    pub(super) lease: Script,
    pub(super) timers: Script,
    pub(super) apply: Script,
    pub(super) complete: Script,
    pub(super) abandon: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            commit: Script::new(lua!("commit.lua")),
            create: Script::new(lua!("create.lua")),
            send: Script::new(lua!("send.lua")),
            purge: Script::new(lua!("purge.lua")),
            lease: Script::new(lua!("lease.lua")),
            timers: Script::new(lua!("timers.lua")),
            apply: Script::new(lua!("apply.lua")),
            complete: Script::new(lua!("complete.lua")),
            abandon: Script::new(lua!("abandon.lua")),
        }
    }
}

impl Redis {
    /// Load every script (`EVALSHA` in pipelines needs them loaded; single calls reload them
    /// by themselves after a Redis restart).
    pub(super) async fn load_scripts(&self) -> Result<(), Error> {
        let s = &self.inner.scripts;
        let mut c = self.conn();
        for script in [&s.commit, &s.create, &s.send, &s.purge, &s.lease, &s.timers, &s.apply, &s.complete, &s.abandon]
        {
            script.load_async(&mut c).await.map_err(|e| backend_err("loading a script", e))?;
        }
        Ok(())
    }
}
