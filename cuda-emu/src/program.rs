//! The decoded, compact form of a PTX module that the interpreter runs.

use crate::float::Rnd;
use crate::ptx::ast::Space;
use crate::ty::Ty;

/// A decoded operand: registers are indices, symbols are addresses, labels are instruction indices.
#[derive(Debug, Clone)]
pub enum Arg {
    /// A register.
    Reg(u32),
    /// A negated predicate register (`!%p`).
    Not(u32),
    /// An immediate, already in the instruction type's bit pattern.
    Imm(u64),
    /// A special register.
    Sreg(Sreg),
    /// `{a, b, ..}`: registers or `Sink`.
    Vec(Box<[Arg]>),
    /// `[reg + offset]` (`base` `None` for an absolute or symbol address).
    Mem(Option<u32>, i64),
    /// A branch target (instruction index).
    Target(u32),
    /// `_`: a discarded destination.
    Sink,
}

/// Special registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sreg {
    /// `%tid.{x,y,z}`.
    Tid(u8),
    /// `%ntid.{x,y,z}`.
    Ntid(u8),
    /// `%ctaid.{x,y,z}`.
    Ctaid(u8),
    /// `%nctaid.{x,y,z}`.
    Nctaid(u8),
    /// `%laneid`.
    Laneid,
    /// `%warpid`.
    Warpid,
    /// `%nwarpid`.
    Nwarpid,
    /// `%clock` and `%clock64`: instructions this thread has run.
    Clock,
    /// `%lanemask_{eq,lt,le,gt,ge}`: 0..5.
    Lanemask(u8),
    /// `%dynamic_smem_size`.
    DynSmem,
    /// `%smid`, `%gridid` and other identifiers that read as 0.
    Zero,
}

/// Integer and bitwise binary operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOp {
    /// Wrapping add (`.sat` handled by `sat`).
    Add,
    /// Wrapping subtract.
    Sub,
    /// Low half of the product.
    MulLo,
    /// High half of the product.
    MulHi,
    /// Full product (destination twice as wide).
    MulWide,
    /// Quotient (all ones on division by zero).
    Div,
    /// Remainder.
    Rem,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Bitwise and.
    And,
    /// Bitwise or.
    Or,
    /// Bitwise xor.
    Xor,
    /// Shift left.
    Shl,
    /// Shift right (arithmetic for signed types).
    Shr,
}

/// The extended-precision operations that use the carry flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarryOp {
    /// a + b (+ carry).
    Add,
    /// a - b (- borrow).
    Sub,
    /// lo(a * b) + c (+ carry).
    MadLo,
    /// hi(a * b) + c (+ carry).
    MadHi,
}

/// Float binary operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatOp {
    /// a + b.
    Add,
    /// a - b.
    Sub,
    /// a * b.
    Mul,
    /// a / b.
    Div,
    /// Minimum (NaN-ignoring).
    Min,
    /// Maximum (NaN-ignoring).
    Max,
    /// Magnitude of b, sign of a (`copysign d, a, b` takes the sign from a).
    Copysign,
}

/// Unary operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    /// |a|.
    Abs,
    /// -a.
    Neg,
    /// Bitwise not (logical not for predicates).
    Not,
    /// `cnot`: 1 if a is 0, else 0.
    Cnot,
    /// Set bits.
    Popc,
    /// Leading zeros.
    Clz,
    /// Bit reverse.
    Brev,
    /// Position of the most significant non-sign bit (`bfind`), `shiftamt` variant when true.
    Bfind(bool),
    /// Square root.
    Sqrt,
    /// 1/sqrt(a).
    Rsqrt,
    /// 1/a.
    Rcp,
    /// 2^a.
    Ex2,
    /// log2(a).
    Lg2,
    /// sin(a).
    Sin,
    /// cos(a).
    Cos,
    /// tanh(a).
    Tanh,
}

/// Comparison operators of `setp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// ==
    Eq,
    /// !=
    Ne,
    /// <
    Lt,
    /// <=
    Le,
    /// >
    Gt,
    /// >=
    Ge,
    /// Ordered (neither NaN).
    Num,
    /// Unordered (either NaN).
    Nan,
}

/// Boolean combiners of `setp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoolOp {
    /// and
    And,
    /// or
    Or,
    /// xor
    Xor,
}

/// Atomic read-modify-write operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomOp {
    /// Add.
    Add,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// And.
    And,
    /// Or.
    Or,
    /// Xor.
    Xor,
    /// Exchange.
    Exch,
    /// Compare and swap.
    Cas,
    /// Wrapping increment.
    Inc,
    /// Wrapping decrement.
    Dec,
}

/// Warp shuffle modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShflMode {
    /// From lane - b.
    Up,
    /// From lane + b.
    Down,
    /// From lane ^ b.
    Bfly,
    /// From lane b.
    Idx,
}

/// Warp vote modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteMode {
    /// All lanes true.
    All,
    /// Any lane true.
    Any,
    /// All lanes equal.
    Uni,
    /// Bit mask of true lanes.
    Ballot,
}

/// A decoded operation with its type and modifiers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// `mov` (also packs and unpacks vectors).
    Mov(Ty),
    /// Integer or bitwise binary op; `sat` clamps signed adds.
    Int(IntOp, Ty, bool),
    /// `mad.{lo,hi,wide}`: `IntOp::MulLo`/`MulHi`/`MulWide` then add.
    Mad(IntOp, Ty),
    /// Extended-precision add/sub/mad: kind, type, carry in, carry out.
    Carry(CarryOp, Ty, bool, bool),
    /// Float binary op with rounding, ftz and sat.
    Float(FloatOp, Ty, Rnd, bool, bool),
    /// Fused multiply-add with rounding, ftz and sat.
    Fma(Ty, Rnd, bool, bool),
    /// Unary op with ftz and rounding (`sqrt.rz`, `rcp.rm`...).
    Un(UnOp, Ty, bool, Rnd),
    /// Bit-field extract.
    Bfe(Ty),
    /// Bit-field insert.
    Bfi(Ty),
    /// Byte permute (default mode).
    Prmt,
    /// Funnel shift: left, clamp.
    Shf(bool, bool),
    /// Compare, with optional combiner, ftz.
    Setp(Cmp, bool, Ty, Option<BoolOp>, bool),
    /// `selp`.
    Selp(Ty),
    /// Convert: destination, source, rounding, integer rounding, sat, ftz.
    Cvt(Ty, Ty, Rnd, bool, bool, bool),
    /// Address conversion to (`true`) or from a space's window.
    Cvta(Space, bool),
    /// Load: space, type, sign-extend to this many bits.
    Ld(Space, Ty, u8),
    /// Store.
    St(Space, Ty),
    /// Atomic op (with destination).
    Atom(Space, AtomOp, Ty),
    /// Reduction (no destination).
    Red(Space, AtomOp, Ty),
    /// `cp.async` global -> shared, queued until a wait completes its group; true when the
    /// fourth operand is an `ignore-src` predicate rather than a `src-size`.
    CpAsync(bool),
    /// `cp.async.commit_group`.
    CpAsyncCommit,
    /// `cp.async.wait_group N` (false) or `cp.async.wait_all` (true).
    CpAsyncWait(bool),
    /// `mma.sync.aligned.m16n8k{8,16}.row.col.f32.{f16,bf16}.{f16,bf16}.f32`: K, and bf16 inputs.
    Mma(u8, bool),
    /// `ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{.trans}.b16`: matrices, transposed, space.
    Ldmatrix(u8, bool, Space),
    /// Branch.
    Bra,
    /// Return from the kernel.
    Exit,
    /// `bar.sync` / `barrier.sync`.
    Bar,
    /// `bar.red.popc/and/or`: 0 popc, 1 and, 2 or.
    BarRed(u8),
    /// `bar.warp.sync`.
    WarpSync,
    /// `shfl.sync`.
    Shfl(ShflMode),
    /// `vote.sync`.
    Vote(VoteMode),
    /// `redux.sync` over the member lanes (add, min, max, and, or, xor).
    Redux(IntOp, Ty),
    /// `match.any.sync` (false) or `match.all.sync` (true).
    Match(bool),
    /// `activemask`: the lanes that reach it together (see `block.rs`).
    Activemask,
    /// `lop3.b32 d, a, b, c, lut`.
    Lop3,
    /// `dp4a`: signedness of a and of b.
    Dp4a(bool, bool),
    /// `testp`: 0 finite, 1 infinite, 2 number, 3 notanumber, 4 normal, 5 subnormal.
    Testp(u8, Ty),
    /// `vprintf`: local offsets of the format and argument-buffer parameters, then of the result.
    Printf,
    /// Fences and hints that do nothing here.
    Nop,
    /// `trap`.
    Trap,
}

impl Op {
    /// For warp collectives (which wait for their member lanes), the operand holding the mask.
    pub fn member_mask_arg(&self) -> Option<usize> {
        match self {
            Op::WarpSync => Some(0),
            Op::Vote(_) | Op::Redux(..) | Op::Match(false) => Some(2),
            Op::Match(true) => Some(3),
            Op::Shfl(_) => Some(5),
            _ => None,
        }
    }

    /// Whether this is an `.aligned` warp-wide instruction (`mma.sync`, `ldmatrix`): every lane
    /// of a full warp must execute it together.
    pub fn whole_warp(&self) -> bool {
        matches!(self, Op::Mma(..) | Op::Ldmatrix(..))
    }
}

/// One decoded instruction.
#[derive(Debug, Clone)]
pub struct Inst {
    /// The operation.
    pub op: Op,
    /// Guard predicate register and negation.
    pub guard: Option<(u32, bool)>,
    /// Operands, destinations first, as in PTX.
    pub args: Box<[Arg]>,
    /// 1-based PTX line.
    pub line: u32,
}

/// A kernel ready to launch.
#[derive(Debug)]
pub struct Kernel {
    /// Entry name.
    pub name: String,
    /// Instructions, callees inlined.
    pub code: Vec<Inst>,
    /// Registers per thread.
    pub nregs: u32,
    /// (offset, size) of each parameter in the parameter buffer.
    pub params: Vec<(u32, u32)>,
    /// Size of the parameter buffer.
    pub param_bytes: u32,
    /// Static shared memory per block; dynamic shared memory starts here.
    pub shared_static: u32,
    /// Local memory per thread.
    pub local_bytes: u32,
}

/// Generic addresses from this value up are shared memory (offset = address - window).
pub const SHARED_WINDOW: u64 = 0x7e00_0000_0000;
/// Generic addresses from this value up are local memory.
pub const LOCAL_WINDOW: u64 = 0x7f00_0000_0000;
/// Size of each window.
pub const WINDOW_SIZE: u64 = 1 << 32;
