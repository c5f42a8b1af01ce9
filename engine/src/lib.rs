//! kiln's tensors, autograd and backends.
//!
//! A [`Tensor`] is a cheap handle to storage plus a [`Layout`] (shape, strides, offset); views
//! share storage. Ops record autograd nodes when an input requires grad; `backward()` fills the
//! leaves' `.grad()`. Ops reach the devices through [`backend`]: the CPU backend in [`cpu`]
//! (kernels in `kiln_kernels::cpu`) and the CUDA backend in [`cuda`] (launchers in
//! `kiln_kernels::cuda`). The dispatch is one-way: what crosses it besides storages (each op's
//! saved state in [`saved`], a convolution's shape in [`conv_shape`]) lives beside it, and the
//! backends never import `backend` (`tests/module_graph/` checks the module graph for circles).
#![warn(missing_docs)]

pub mod amp;
pub mod autograd;
pub mod backend;
mod broadcast;
pub mod conv_shape;
pub mod cpu;
mod cpu_storage;
pub mod cuda;
mod device;
mod dtype;
mod error;
mod layout;
mod ops;
pub mod saved;
mod storage;
mod tensor;
pub mod trace;

pub use autograd::{
    check_gradients, checkpoint, enable_grad, is_grad_enabled, is_recomputing, no_grad, GradCheck,
    NoGradGuard,
};
pub use device::{Capability, Device};
pub use dtype::{DType, WithDType};
pub use error::{Error, Result};
pub use kiln_kernels::cpu::optim::{Rule, RuleStep};
pub use layout::{broadcast_shape, contiguous_strides, Layout, MemoryFormat};
pub use ops::{
    ema_update_, manual_seed, manual_seed_thread, rule_step_, unscale_grads_,
    with_global_generator, AttnOptions, BatchNormArgs, ChannelStats, Conv2dParams, CrossReplicaSum,
    Generator, Pool2d,
};
// The fused squeeze-excite's parameters and the activations it takes.
pub use cpu_storage::{CpuStorage, StorageElem};
pub use kiln_kernels::cpu::elementwise::UnaryOp;
pub use ops::SqueezeExcite;
pub use storage::Storage;
pub use tensor::{Tensor, TensorId};

// What kiln-train's losses and gradient clipping call: fused BCE options, the one-pass norm.
pub use kiln_kernels::cpu::bce::BceOpts;
pub use ops::{grad_norm, scale_grads_};
// What a CUDA graph's training step calls in their place: the same math without host reads.
pub use ops::{clip_grad_norm_on_device_, flag_nonfinite_, unscale_grads_by_};
