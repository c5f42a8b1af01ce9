//! kiln's handwritten compute: CUDA C++ sources (`kernels/cuda/*.cu`, compiled by NVRTC through
//! [`registry`]) and their CPU twins (`cpu/*.rs`), one family a file. Kernels see raw slices or
//! device pointers, shapes and strides, never tensors.
#![warn(missing_docs)]

pub mod cpu;
pub mod cuda;
mod error;
pub mod registry;

pub use error::{Error, Result};
