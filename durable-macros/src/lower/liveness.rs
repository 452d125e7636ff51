//! Liveness: which locals are still needed at each point of the control-flow graph. A backward
//! dataflow to a fixpoint over the blocks; a local is saved at a suspension only if it is live
//! there. Identifiers inside macro invocations and format strings (`{x}`) count as uses (the
//! lowering collected them).

use super::ir::{BindingId, BlockId, Cfg, Jump, LStmt, PerBlock, Term};
use std::collections::BTreeSet;

/// A set of locals, ordered by id (so generated code does not depend on hashing).
pub(crate) type LiveSet = BTreeSet<BindingId>;

/// The locals live on entry to each block.
pub(crate) struct Liveness {
    live_in: PerBlock<LiveSet>,
}

impl Liveness {
    /// Compute liveness over `cfg` to a fixpoint.
    pub(crate) fn compute(cfg: &Cfg) -> Self {
        let mut l = Liveness { live_in: PerBlock::new(cfg, LiveSet::new()) };
        loop {
            let mut changed = false;
            for b in cfg.ids().rev() {
                let (_, li) = l.block_live(cfg, b);
                if li != l.live_in[b] {
                    l.live_in[b] = li;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        l
    }

    /// The locals live on entry to `b`.
    pub(crate) fn live_in(&self, b: BlockId) -> &LiveSet {
        &self.live_in[b]
    }

    /// The locals live where a jump out of verbatim code goes (its break value is set by the
    /// jump itself).
    pub(crate) fn jump_live(&self, j: &Jump) -> LiveSet {
        let mut s = self.live_in[j.target].clone();
        if let Some(r) = j.value.as_ref().and_then(|v| v.result) {
            s.remove(&r);
        }
        s
    }

    /// The locals live right before a block's terminator.
    pub(crate) fn term_live(&self, t: &Term) -> LiveSet {
        match t {
            Term::Goto(b) => self.live_in[*b].clone(),
            Term::If { uses, defs, then, els, .. } => {
                let mut s: LiveSet = self.live_in[*then].difference(&defs.iter().copied().collect()).copied().collect();
                s.extend(self.live_in[*els].iter().copied());
                s.extend(uses.iter().copied());
                s
            }
            Term::Match { uses, arms, .. } => {
                let mut s: LiveSet = uses.iter().copied().collect();
                for a in arms {
                    let d: LiveSet = a.defs.iter().copied().collect();
                    s.extend(self.live_in[a.target].difference(&d).copied());
                }
                s
            }
            Term::Await { resume } => self.live_in[*resume].clone(),
            Term::Return { uses, jumps, .. } => {
                let mut s: LiveSet = uses.iter().copied().collect();
                for j in jumps {
                    s.extend(self.jump_live(j));
                }
                s
            }
            Term::Dead => LiveSet::new(),
        }
    }

    /// The locals live after each statement of block `b` (index i: after statement i), and on
    /// entry to it.
    pub(crate) fn block_live(&self, cfg: &Cfg, b: BlockId) -> (Vec<LiveSet>, LiveSet) {
        let block = &cfg[b];
        let mut live = self.term_live(&block.term);
        let mut after = vec![LiveSet::new(); block.stmts.len()];
        for (i, s) in block.stmts.iter().enumerate().rev() {
            after[i] = live.clone();
            match s {
                LStmt::Code { uses, defs, jumps, assigns, .. } => {
                    for d in defs.iter().chain(assigns) {
                        live.remove(d);
                    }
                    live.extend(uses.iter().copied());
                    for j in jumps {
                        live.extend(self.jump_live(j));
                    }
                }
                LStmt::Poll { task, result, .. } => {
                    live.remove(result);
                    live.insert(*task);
                }
            }
        }
        (after, live)
    }
}
