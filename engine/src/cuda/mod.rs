//! The CUDA backend on cudarc: devices with a caching allocator and two streams, device buffers,
//! and the engine side of each kernel family (launchers live in `kiln_kernels::cuda`).

mod alloc;
pub mod conv;
pub mod copy;
mod device;
pub mod elementwise;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod random;
pub mod reduce;
pub mod softmax;
mod storage;
pub mod upload;

pub use alloc::MemoryStats;
pub use device::{device, CudaDevice};
pub use storage::{suffix, CudaStorage};
