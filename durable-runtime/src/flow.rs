//! Flow control: how many instances of an orchestrator run at once per key
//! ([`ConcurrencyLimit`]), how many executions of an activity run at once across all workers
//! (`WorkerBuilder::activity_concurrency`), and how many activity starts a period allows
//! ([`RateLimit`]). Registered on the worker builder; every worker of a task hub must be given
//! the same limits.
//!
//! This module holds the user-facing types, their type-erased forms the engine and the worker
//! use, and [`LocalFlow`], the in-process slots and rate windows of backends that keep no
//! shared state for them (the in-memory backend, and the default of the storage contract).

use crate::error::Error;
use crate::time::Millis;
use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The entity name of the semaphores behind [`ConcurrencyLimit`]s: one entity per
/// orchestrator and key, `durable.limit` with key `<orchestrator>/<key>` (its state shows the
/// instances holding a slot and those waiting, in order).
pub const LIMIT_ENTITY: &str = "durable.limit";

/// A key function over the typed input.
type TypedKeyFn<I> = Arc<dyn Fn(&I) -> String + Send + Sync>;

/// A key function, type-erased: the JSON input to the key, or why there is none (the input does
/// not decode, the function panicked).
pub(crate) type KeyFn = Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// At most `max` running instances of an orchestrator at once, per key derived from its input
/// (or in all), across every worker of the task hub. Instances over the limit wait, in the
/// order they started, with status `Pending` and a `reason` naming the limit and the key;
/// nothing is dropped. Register it with `WorkerBuilder::concurrency_limit`.
///
/// ```
/// use durable_runtime::flow::ConcurrencyLimit;
/// #[derive(serde::Deserialize)]
/// struct Order { customer: String }
/// let one_per_customer = ConcurrencyLimit::per_key(1, |o: &Order| o.customer.clone())?;
/// let ten_in_all = ConcurrencyLimit::<Order>::new(10)?;
/// # let _ = (one_per_customer, ten_in_all);
/// # Ok::<(), durable_runtime::Error>(())
/// ```
///
/// The key function must be deterministic and stay the same across deploys (the slot is given
/// back under the key computed from the same input); one that panics fails the instance with
/// the panic message.
pub struct ConcurrencyLimit<I> {
    max: u32,
    key: Option<TypedKeyFn<I>>,
}

impl<I> std::fmt::Debug for ConcurrencyLimit<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConcurrencyLimit").field("max", &self.max).field("per_key", &self.key.is_some()).finish()
    }
}

fn check_max(max: u32, what: &str) -> Result<(), Error> {
    if max == 0 {
        return Err(Error::Config(format!(
            "{what} is 0: it must be at least 1 (0 would never let anything run; to stop work, do not register it)"
        )));
    }
    Ok(())
}

impl<I: serde::de::DeserializeOwned + 'static> ConcurrencyLimit<I> {
    /// At most `max` running instances in all. `Error::Config` if `max` is 0.
    pub fn new(max: u32) -> Result<Self, Error> {
        check_max(max, "the concurrency limit")?;
        Ok(Self { max, key: None })
    }

    /// At most `max` running instances per key, the key being `key(&input)` (a customer id,
    /// say). `Error::Config` if `max` is 0.
    pub fn per_key<K: ToString>(max: u32, key: impl Fn(&I) -> K + Send + Sync + 'static) -> Result<Self, Error> {
        check_max(max, "the concurrency limit")?;
        Ok(Self { max, key: Some(Arc::new(move |i: &I| key(i).to_string())) })
    }

    /// The limit.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// The type-erased form for orchestrator `name`.
    pub(crate) fn erase(self, name: &'static str) -> OrchestratorLimit {
        OrchestratorLimit {
            max: self.max,
            key: erase_key(self.key, name, "the concurrency key function", "orchestrator"),
        }
    }
}

/// At most `max` starts of an activity per `period`, in all or per key derived from its input,
/// across every worker of the task hub: any window of `period` holds at most `max` starts
/// (a sliding window, by the backend's clock: Redis's on Redis). Items over the rate wait,
/// unacknowledged; they neither fail nor are dropped. Register it with
/// `WorkerBuilder::rate_limit`.
///
/// ```
/// use durable_runtime::flow::RateLimit;
/// use std::time::Duration;
/// #[derive(serde::Deserialize)]
/// struct Email { domain: String }
/// let limit = RateLimit::new(100, Duration::from_secs(60))?.per_key(|e: &Email| e.domain.clone());
/// # let _ = limit;
/// # Ok::<(), durable_runtime::Error>(())
/// ```
pub struct RateLimit<I> {
    max: u32,
    period: Duration,
    key: Option<TypedKeyFn<I>>,
}

impl<I> std::fmt::Debug for RateLimit<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("max", &self.max)
            .field("period", &self.period)
            .field("per_key", &self.key.is_some())
            .finish()
    }
}

impl<I: serde::de::DeserializeOwned + 'static> RateLimit<I> {
    /// At most `max` starts per `period`. `Error::Config` if `max` is 0 or `period` is under a
    /// millisecond (the resolution of the clocks that measure it).
    pub fn new(max: u32, period: Duration) -> Result<Self, Error> {
        check_max(max, "the rate limit")?;
        if period < Duration::from_millis(1) {
            return Err(Error::Config(format!(
                "the period of a rate limit is {period:?}: it must be at least 1 ms (say `Duration::from_secs(60)` for {max} a minute)"
            )));
        }
        Ok(Self { max, period, key: None })
    }

    /// Count starts per key, the key being `key(&input)` (a recipient's domain, say), instead
    /// of in all. A key function that panics fails the activity's attempt with the panic
    /// message (its retry policy applies).
    pub fn per_key<K: ToString>(mut self, key: impl Fn(&I) -> K + Send + Sync + 'static) -> Self {
        self.key = Some(Arc::new(move |i: &I| key(i).to_string()));
        self
    }

    /// The type-erased form for activity `name`.
    pub(crate) fn erase(self, name: &'static str) -> ActivityRate {
        ActivityRate {
            max: self.max,
            period: self.period,
            key: erase_key(self.key, name, "the rate-limit key function", "activity"),
        }
    }
}

fn erase_key<I: serde::de::DeserializeOwned + 'static>(
    key: Option<TypedKeyFn<I>>,
    name: &'static str,
    what: &'static str,
    kind: &'static str,
) -> Option<KeyFn> {
    let key = key?;
    Some(Arc::new(move |json: &str| {
        let input: I = crate::payload::from_json(json, format!("the input of {kind} `{name}`"))?;
        catch_unwind(AssertUnwindSafe(|| key(&input)))
            .map_err(|p| format!("{what} of `{name}` panicked: {}", panic_text(p.as_ref())))
    }))
}

/// The message of a panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    }
}

/// A [`ConcurrencyLimit`] of one orchestrator, type-erased (what the engine uses).
#[derive(Clone)]
pub struct OrchestratorLimit {
    /// At most this many running instances per key.
    pub max: u32,
    key: Option<KeyFn>,
}

impl std::fmt::Debug for OrchestratorLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrchestratorLimit").field("max", &self.max).field("per_key", &self.key.is_some()).finish()
    }
}

impl OrchestratorLimit {
    /// The key of an instance with this JSON input (`""` for a limit in all), or why there is
    /// none (the input does not decode, the key function panicked).
    pub fn key(&self, input: &str) -> Result<String, String> {
        match &self.key {
            None => Ok(String::new()),
            Some(f) => f(input),
        }
    }
}

/// A [`RateLimit`] of one activity, type-erased (what the worker uses).
#[derive(Clone)]
pub struct ActivityRate {
    /// Starts allowed per period.
    pub max: u32,
    /// The period.
    pub period: Duration,
    key: Option<KeyFn>,
}

impl std::fmt::Debug for ActivityRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityRate")
            .field("max", &self.max)
            .field("period", &self.period)
            .field("per_key", &self.key.is_some())
            .finish()
    }
}

impl ActivityRate {
    /// The key of an attempt with this JSON input (`""` for a limit in all), or why there is
    /// none.
    pub fn key(&self, input: &str) -> Result<String, String> {
        match &self.key {
            None => Ok(String::new()),
            Some(f) => f(input),
        }
    }
}

/// How long a waiter that stopped asking keeps its place in line.
const WAITER_STALE: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Line {
    /// Holders of a slot (concurrency) — unused for rates.
    holders: Vec<String>,
    /// Start times in the window (rates).
    starts: VecDeque<Millis>,
    /// Who waits, in order of arrival, with when each last asked.
    waiters: VecDeque<(String, Instant)>,
}

impl Line {
    /// Drop waiters that stopped asking; whether `who` may take one of `free` places now (it
    /// is among the first `free` waiters, or no one waits); if not, it joins or stays in line.
    fn admit(&mut self, who: &str, free: usize) -> bool {
        let now = Instant::now();
        self.waiters.retain(|(w, seen)| w == who || now.duration_since(*seen) < WAITER_STALE);
        let rank = self.waiters.iter().position(|(w, _)| w == who);
        let admitted = match rank {
            Some(r) => r < free,
            None => self.waiters.len() < free,
        };
        match (admitted, rank) {
            (true, Some(r)) => {
                self.waiters.remove(r);
            }
            (false, Some(r)) => self.waiters[r].1 = now,
            (false, None) => self.waiters.push_back((who.to_string(), now)),
            (true, None) => {}
        }
        admitted
    }
}

/// Slots and rate windows kept in this process: what [`Memory`](crate::backend::Memory) uses
/// (its workers are all in this process) and the default of the storage contract. Waiters are
/// let in in the order they first asked.
#[derive(Default)]
pub struct LocalFlow {
    lines: Mutex<HashMap<String, Line>>,
}

impl std::fmt::Debug for LocalFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalFlow").finish_non_exhaustive()
    }
}

impl LocalFlow {
    /// Take a slot of `name` (at most `max` holders) for `holder`: whether it got one. Asking
    /// again while holding one keeps it.
    pub fn acquire(&self, name: &str, max: u32, holder: &str) -> bool {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let line = lines.entry(name.to_string()).or_default();
        if line.holders.iter().any(|h| h == holder) {
            return true;
        }
        let free = (max as usize).saturating_sub(line.holders.len());
        let ok = line.admit(holder, free);
        if ok {
            line.holders.push(holder.to_string());
        }
        ok
    }

    /// Give back `holder`'s slot of `name`, if it has one.
    pub fn release(&self, name: &str, holder: &str) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(line) = lines.get_mut(name) {
            line.holders.retain(|h| h != holder);
            if line.holders.is_empty() && line.waiters.is_empty() && line.starts.is_empty() {
                lines.remove(name);
            }
        }
    }

    /// Record a start of `name` at `now` for `holder` if the window of `period` before it
    /// holds fewer than `max`: `None`; else how long until one leaves the window.
    pub fn take_rate(&self, name: &str, max: u32, period: Duration, holder: &str, now: Millis) -> Option<Duration> {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let line = lines.entry(name.to_string()).or_default();
        let period_ms = period.as_millis().max(1) as u64;
        while line.starts.front().is_some_and(|t| *t + period_ms <= now) {
            line.starts.pop_front();
        }
        let free = (max as usize).saturating_sub(line.starts.len());
        if line.admit(holder, free) {
            line.starts.push_back(now);
            return None;
        }
        let wait = match line.starts.front() {
            Some(oldest) if line.starts.len() >= max as usize => (*oldest + period_ms).saturating_sub(now),
            // Others are ahead in line for the free places.
            _ => 1,
        };
        Some(Duration::from_millis(wait.max(1)))
    }

    /// How many hold a slot of `name`.
    pub fn holders(&self, name: &str) -> usize {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).get(name).map_or(0, |l| l.holders.len())
    }
}

/// The process-wide [`LocalFlow`] of backends that keep none of their own.
pub fn process_flow() -> &'static LocalFlow {
    static FLOW: std::sync::OnceLock<LocalFlow> = std::sync::OnceLock::new();
    FLOW.get_or_init(LocalFlow::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_go_to_waiters_in_order() {
        let f = LocalFlow::default();
        assert!(f.acquire("a", 1, "x"));
        assert!(!f.acquire("a", 1, "y"));
        assert!(!f.acquire("a", 1, "z"));
        f.release("a", "x");
        assert!(!f.acquire("a", 1, "z"), "y asked first");
        assert!(f.acquire("a", 1, "y"));
        f.release("a", "y");
        assert!(f.acquire("a", 1, "z"));
    }

    #[test]
    fn a_window_holds_at_most_max_starts() {
        let f = LocalFlow::default();
        let p = Duration::from_millis(1000);
        assert_eq!(f.take_rate("r", 2, p, "a", 0), None);
        assert_eq!(f.take_rate("r", 2, p, "b", 10), None);
        assert_eq!(f.take_rate("r", 2, p, "c", 500), Some(Duration::from_millis(500)));
        assert_eq!(f.take_rate("r", 2, p, "c", 1000), None);
    }

    #[test]
    fn zero_is_refused() {
        let e = ConcurrencyLimit::<String>::new(0).unwrap_err().to_string();
        assert!(e.contains("concurrency limit is 0"), "{e}");
        let e = RateLimit::<String>::new(0, Duration::from_secs(1)).unwrap_err().to_string();
        assert!(e.contains("rate limit is 0"), "{e}");
        let e = RateLimit::<String>::new(1, Duration::ZERO).unwrap_err().to_string();
        assert!(e.contains("at least 1 ms"), "{e}");
    }
}
