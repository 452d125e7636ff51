//! Support for the code the macros generate. Not a stable API: do not use it directly.

#![allow(missing_docs)]

pub use crate::context::OrchestrationContext;
pub use crate::entity::{Entity, EntitySink};
pub use crate::orchestrator::{Activity, BoxFuture, Orchestrator, StepInput, StepResult};
pub use crate::task::{DurableTask, poll_task};
pub use serde;
use serde::{Serialize, de::DeserializeOwned};
pub use serde_json;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt::Display;
use std::marker::PhantomData;
use std::ops::ControlFlow;

/// How the generated step function ends.
pub enum Step<R> {
    Suspend(Vec<u8>),
    Done(R),
    Error(StepResult),
}

/// What an orchestrator's return type must be: `Result<T, E>` with `E: Display`.
#[diagnostic::on_unimplemented(
    message = "an orchestrator must return `Result<T, E>` where `T` is serializable and `E` displays (e.g. `OrchestrationError`), not `{Self}`",
    label = "this return type"
)]
pub trait OrchestrationOutcome {
    type Ok: Serialize + DeserializeOwned + 'static;
    fn into_outcome(self) -> Result<Self::Ok, String>;
}

impl<T: Serialize + DeserializeOwned + 'static, E: Display> OrchestrationOutcome for Result<T, E> {
    type Ok = T;
    fn into_outcome(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

pub fn finish<R: OrchestrationOutcome>(step: Step<R>) -> StepResult {
    match step {
        Step::Suspend(bytes) => StepResult::Suspended(bytes),
        Step::Error(e) => e,
        Step::Done(r) => match r.into_outcome() {
            Ok(v) => match crate::payload::to_json(&v, "the orchestrator's output") {
                Ok(json) => StepResult::Completed(json),
                Err(e) => StepResult::Failed(e),
            },
            Err(msg) => StepResult::Failed(msg),
        },
    }
}

/// What an activity's return type must be.
#[diagnostic::on_unimplemented(
    message = "an activity must return `Result<T, E>` where `T` is serializable and `E` converts into `ActivityError`, not `{Self}`",
    label = "this return type",
    note = "`ActivityError` converts from any `std::error::Error`, `String` and `&str`"
)]
pub trait ActivityOutcome {
    type Ok: Serialize + DeserializeOwned + Send + 'static;
    fn into_outcome(self) -> Result<Self::Ok, crate::ActivityError>;
}

impl<T, E> ActivityOutcome for Result<T, E>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    crate::ActivityError: From<E>,
{
    type Ok = T;
    fn into_outcome(self) -> Result<T, crate::ActivityError> {
        self.map_err(crate::ActivityError::from)
    }
}

pub fn decode_input<T: DeserializeOwned>(json: &str, name: &str) -> Result<T, StepResult> {
    crate::payload::from_json(json, format_args!("the input of orchestrator `{name}`")).map_err(StepResult::BadInput)
}

/// The fingerprint of an orchestrator's code (its tokens' text), at compile time.
pub const fn fingerprint(text: &str) -> u64 {
    crate::hash::fnv1a(text.as_bytes())
}

/// A suspension point of a generated state machine: its key (stable under edits elsewhere),
/// its program counter in this code, its source line and the locals live there.
#[derive(Debug)]
pub struct Site {
    pub key: &'static str,
    pub pc: u32,
    pub line: u32,
    pub locals: &'static [&'static str],
}

/// Decode a snapshot and find where this code resumes it: at its `pc` if this very body wrote
/// it, else at the suspension point with the same key, if the same locals are live there and
/// neither the point nor its locals are ambiguous.
pub fn load_state(
    bytes: &[u8],
    name: &str,
    fingerprint: u64,
    sites: &[Site],
) -> Result<(crate::payload::Snapshot, u32), StepResult> {
    let st: crate::payload::Snapshot =
        crate::payload::from_state(bytes).map_err(|e| StepResult::BadState(format!("orchestrator `{name}`: {e}")))?;
    if st.fingerprint == fingerprint {
        // The same body: resume at `pc` — once the point there has the saved key (a snapshot
        // written before keys were recorded has no types and is trusted as it was).
        let legacy = st.types.is_empty() && !st.locals.is_empty();
        if legacy || sites.iter().any(|s| s.pc == st.pc && s.key == st.at) {
            let pc = st.pc;
            return Ok((st, pc));
        }
    }
    let at = || if st.line > 0 { format!("`{}` (line {})", st.at, st.line) } else { format!("`{}`", st.at) };
    let refuse = |why: String| Err(StepResult::BadState(why));
    if st.at.contains('#') {
        return refuse(format!(
            "it is suspended at {}, one of several points of the code that wrote it awaiting the same text, so other code \
             cannot tell which one it is; name each with `.checkpoint(\"…\")` (keys stay the same when the text changes)",
            at()
        ));
    }
    let Some(site) = sites.iter().find(|s| s.key == st.at) else {
        let keys: Vec<String> = sites.iter().map(|s| format!("`{}` (line {})", s.key, s.line)).collect();
        return refuse(format!(
            "it is suspended at {}, which this code does not await any more (its suspension points are {})",
            at(),
            if keys.is_empty() { "none".to_string() } else { keys.join(", ") }
        ));
    };
    let repeats: Vec<String> = sites
        .iter()
        .filter(|s| s.key.starts_with(&format!("{}#", st.at)))
        .map(|s| format!("line {}", s.line))
        .collect();
    if !repeats.is_empty() {
        return refuse(format!(
            "it is suspended at {}, and this code awaits that text at several points (line {}, {}), so it cannot tell \
             which one the instance is at; name each with `.checkpoint(\"…\")`",
            at(),
            site.line,
            repeats.join(", ")
        ));
    }
    if st.types.len() != st.locals.len() {
        return refuse(format!(
            "it is suspended at {} in a snapshot written before local types were recorded, so only the code that wrote it can resume it",
            at()
        ));
    }
    if let Some((n, _)) = st.locals.iter().find(|(n, _)| n.contains('#')) {
        let base = n.split('#').next().unwrap_or(n);
        return refuse(format!(
            "at {} it keeps several {} that other code cannot tell apart, so only the code that wrote it can resume it",
            at(),
            if base.starts_with("__durable_") {
                format!("values of the same kind ({})", describe(base))
            } else {
                format!("locals named `{base}`")
            }
        ));
    }
    for local in site.locals {
        if !st.locals.iter().any(|(n, _)| n == local) {
            return refuse(format!(
                "{} is live at `{}` (line {}) in this code but not in the snapshot",
                describe(local),
                site.key,
                site.line
            ));
        }
    }
    for (n, _) in &st.locals {
        if !site.locals.contains(&n.as_str()) {
            return refuse(format!(
                "the snapshot keeps {} at {}, which this code does not keep there (line {})",
                describe(n),
                at(),
                site.line
            ));
        }
    }
    Ok((st, site.pc))
}

/// A saved local for a person: `the local `x``, or what a temporary of the lowering holds.
fn describe(name: &str) -> String {
    match name.split('#').next().unwrap_or(name) {
        "__durable_task" => "the awaited task".to_string(),
        "__durable_iter" => "the state of the enclosing `for` loop".to_string(),
        n if n.starts_with("__durable_") => format!("a value computed before the `.await` (`{name}`)"),
        _ => format!("the local `{name}`"),
    }
}

/// Decode saved local `name` of a snapshot, refusing one saved with another type.
pub fn restore<T: Persist>(st: &crate::payload::Snapshot, name: &str) -> Result<T, StepResult> {
    let Some(i) = st.locals.iter().position(|(n, _)| n == name) else {
        return Err(StepResult::BadState(format!("the saved state does not have {} at `{}`", describe(name), st.at)));
    };
    let now = std::any::type_name::<T>();
    if let Some(saved) = st.types.get(i)
        && saved != now
    {
        return Err(StepResult::BadState(format!(
            "{} at `{}` (line {}) was saved as `{saved}`, and this code has it as `{now}`",
            describe(name),
            st.at,
            st.line
        )));
    }
    crate::payload::from_state(&st.locals[i].1.0)
        .map_err(|e| StepResult::BadState(format!("{} at `{}` does not decode: {e}", describe(name), st.at)))
}

/// One local encoded for a snapshot: its name, type and bytes.
pub struct SavedLocal {
    name: &'static str,
    ty: &'static str,
    blob: crate::payload::Blob,
}

/// Encode one local for a snapshot.
#[inline]
pub fn persist<T: Persist>(name: &'static str, value: T) -> Result<SavedLocal, String> {
    crate::payload::to_state(&value)
        .map(|b| SavedLocal { name, ty: std::any::type_name::<T>(), blob: crate::payload::Blob(b) })
        .map_err(|e| format!("local `{name}` cannot be saved: {e}"))
}

/// Write a snapshot at suspension point `site`: the step suspends.
pub fn suspend<R>(fingerprint: u64, site: &Site, locals: Vec<Result<SavedLocal, String>>) -> Step<R> {
    let mut out = Vec::with_capacity(locals.len());
    let mut types = Vec::with_capacity(locals.len());
    for l in locals {
        match l {
            Ok(l) => {
                out.push((l.name.to_string(), l.blob));
                types.push(l.ty.to_string());
            }
            Err(e) => return Step::Error(StepResult::Failed(e)),
        }
    }
    let st = crate::payload::Snapshot {
        fingerprint,
        pc: site.pc,
        at: site.key.to_string(),
        locals: out,
        types,
        line: site.line,
    };
    match crate::payload::to_state_compact(&st) {
        Ok(bytes) => Step::Suspend(bytes),
        Err(e) => Step::Error(StepResult::Failed(e)),
    }
}

/// A local kept across an `.await` is saved in the instance's state.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be kept across an `.await` in an orchestrator",
    label = "this local is still needed after an `.await`, so it is saved in the instance's state",
    note = "locals that live across an `.await` must be owned and implement `Serialize` and `Deserialize`; clone borrowed data into an owned value, or compute it again after the `.await`"
)]
pub trait Persist: Serialize + DeserializeOwned {}
impl<T: Serialize + DeserializeOwned> Persist for T {}

/// What `.await` in an orchestrator accepts: the durable task types, each as itself (the
/// macro's code passes what is awaited through [`task`]). One impl per type, not a blanket impl
/// over `DurableTask`: for anything else (a plain future) the compiler reports this one error
/// and not also every later use of the value (saving it in the state, polling it).
#[diagnostic::on_unimplemented(
    message = "`.await` in an orchestrator works on durable tasks only, and `{Self}` is not one",
    label = "not a durable task",
    note = "await what `ctx` returns (`ctx.call_activity(..)`, `ctx.timer(..)`, `ctx.wait_for_event(..)`, `ctx.when_all(..)`, …); do other async work inside an `#[activity]`"
)]
pub trait AwaitTask {
    type Task: DurableTask;
    fn into_task(self) -> Self::Task;
}

/// The task `.await` works on. Its type is a parameter of its own, tied to `D` by the bound
/// only: when `D` is not a durable task, that bound is the one error, and the result's type
/// is left unknown (no further error), where returning `D::Task` would report it again.
#[inline(always)]
pub fn task<D: AwaitTask<Task = T>, T: DurableTask>(d: D) -> T {
    d.into_task()
}

impl<T: DeserializeOwned> AwaitTask for crate::task::Task<T> {
    type Task = Self;
    fn into_task(self) -> Self {
        self
    }
}

impl<D> AwaitTask for crate::task::WhenAll<D>
where
    Self: DurableTask,
{
    type Task = Self;
    fn into_task(self) -> Self {
        self
    }
}

impl<D> AwaitTask for crate::task::WhenAny<D>
where
    Self: DurableTask,
{
    type Task = Self;
    fn into_task(self) -> Self {
        self
    }
}

impl<A, B> AwaitTask for crate::task::Select<A, B>
where
    Self: DurableTask,
{
    type Task = Self;
    fn into_task(self) -> Self {
        self
    }
}

#[inline]
#[track_caller]
pub fn take<T>(slot: &mut Option<T>) -> T {
    match slot.take() {
        Some(v) => v,
        None => panic!(
            "durable: internal error: a local was read before it was set; please report this with the orchestrator's code"
        ),
    }
}

// ---- `place op= value`: Rust's type-dependent evaluation order ----
//
// When both operands of a compound assignment are primitive (the integer and floating-point
// types, `bool`, `char`), Rust evaluates the value first, then the place; otherwise it
// evaluates the place first (`AddAssign::add_assign(&mut place, value)`). The macro cannot
// see types, so when the order is observable across an `.await` it emits both orders and
// chooses at run time with `op_value_first`, whose types are tied to the operands by
// `op_place` (in a branch never taken) and `op_value` (the identity on the value). Generic
// calls, not methods: their types may be inferred after the call, as the value's type is.

/// The types of one `place op= value`: `P` of the place, `V` of the value. Zero-sized, and
/// covariant: the witness lives for the whole step function, and a value that borrows a local
/// (`&'a str`) must not have to live that long.
pub struct OpTypes<P, V>(PhantomData<fn() -> (P, V)>);

impl<P, V> OpTypes<P, V> {
    #[inline(always)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        OpTypes(PhantomData)
    }
}

/// Whether Rust evaluates the value of this `place op= value` before its place: both operand
/// types are primitive. By type name, since `TypeId` needs `'static` and the value may be a
/// borrow (`&str`): the name of a primitive type is the bare keyword (`u64`), that of any
/// other type a path or a compound (`&u64`, `my_crate::u64`).
#[inline]
pub fn op_value_first<P, V>(_: &OpTypes<P, V>) -> bool {
    is_primitive(std::any::type_name::<P>()) && is_primitive(std::any::type_name::<V>())
}

/// Ties `P` to the place's type; called in a branch never taken.
#[inline(always)]
pub fn op_place<P, V>(_: &OpTypes<P, V>, _: &P) -> ! {
    unreachable!("durable: internal error: a branch that is never taken was taken")
}

/// Ties `V` to the value's type: the value itself.
#[inline(always)]
pub fn op_value<P, V>(_: &OpTypes<P, V>, v: V) -> V {
    v
}

/// `false`, for branches that only tie types.
#[inline(always)]
pub fn never() -> bool {
    false
}

/// Requires both operands to be primitive: for a place that calls something, evaluated only
/// after the value's `.await`, which is Rust's order for primitive operands only.
#[inline(always)]
pub fn op_operands_primitive<P, V>(_: &OpTypes<P, V>)
where
    (P, V): PrimitiveOperands,
{
}

/// The pairs of operand types for which Rust evaluates the value of `place op= value` first.
#[diagnostic::on_unimplemented(
    message = "with operands of types `{Self}`, Rust evaluates this place before the value, and a place that calls something cannot be evaluated before an `.await` in an orchestrator",
    label = "Rust evaluates this first for these types; what a call in it returns would have to be kept across the value's `.await`",
    note = "bind the value first: `let v = … .await?; place op= v;` (Rust evaluates the value first only when both operands are primitive: integers, floats, `bool`, `char`)"
)]
pub trait PrimitiveOperands {}

macro_rules! primitive_operands {
    ($($t:ty)*) => {
        fn is_primitive(name: &str) -> bool {
            matches!(name, $(stringify!($t))|*)
        }
        primitive_operands!(@each [$($t)*] [$($t)*]);
    };
    (@each [$($a:ty)*] $all:tt) => {
        $(primitive_operands!(@pairs $a $all);)*
    };
    (@pairs $a:ty [$($b:ty)*]) => {
        $(
            #[diagnostic::do_not_recommend]
            impl PrimitiveOperands for ($a, $b) {}
        )*
    };
}
primitive_operands!(bool char i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize f32 f64);

// ---- `?` on stable: our own Try-like traits ----

#[diagnostic::on_unimplemented(
    message = "the `?` operator works on `Result` and `Option` in an orchestrator, not on `{Self}`",
    label = "cannot use `?` on this"
)]
pub trait Branch {
    type Output;
    type Residual;
    fn branch(self) -> ControlFlow<Self::Residual, Self::Output>;
}

impl<T, E> Branch for Result<T, E> {
    type Output = T;
    type Residual = Result<Infallible, E>;
    #[inline(always)]
    fn branch(self) -> ControlFlow<Self::Residual, T> {
        match self {
            Ok(v) => ControlFlow::Continue(v),
            Err(e) => ControlFlow::Break(Err(e)),
        }
    }
}

impl<T> Branch for Option<T> {
    type Output = T;
    type Residual = Option<Infallible>;
    #[inline(always)]
    fn branch(self) -> ControlFlow<Self::Residual, T> {
        match self {
            Some(v) => ControlFlow::Continue(v),
            None => ControlFlow::Break(None),
        }
    }
}

#[diagnostic::on_unimplemented(
    message = "`?` cannot convert this error into the orchestrator's return type `{Self}`",
    label = "the error type here does not convert",
    note = "the orchestrator's error type must implement `From` of this error (`OrchestrationError` converts from any `std::error::Error`, `String` and `&str`); on an `Option`, use `.ok_or(\"what was missing\")?`"
)]
pub trait FromResidual<R> {
    fn from_residual(r: R) -> Self;
}

impl<T, E, F: From<E>> FromResidual<Result<Infallible, E>> for Result<T, F> {
    #[inline(always)]
    fn from_residual(r: Result<Infallible, E>) -> Self {
        match r {
            Err(e) => Err(From::from(e)),
            Ok(x) => match x {},
        }
    }
}

impl<T> FromResidual<Option<Infallible>> for Option<T> {
    #[inline(always)]
    fn from_residual(_: Option<Infallible>) -> Self {
        None
    }
}

// ---- `for` loops over a serializable iterator state ----

/// The iterator state of a `for` loop that spans an `.await`.
pub trait DurableIter {
    type Item;
    fn next_item(&mut self) -> Option<Self::Item>;
}

impl<T> DurableIter for VecDeque<T> {
    type Item = T;
    #[inline]
    fn next_item(&mut self) -> Option<T> {
        self.pop_front()
    }
}

pub trait RangeIdx: Copy + PartialOrd {
    fn succ(self) -> Self;
}
macro_rules! range_idx {
    ($($t:ty)*) => {$(
        impl RangeIdx for $t {
            #[inline]
            fn succ(self) -> Self { self + 1 }
        }
    )*};
}
range_idx!(u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize);

/// `a..b` as plain data (serializes as two numbers).
#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub struct DurableRange<T> {
    next: T,
    end: T,
}
impl<T: RangeIdx> DurableIter for DurableRange<T> {
    type Item = T;
    fn next_item(&mut self) -> Option<T> {
        if self.next < self.end {
            let v = self.next;
            self.next = v.succ();
            Some(v)
        } else {
            None
        }
    }
}

/// `a..=b` as plain data (with its own "exhausted" flag, which serde drops from `RangeInclusive`).
#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub struct DurableRangeInclusive<T> {
    next: T,
    end: T,
    done: bool,
}
impl<T: RangeIdx> DurableIter for DurableRangeInclusive<T> {
    type Item = T;
    fn next_item(&mut self) -> Option<T> {
        if self.done || self.next > self.end {
            return None;
        }
        let v = self.next;
        if v >= self.end {
            self.done = true;
        } else {
            self.next = v.succ();
        }
        Some(v)
    }
}

/// Wrapper for choosing the iterator state by type (autoref specialization):
/// `(&mut &mut IterWrap(Some(x))).__durable_iter()` picks a compact range state for integer
/// ranges, and collects anything else into a `VecDeque`.
pub struct IterWrap<I>(pub Option<I>);

impl<I> IterWrap<I> {
    fn take(&mut self) -> I {
        self.0.take().expect("iterator taken once")
    }
}

pub trait IterSpecRange {
    type State;
    fn __durable_iter(&mut self) -> Self::State;
}
impl<T: RangeIdx> IterSpecRange for &mut IterWrap<std::ops::Range<T>> {
    type State = DurableRange<T>;
    fn __durable_iter(&mut self) -> DurableRange<T> {
        let r = self.take();
        DurableRange { next: r.start, end: r.end }
    }
}
impl<T: RangeIdx> IterSpecRange for &mut IterWrap<std::ops::RangeInclusive<T>> {
    type State = DurableRangeInclusive<T>;
    fn __durable_iter(&mut self) -> DurableRangeInclusive<T> {
        let r = self.take();
        let done = r.is_empty();
        let (next, end) = r.into_inner();
        DurableRangeInclusive { next, end, done }
    }
}

pub trait IterSpecAny {
    type State;
    fn __durable_iter(&mut self) -> Self::State;
}
impl<I: IntoIterator> IterSpecAny for IterWrap<I> {
    type State = VecDeque<I::Item>;
    fn __durable_iter(&mut self) -> VecDeque<I::Item> {
        self.take().into_iter().collect()
    }
}

#[inline]
pub fn next<I: DurableIter>(it: &mut I) -> Option<I::Item> {
    it.next_item()
}

// ---- entities ----

/// Decode an operation's input.
pub fn entity_input<T: DeserializeOwned>(input: &str, entity: &str, op: &str) -> Result<T, String> {
    crate::payload::from_json(input, format_args!("the input of operation `{op}` of entity `{entity}`"))
}

/// Check that an operation without input got none (`null`).
pub fn entity_no_input(input: &str, entity: &str, op: &str) -> Result<(), String> {
    let t = input.trim();
    if t.is_empty() || t == "null" || t == "[]" || t == "{}" {
        Ok(())
    } else {
        Err(format!("operation `{op}` of entity `{entity}` takes no input, but got {}", crate::payload::abbreviate(t)))
    }
}

/// Encode an operation's result.
pub fn entity_output<T: Serialize + ?Sized>(v: &T, entity: &str, op: &str) -> Result<String, String> {
    crate::payload::to_json(v, format_args!("the result of operation `{op}` of entity `{entity}`"))
}

/// The error for an unknown operation name.
pub fn unknown_operation(entity: &str, op: &str, known: &[&str]) -> String {
    let known: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    format!("entity `{entity}` has no operation `{op}`; its operations are {}", known.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_first<P, V>() -> bool {
        op_value_first(&OpTypes::<P, V>::new())
    }

    #[test]
    fn the_value_is_evaluated_first_for_primitive_operands_only() {
        assert!(value_first::<u64, u64>());
        assert!(value_first::<i32, i32>());
        assert!(value_first::<u32, u8>());
        assert!(value_first::<f64, f64>());
        assert!(value_first::<bool, bool>());
        assert!(value_first::<usize, usize>());
        assert!(!value_first::<i32, &i32>());
        assert!(!value_first::<String, &str>());
        assert!(!value_first::<String, &String>());
        assert!(!value_first::<std::num::Wrapping<u8>, std::num::Wrapping<u8>>());
        assert!(!value_first::<(), ()>());
    }
}
