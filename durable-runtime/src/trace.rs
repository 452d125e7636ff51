//! Trace context: which trace an instance belongs to, and which span caused a piece of work.
//!
//! `Client::start` records a [`TraceContext`] with the instance (W3C `traceparent` format: a
//! 16-byte trace id, the 8-byte id of the span that started it, and flags). Every step of the
//! instance is a child of it, and what a step sends carries the step's context: activity work
//! items, sub-orchestrations and entity operations, so the span that runs them (in any
//! process, after any restart) is a child of the step that asked for them. One instance is one
//! trace; the time an instance waits shows as a gap between its steps.
//!
//! The runtime's spans (`durable.start`, `durable.step`, `durable.activity`,
//! `durable.entity.batch`, `durable.entity.op`, `durable.commit`) record `trace_id`, `span_id`
//! and `parent_span_id` as fields, so traces are connected with any `tracing` subscriber. With
//! the `otel` feature each span is also given its remote parent through
//! `tracing-opentelemetry`, and the ids are the OpenTelemetry span's own.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::Cell;
use std::fmt;
use std::future::Future;

/// A W3C trace context: trace id, parent span id and flags (`traceparent`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The trace (16 bytes, not all zero).
    pub trace_id: [u8; 16],
    /// The span (8 bytes, not all zero).
    pub span_id: [u8; 8],
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

/// The `sampled` trace flag.
pub const SAMPLED: u8 = 1;

impl TraceContext {
    /// A new trace: random trace and span ids, sampled.
    pub fn new_root() -> Self {
        let (a, b) = (random_u64(), random_u64());
        let mut trace_id = [0; 16];
        trace_id[..8].copy_from_slice(&a.to_be_bytes());
        trace_id[8..].copy_from_slice(&b.to_be_bytes());
        Self { trace_id, span_id: random_u64().to_be_bytes(), flags: SAMPLED }
    }

    /// A new span in the same trace (a child of this one): a random span id.
    pub fn child(&self) -> Self {
        Self { span_id: random_u64().to_be_bytes(), ..*self }
    }

    /// The context of an instance that has none recorded (started by a release that did not
    /// record one): derived from its id, so its steps still form one trace.
    pub fn for_instance(instance_id: &str) -> Self {
        use crate::hash::{FNV_OFFSET, fnv1a_from};
        let a = fnv1a_from(FNV_OFFSET, instance_id.as_bytes());
        let b = fnv1a_from(a ^ 0x5bd1_e995, instance_id.as_bytes());
        let mut trace_id = [0; 16];
        trace_id[..8].copy_from_slice(&a.to_be_bytes());
        trace_id[8..].copy_from_slice(&b.to_be_bytes());
        let span = fnv1a_from(b, b"durable").max(1);
        Self { trace_id, span_id: span.to_be_bytes(), flags: SAMPLED }
    }

    /// The `traceparent` header value: `00-<trace id>-<span id>-<flags>` in lowercase hex.
    pub fn traceparent(&self) -> String {
        self.to_string()
    }

    /// Parse a `traceparent` header value (W3C Trace Context: version `00`, or a later version
    /// read as `00`; ids not all zero). `None` if it is not one.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let b = s.as_bytes();
        if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let version = hex_byte(&b[0..2])?;
        // Version 00 is exactly 55 characters; a later version may add fields after a dash.
        if version == 0xff || (version == 0 && b.len() != 55) || (b.len() > 55 && b[55] != b'-') {
            return None;
        }
        let mut trace_id = [0; 16];
        for (i, t) in trace_id.iter_mut().enumerate() {
            *t = hex_byte(&b[3 + 2 * i..5 + 2 * i])?;
        }
        let mut span_id = [0; 8];
        for (i, t) in span_id.iter_mut().enumerate() {
            *t = hex_byte(&b[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&b[53..55])?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self { trace_id, span_id, flags })
    }

    /// The trace id in lowercase hex (32 characters).
    pub fn trace_id_hex(&self) -> String {
        Hex(&self.trace_id).to_string()
    }

    /// The span id in lowercase hex (16 characters).
    pub fn span_id_hex(&self) -> String {
        Hex(&self.span_id).to_string()
    }

    /// The context new work started here is a child of: the one set with
    /// [`scope`](Self::scope) around this task, else (with the `otel` feature) the current
    /// OpenTelemetry span's, else `None`.
    pub fn current() -> Option<Self> {
        if let Ok(Some(c)) = SCOPE.try_with(|c| *c) {
            return Some(c);
        }
        #[cfg(feature = "otel")]
        if let Some(c) = otel::current() {
            return Some(c);
        }
        None
    }

    /// Run `fut` with `parent` as [`current`](Self::current) context: instances it starts and
    /// signals it sends are children of `parent` (the HTTP API wraps a start in the caller's
    /// `traceparent` this way).
    pub async fn scope<F: Future>(parent: Option<Self>, fut: F) -> F::Output {
        SCOPE.scope(parent, fut).await
    }
}

tokio::task_local! {
    static SCOPE: Option<TraceContext>;
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{:02x}", Hex(&self.trace_id), Hex(&self.span_id), self.flags)
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceContext({self})")
    }
}

/// As the `traceparent` text in human-readable formats (JSON); as 25 bytes (trace id, span id,
/// flags) in binary ones (MessagePack: history events and snapshots), which read either.
impl Serialize for TraceContext {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return s.collect_str(self);
        }
        let mut b = [0u8; 25];
        b[..16].copy_from_slice(&self.trace_id);
        b[16..24].copy_from_slice(&self.span_id);
        b[24] = self.flags;
        s.serialize_bytes(&b)
    }
}

impl<'de> Deserialize<'de> for TraceContext {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = TraceContext;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a W3C traceparent, or its 25 bytes")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<TraceContext, E> {
                TraceContext::parse(s).ok_or_else(|| E::custom(format!("not a W3C traceparent: {s:?}")))
            }
            fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> Result<TraceContext, E> {
                if b.len() != 25 {
                    return Err(E::custom(format!("a trace context is 25 bytes, not {}", b.len())));
                }
                let mut c = TraceContext { trace_id: [0; 16], span_id: [0; 8], flags: b[24] };
                c.trace_id.copy_from_slice(&b[..16]);
                c.span_id.copy_from_slice(&b[16..24]);
                Ok(c)
            }
        }
        if d.is_human_readable() { d.deserialize_str(V) } else { d.deserialize_any(V) }
    }
}

/// Bytes as lowercase hex, without allocating.
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 32];
        for chunk in self.0.chunks(16) {
            for (i, b) in chunk.iter().enumerate() {
                buf[2 * i] = DIGITS[(b >> 4) as usize];
                buf[2 * i + 1] = DIGITS[(b & 15) as usize];
            }
            f.write_str(std::str::from_utf8(&buf[..2 * chunk.len()]).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

fn hex_byte(b: &[u8]) -> Option<u8> {
    let d = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(d(b[0])? << 4 | d(b[1])?)
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A random, non-zero `u64`: splitmix64 per thread, seeded from the OS once per thread.
fn random_u64() -> u64 {
    RNG.with(|s| {
        let mut x = s.get();
        if x == 0 {
            let seed = uuid::Uuid::new_v4().as_u64_pair();
            x = (seed.0 ^ seed.1.rotate_left(17)) | 1;
        }
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        if z == 0 { 1 } else { z }
    })
}

/// Make `span` the span of a piece of work caused by `parent` (a child of it; the root of a
/// new trace without one), record `trace_id`, `span_id` and `parent_span_id` on it, and give
/// the context of `span`: what the work it does sends carries. Cheap when no subscriber wants
/// `span` (a fresh span id, nothing recorded).
///
/// The span must declare the three fields (`tracing::field::Empty`).
pub fn enter(span: &tracing::Span, parent: Option<&TraceContext>) -> TraceContext {
    #[cfg_attr(not(feature = "otel"), allow(unused_mut))]
    let mut ctx = match parent {
        Some(p) => p.child(),
        None => TraceContext::new_root(),
    };
    if span.is_disabled() {
        return ctx;
    }
    #[cfg(feature = "otel")]
    if let Some(c) = otel::attach(span, parent) {
        ctx = c;
    }
    span.record("trace_id", tracing::field::display(Hex(&ctx.trace_id)));
    span.record("span_id", tracing::field::display(Hex(&ctx.span_id)));
    if let Some(p) = parent {
        span.record("parent_span_id", tracing::field::display(Hex(&p.span_id)));
    }
    ctx
}

/// The OpenTelemetry side (`otel` feature): remote parents and the current span's context.
#[cfg(feature = "otel")]
pub mod otel {
    use super::TraceContext;
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    /// The OpenTelemetry span context of `c`, as a remote parent.
    pub fn span_context(c: &TraceContext) -> SpanContext {
        SpanContext::new(
            TraceId::from_bytes(c.trace_id),
            SpanId::from_bytes(c.span_id),
            TraceFlags::new(c.flags),
            true,
            TraceState::default(),
        )
    }

    /// `c` from an OpenTelemetry span context, if it is valid.
    pub fn from_span_context(sc: &SpanContext) -> Option<TraceContext> {
        sc.is_valid().then(|| TraceContext {
            trace_id: sc.trace_id().to_bytes(),
            span_id: sc.span_id().to_bytes(),
            flags: sc.trace_flags().to_u8(),
        })
    }

    /// The current tracing span's OpenTelemetry context, if it has a valid one.
    pub(super) fn current() -> Option<TraceContext> {
        let cx = tracing::Span::current().context();
        from_span_context(cx.span().span_context())
    }

    /// Give `span` its remote parent and read back its OpenTelemetry ids; `None` if no
    /// OpenTelemetry layer handles it.
    pub(super) fn attach(span: &tracing::Span, parent: Option<&TraceContext>) -> Option<TraceContext> {
        if let Some(p) = parent {
            let cx = opentelemetry::Context::new().with_remote_span_context(span_context(p));
            let _ = span.set_parent(cx);
        }
        let cx = span.context();
        from_span_context(cx.span().span_context())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_context_is_text_in_json_and_25_bytes_in_messagepack() {
        let c = TraceContext::new_root();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, format!("\"{}\"", c.traceparent()));
        assert_eq!(serde_json::from_str::<TraceContext>(&json).unwrap(), c);
        let packed = rmp_serde::to_vec(&c).unwrap();
        assert_eq!(packed.len(), 27);
        assert_eq!(rmp_serde::from_slice::<TraceContext>(&packed).unwrap(), c);
        // As MessagePack held it before: the text.
        let text = rmp_serde::to_vec(&c.traceparent()).unwrap();
        assert_eq!(rmp_serde::from_slice::<TraceContext>(&text).unwrap(), c);
    }

    #[test]
    fn traceparent_round_trips_and_refuses_garbage() {
        let root = TraceContext::new_root();
        let child = root.child();
        assert_eq!(child.trace_id, root.trace_id);
        assert_ne!(child.span_id, root.span_id);
        let s = root.traceparent();
        assert_eq!(s.len(), 55);
        assert_eq!(TraceContext::parse(&s), Some(root));
        let w3c = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let c = TraceContext::parse(w3c).unwrap();
        assert_eq!(c.traceparent(), w3c);
        assert_eq!(c.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(c.span_id_hex(), "00f067aa0ba902b7");
        assert_eq!(c.flags, SAMPLED);
        // A later version with more fields is read as 00.
        assert!(TraceContext::parse(&format!("01{}-extra", &w3c[2..])).is_some());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
        let json = serde_json::to_string(&Some(c)).unwrap();
        assert_eq!(json, format!("\"{w3c}\""));
        assert_eq!(serde_json::from_str::<Option<TraceContext>>(&json).unwrap(), Some(c));
    }
}
