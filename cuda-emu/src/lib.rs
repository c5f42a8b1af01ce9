//! kiln's CUDA emulator: a `libcuda.so` that implements the CUDA driver API on the CPU and
//! interprets the PTX that NVRTC produces, so kiln's CUDA code runs (and is checked) without a
//! GPU. See docs/gpu.md, "Testing without a GPU: cuda-emu", and docs/architecture.md §8.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod access;
pub mod alu;
pub mod block;
pub mod cp_async;
pub mod decode;
pub mod driver;
pub mod error;
pub mod float;
pub mod launch;
pub mod ldmatrix;
pub mod memory;
pub mod mma;
pub mod opcode;
pub mod printf;
pub mod program;
pub mod ptx;
pub mod racecheck;
pub mod stats;
pub mod thread;
pub mod ty;

pub use error::{EmuError, FaultKind};
