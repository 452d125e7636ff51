//! Check: the rules the macros enforce before generating anything. `signature` for the three
//! macros' signatures; `body` (with `determinism`) for an orchestrator's body: determinism and
//! where `.await` may stand.

mod body;
mod determinism;
pub(crate) mod signature;

pub(crate) use body::check_body;
