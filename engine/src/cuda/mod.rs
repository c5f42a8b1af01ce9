//! The CUDA backend on cudarc: devices with a caching allocator and two streams, device buffers,
//! and the engine side of each kernel family (launchers live in `kiln_kernels::cuda`). GEMMs go
//! to cuBLAS and convolutions to cuDNN (its graph API first unless `KILN_CUDNN_GRAPH=0`, then its
//! legacy API) when those load, and to the built-in kernels otherwise or when switched off
//! (`KILN_CUBLAS=0`, `KILN_CUDNN=0`, [`set_cublas_enabled`], ...). Work can be captured into CUDA
//! graphs and replayed ([`graph`]), vendor library calls included.

mod alloc;
pub mod attention;
pub mod bce;
pub(crate) mod capture;
pub mod conv;
pub mod copy;
mod cublas;
mod cudnn;
mod cudnn_graph;
mod cudnn_key;
mod cudnn_lib;
mod device;
pub mod elementwise;
pub mod graph;
pub mod layer_norm;
mod libraries;
pub mod matmul;
pub mod norm;
mod peer;
pub mod pool;
pub mod random;
pub mod reduce;
pub mod softmax;
pub mod squeeze_excite;
mod storage;
mod switch;
mod timer;
pub mod upload;
mod vendor;

pub use alloc::MemoryStats;
pub use capture::is_capturing;
pub use cublas::cublas_loaded;
pub use cudnn::cudnn_loaded;
pub use cudnn_graph::cudnn_graph_loaded;
pub use device::{device, CudaDevice};
pub use graph::{skip_rule_steps_if, CudaGraph};
pub use libraries::{libraries_serving, missing_libraries_warning};
pub use storage::{suffix, CudaStorage};
pub use switch::{
    conv_bn_prologue_enabled, conv_bn_stats_enabled, cublas_enabled, cudnn_benchmark,
    cudnn_enabled, cudnn_graph_enabled, parse_switch, set_conv_bn_prologue_enabled,
    set_conv_bn_stats_enabled, set_cublas_enabled, set_cudnn_benchmark, set_cudnn_enabled,
    set_cudnn_graph_enabled, set_tc_tile, set_tensor_cores_enabled, tc_tile, tensor_cores_enabled,
};
pub use timer::GpuTimer;
