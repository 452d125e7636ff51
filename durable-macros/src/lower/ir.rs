//! The lowered form of an orchestrator body: a control-flow graph of blocks split at
//! `.await`s, whose statements are Rust tokens annotated with the locals they use and define.

use proc_macro2::{Span, TokenStream};
use std::ops::{Index, IndexMut};

/// A block of the control-flow graph; `BlockId::ENTRY` is where a run starts. Its number is the
/// program counter of the arm that starts there and is stored in the saved state.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub(crate) struct BlockId(u32);

impl BlockId {
    /// The first block: binds the parameters, then runs the body.
    pub(crate) const ENTRY: BlockId = BlockId(0);

    /// The program counter of the arm that starts at this block.
    pub(crate) fn pc(self) -> u32 {
        self.0
    }

    fn index(self) -> usize {
        self.0 as usize
    }
}

/// A local the lowering tracks: a parameter, a `let` or pattern binding, or a temporary.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub(crate) struct BindingId(u32);

impl BindingId {
    /// The number that names this local's slot and, if needed, its field in a saved state.
    pub(crate) fn number(self) -> u32 {
        self.0
    }

    fn index(self) -> usize {
        self.0 as usize
    }
}

/// An `.await` of the body, numbered in source order from 0 (the default); it names the state
/// variant saved there.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub(crate) struct AwaitId(u32);

impl AwaitId {
    /// The await after `self`.
    pub(crate) fn next(self) -> AwaitId {
        AwaitId(self.0 + 1)
    }

    /// The number in the state variant's name (`Await<n>`).
    pub(crate) fn number(self) -> u32 {
        self.0
    }
}

/// What a binding is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum BindingKind {
    /// A local of the user's code.
    User,
    /// A temporary of the lowering (`__durable_…`).
    Temp,
    /// The orchestration context parameter: bound once, never saved.
    Ctx,
    /// The decoded input, typed from the signature.
    Input,
}

/// A local: its source name (or generated name for a temporary), and how it is bound.
pub(crate) struct Binding {
    pub ident: syn::Ident,
    pub mutable: bool,
    pub kind: BindingKind,
}

/// All the locals of an orchestrator, indexed by [`BindingId`].
#[derive(Default)]
pub(crate) struct Bindings(Vec<Binding>);

impl Bindings {
    /// Add a local; its id is its position.
    pub(crate) fn push(&mut self, b: Binding) -> BindingId {
        self.0.push(b);
        BindingId(u32::try_from(self.0.len() - 1).expect("fewer than 2^32 locals"))
    }

    /// Every local with its id, in declaration order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (BindingId, &Binding)> {
        self.0.iter().enumerate().map(|(i, b)| (BindingId(i as u32), b))
    }
}

impl Index<BindingId> for Bindings {
    type Output = Binding;
    fn index(&self, id: BindingId) -> &Binding {
        &self.0[id.index()]
    }
}

/// A jump out of verbatim code (a `break`/`continue` to a loop that spans an `.await`), left as
/// a marker identifier and filled in once liveness is known.
#[derive(Clone)]
pub(crate) struct Jump {
    pub marker: syn::Ident,
    pub target: BlockId,
    /// The `break` value, set right before jumping.
    pub value: Option<JumpValue>,
}

/// The value of a `break value` out of verbatim code.
#[derive(Clone)]
pub(crate) struct JumpValue {
    /// The loop's result temporary; `None` if the loop's value is not used (the value is still
    /// evaluated).
    pub result: Option<BindingId>,
    pub tokens: TokenStream,
}

/// A `let` split in parts, for re-emitting it when it shadows a local that must be saved first.
pub(crate) struct LetParts {
    pub pat: TokenStream,
    pub init: TokenStream,
    pub diverge: Option<TokenStream>,
}

/// A statement of a block.
pub(crate) enum LStmt {
    /// Rust code.
    Code {
        tokens: TokenStream,
        uses: Vec<BindingId>,
        defs: Vec<BindingId>,
        jumps: Vec<Jump>,
        let_parts: Option<Box<LetParts>>,
        /// Locals this statement assigns as a whole (`x = …;`): a definition, not a use.
        assigns: Vec<BindingId>,
    },
    /// First statement of a resume block: poll the awaited task; suspend if not ready. `key`
    /// names the suspension point by what is awaited (see [`await_key`](super::await_key)).
    Poll { task: BindingId, result: BindingId, span: Span, key: String },
}

/// An arm of a [`Term::Match`].
pub(crate) struct MatchArm {
    pub pat: TokenStream,
    pub guard: Option<TokenStream>,
    pub defs: Vec<BindingId>,
    pub target: BlockId,
}

/// How a block ends.
pub(crate) enum Term {
    Goto(BlockId),
    If {
        cond: TokenStream,
        uses: Vec<BindingId>,
        defs: Vec<BindingId>,
        then: BlockId,
        els: BlockId,
    },
    Match {
        scrut: TokenStream,
        uses: Vec<BindingId>,
        arms: Vec<MatchArm>,
    },
    /// Suspend at an `.await` (the task was created by the block's last statement).
    Await {
        resume: BlockId,
    },
    Return {
        tokens: TokenStream,
        uses: Vec<BindingId>,
        jumps: Vec<Jump>,
    },
    /// Not reachable (after a jump); no code.
    Dead,
}

/// A block: statements, then a terminator.
pub(crate) struct Block {
    pub stmts: Vec<LStmt>,
    pub term: Term,
    /// The await this block resumes, if it is a resume block.
    pub resume_of: Option<AwaitId>,
}

/// The control-flow graph of an orchestrator body.
pub(crate) struct Cfg {
    blocks: Vec<Block>,
    /// When each block was first entered while lowering: arms are emitted in this (source)
    /// order, which is the order rustc infers types in.
    order: Vec<Option<usize>>,
    entered: usize,
    /// Items declared in the body (`fn`, `struct`, `const`, `use`, …): emitted once, before the
    /// state machine, so every arm sees them.
    pub items: Vec<TokenStream>,
    /// `let`s emitted once at the top of the step function, seen by every arm and never saved:
    /// zero-sized witnesses that tie types across arms (see `op_assign`).
    pub hoisted: Vec<TokenStream>,
}

impl Cfg {
    /// A graph with only the entry block, entered.
    pub(crate) fn new() -> Self {
        let mut cfg = Cfg { blocks: Vec::new(), order: Vec::new(), entered: 0, items: Vec::new(), hoisted: Vec::new() };
        let entry = cfg.new_block();
        cfg.enter(entry);
        cfg
    }

    /// A new, empty block ending in [`Term::Dead`].
    pub(crate) fn new_block(&mut self) -> BlockId {
        self.blocks.push(Block { stmts: Vec::new(), term: Term::Dead, resume_of: None });
        self.order.push(None);
        BlockId(u32::try_from(self.blocks.len() - 1).expect("fewer than 2^32 blocks"))
    }

    /// Record that lowering continues in `b` (its source order, the first time).
    pub(crate) fn enter(&mut self, b: BlockId) {
        if self.order[b.index()].is_none() {
            self.order[b.index()] = Some(self.entered);
            self.entered += 1;
        }
    }

    /// When `b` was first entered, if it ever was.
    pub(crate) fn source_order(&self, b: BlockId) -> Option<usize> {
        self.order[b.index()]
    }

    /// The number of blocks.
    pub(crate) fn len(&self) -> usize {
        self.blocks.len()
    }

    /// All blocks' ids, in creation order.
    pub(crate) fn ids(&self) -> impl DoubleEndedIterator<Item = BlockId> + use<> {
        (0..self.blocks.len() as u32).map(BlockId)
    }
}

impl Index<BlockId> for Cfg {
    type Output = Block;
    fn index(&self, id: BlockId) -> &Block {
        &self.blocks[id.index()]
    }
}

impl IndexMut<BlockId> for Cfg {
    fn index_mut(&mut self, id: BlockId) -> &mut Block {
        &mut self.blocks[id.index()]
    }
}

/// A vector indexed by [`BlockId`], one entry per block.
pub(crate) struct PerBlock<T>(Vec<T>);

impl<T: Clone> PerBlock<T> {
    /// `init` for every block of `cfg`.
    pub(crate) fn new(cfg: &Cfg, init: T) -> Self {
        PerBlock(vec![init; cfg.len()])
    }
}

impl<T> Index<BlockId> for PerBlock<T> {
    type Output = T;
    fn index(&self, id: BlockId) -> &T {
        &self.0[id.index()]
    }
}

impl<T> IndexMut<BlockId> for PerBlock<T> {
    fn index_mut(&mut self, id: BlockId) -> &mut T {
        &mut self.0[id.index()]
    }
}
