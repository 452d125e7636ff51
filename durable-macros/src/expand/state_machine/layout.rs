//! Layout of the state machine: which blocks start an arm of the `match pc` (the entry, resume
//! points and jump targets, in source order), which locals need a hoisted slot (those live into
//! an arm), and which locals each suspension saves (those live at its resume point).

use crate::lower::Lowered;
use crate::lower::ir::{BindingId, BindingKind, BlockId, LStmt, Term};
use crate::lower::liveness::LiveSet;
use quote::format_ident;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Where the state machine's arms start and what it keeps between them.
pub(super) struct Layout {
    /// Blocks that start an arm, in source order.
    pub arms: Vec<BlockId>,
    /// Locals that live in a hoisted `Option` slot across arms.
    pub slots: LiveSet,
    /// Fields of each resume block's state variant.
    pub variants: BTreeMap<BlockId, Vec<BindingId>>,
    /// The suspension points, in await order: what the generated `SITES` table lists.
    pub sites: Vec<Site>,
}

/// A suspension point: the resume block, its key (unique in the body) and the await's span.
pub(super) struct Site {
    pub block: BlockId,
    pub key: String,
    pub span: proc_macro2::Span,
}

impl Layout {
    /// Arms: the entry, resume points, and targets of jumps, reachable from the entry.
    pub(super) fn new(lw: &Lowered) -> Self {
        let mut seen = BTreeSet::new();
        let mut stack = vec![BlockId::ENTRY];
        let mut arms = BTreeSet::new();
        arms.insert(BlockId::ENTRY);
        while let Some(b) = stack.pop() {
            if !seen.insert(b) {
                continue;
            }
            let block = &lw.cfg[b];
            let jump_to = |t: BlockId, arms: &mut BTreeSet<BlockId>, stack: &mut Vec<BlockId>| {
                arms.insert(t);
                stack.push(t);
            };
            for s in &block.stmts {
                if let LStmt::Code { jumps, .. } = s {
                    for j in jumps {
                        jump_to(j.target, &mut arms, &mut stack);
                    }
                }
            }
            match &block.term {
                Term::Goto(t) => jump_to(*t, &mut arms, &mut stack),
                Term::Await { resume } => jump_to(*resume, &mut arms, &mut stack),
                Term::If { then, els, .. } => {
                    stack.push(*then);
                    stack.push(*els);
                }
                Term::Match { arms: ma, .. } => ma.iter().for_each(|a| stack.push(a.target)),
                Term::Return { jumps, .. } => {
                    for j in jumps {
                        jump_to(j.target, &mut arms, &mut stack);
                    }
                }
                Term::Dead => {}
            }
        }
        let mut arms: Vec<BlockId> = arms.into_iter().collect();
        arms.sort_by_key(|b| lw.cfg.source_order(*b).unwrap_or(usize::MAX));
        let mut slots = LiveSet::new();
        let mut variants = BTreeMap::new();
        for &a in &arms {
            if a != BlockId::ENTRY {
                slots.extend(lw.liveness.live_in(a).iter().copied());
            }
            if lw.cfg[a].resume_of.is_some() {
                variants.insert(a, lw.liveness.live_in(a).iter().copied().collect());
            }
        }
        for (id, b) in lw.bindings.iter() {
            if b.kind == BindingKind::Input {
                slots.insert(id);
            }
        }
        // Keys in await (source) order; the n-th repeat of one key gets `#n`.
        let mut resumes: Vec<(u32, BlockId, String, proc_macro2::Span)> = variants
            .keys()
            .filter_map(|&b| {
                let n = lw.cfg[b].resume_of?.number();
                match lw.cfg[b].stmts.first() {
                    Some(LStmt::Poll { key, span, .. }) => Some((n, b, key.clone(), *span)),
                    _ => None,
                }
            })
            .collect();
        resumes.sort_by_key(|r| r.0);
        let mut seen: HashMap<String, usize> = HashMap::new();
        let sites = resumes
            .into_iter()
            .map(|(_, block, key, span)| {
                let n = seen.entry(key.clone()).or_default();
                let key = if *n == 0 { key.clone() } else { format!("{key}#{n}") };
                *n += 1;
                Site { block, key, span }
            })
            .collect();
        Layout { arms, slots, variants, sites }
    }
}

/// The hoisted slot of a local.
pub(super) fn slot(b: BindingId) -> syn::Ident {
    format_ident!("__durable_slot_{}", b.number())
}

/// The names the locals saved at a suspension point have in the snapshot: the source name; for
/// a temporary of the lowering (the awaited task, a spilled operand) its kind without the
/// lowering's counter; `#n` added to the n-th repeat of a name. Stable under edits elsewhere
/// in the body, so other code can resume the snapshot when the same locals are live here.
pub(super) fn field_names(lw: &Lowered, fields: &[BindingId]) -> Vec<String> {
    let base = |f: BindingId| {
        let b = &lw.bindings[f];
        let name = b.ident.to_string().trim_start_matches("r#").to_string();
        if b.kind == BindingKind::Temp { name.trim_end_matches(|c: char| c.is_ascii_digit()).to_string() } else { name }
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    fields
        .iter()
        .map(|&f| {
            let name = base(f);
            let n = seen.entry(name.clone()).or_default();
            let unique = if *n == 0 { name } else { format!("{name}#{n}") };
            *n += 1;
            unique
        })
        .collect()
}
