//! The parsed form of a PTX module, close to the text.

/// A whole `.ptx` file.
#[derive(Debug, Default)]
pub struct Module {
    /// Module-scope variables (`.global`, `.const`, `.shared`).
    pub vars: Vec<VarDecl>,
    /// `.entry` kernels and `.func` device functions that have bodies.
    pub funcs: Vec<Function>,
}

/// A kernel or device function.
#[derive(Debug)]
pub struct Function {
    /// Symbol name.
    pub name: String,
    /// `.entry` (a kernel) rather than `.func`.
    pub is_entry: bool,
    /// Return parameters of a `.func`.
    pub rets: Vec<VarDecl>,
    /// Parameters, in order.
    pub params: Vec<VarDecl>,
    /// Body statements.
    pub body: Vec<Stmt>,
    /// Line of the name.
    pub line: u32,
}

/// State spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// Device memory.
    Global,
    /// Per-block memory.
    Shared,
    /// Per-thread memory.
    Local,
    /// Kernel and call parameters.
    Param,
    /// Constant memory (kept in device memory here).
    Const,
    /// A generic address, resolved at run time.
    Generic,
}

impl Space {
    /// The PTX name without the dot (`shared`).
    pub fn name(self) -> &'static str {
        match self {
            Space::Global => "global",
            Space::Shared => "shared",
            Space::Local => "local",
            Space::Param => "param",
            Space::Const => "const",
            Space::Generic => "generic",
        }
    }
}

/// A variable declaration (`.shared .align 4 .b8 sm[1024];`, a parameter).
#[derive(Debug, Clone)]
pub struct VarDecl {
    /// State space.
    pub space: Space,
    /// Alignment in bytes (the element size when not given).
    pub align: u32,
    /// Element type name, without the dot (`b8`, `u64`).
    pub ty: String,
    /// Vector width (`.v2`, `.v4`), 1 for scalars.
    pub vec: u32,
    /// Symbol name.
    pub name: String,
    /// Element count: 1 for scalars, 0 for `[]`.
    pub count: u64,
    /// Initial values, one per element.
    pub init: Vec<Operand>,
    /// Line of the declaration.
    pub line: u32,
}

/// One body statement.
#[derive(Debug)]
pub enum Stmt {
    /// `.reg .f32 %f<74>, %x;`: type and (name, count) pairs, count `None` for a single name.
    Reg(String, Vec<(String, Option<u32>)>, u32),
    /// A variable in a non-register space.
    Var(VarDecl),
    /// `name:`.
    Label(String, u32),
    /// `{`: a new register scope.
    Open,
    /// `}`.
    Close,
    /// An instruction.
    Inst(Instruction),
}

/// An instruction as written.
#[derive(Debug, Clone)]
pub struct Instruction {
    /// `@%p` / `@!%p` guard: register name and negation.
    pub guard: Option<(String, bool)>,
    /// Full opcode with modifiers (`ld.global.v4.f32`).
    pub opcode: String,
    /// Operands in order.
    pub operands: Vec<Operand>,
    /// 1-based line.
    pub line: u32,
}

/// An operand as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A register, special register, label or symbol.
    Name(String),
    /// `!%p`.
    Not(String),
    /// An integer literal.
    Int(i128),
    /// A decimal or `0d` float literal.
    Float(f64),
    /// A `0f` float literal by its bits.
    F32(u32),
    /// `[base+offset]`; `base` is `None` for an absolute address.
    Addr(Option<String>, i64),
    /// `{a, b, c}`.
    Vec(Vec<Operand>),
    /// `%r|%p` (a value and a predicate destination).
    Pair(String, String),
    /// `(a, b)` in a `call`.
    List(Vec<Operand>),
}
