//! The crate's one error type.

use thiserror::Error;

/// Everything that can go wrong inside the emulator.
#[derive(Debug, Error)]
pub enum EmuError {
    /// The PTX text could not be parsed.
    #[error("PTX parse error at line {line}: {msg}")]
    Parse {
        /// 1-based line in the PTX text.
        line: u32,
        /// What was wrong.
        msg: String,
    },
    /// The PTX parsed but uses something the interpreter does not implement.
    #[error("PTX line {line}: unsupported {what}")]
    Unsupported {
        /// 1-based line in the PTX text.
        line: u32,
        /// The instruction or construct.
        what: String,
    },
    /// A kernel faulted while running.
    #[error("{kind} in kernel `{kernel}` block ({},{},{}) thread ({},{},{}) at PTX line {line}: {detail}",
        block[0], block[1], block[2], thread[0], thread[1], thread[2])]
    Fault {
        /// The class of fault.
        kind: FaultKind,
        /// Entry name.
        kernel: String,
        /// `ctaid` of the faulting block.
        block: [u32; 3],
        /// `tid` of the faulting thread.
        thread: [u32; 3],
        /// 1-based PTX line of the instruction.
        line: u32,
        /// Address, lanes or other specifics.
        detail: String,
    },
}

/// The classes of launch failure, each mapped to a CUDA error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Access outside any allocation or outside shared/local memory.
    OutOfBounds,
    /// Access not aligned to its size.
    Misaligned,
    /// Threads of a block wait at different barriers, or some exited.
    BarrierDivergence,
    /// A warp collective whose member lanes never arrive.
    MissingLanes,
    /// Two threads touch the same shared byte between barriers, one writing.
    SharedRace,
    /// `trap` or another instruction that aborts the kernel.
    Trap,
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::OutOfBounds => "out-of-bounds access",
            Self::Misaligned => "misaligned access",
            Self::BarrierDivergence => "barrier divergence",
            Self::MissingLanes => "warp collective with missing lanes",
            Self::SharedRace => "shared-memory race",
            Self::Trap => "trap",
        })
    }
}

/// Shorthand for results in this crate.
pub type Result<T> = std::result::Result<T, EmuError>;
