//! kiln's tensors, autograd and backends.
//!
//! A [`Tensor`] is a cheap handle to storage plus a [`Layout`] (shape, strides, offset); views
//! share storage. Ops record autograd nodes when an input requires grad; `backward()` fills the
//! leaves' `.grad()`. The CPU backend lives in [`cpu`]; its kernels in `kiln_kernels::cpu`.
#![warn(missing_docs)]

pub mod autograd;
pub mod cpu;
mod device;
mod dtype;
mod error;
mod layout;
mod ops;
mod storage;
mod tensor;

pub use autograd::{check_gradients, is_grad_enabled, no_grad, GradCheck, NoGradGuard};
pub use device::Device;
pub use dtype::{DType, WithDType};
pub use error::{Error, Result};
pub use kiln_kernels::cpu::optim::{AdamWStep, SgdStep};
pub use layout::{broadcast_shape, contiguous_strides, Layout, MemoryFormat};
pub use ops::{manual_seed, with_global_generator, BatchNormArgs, Conv2dParams, Generator, Pool2d};
pub use storage::{CpuStorage, Storage, StorageElem};
pub use tensor::{Tensor, TensorId};
