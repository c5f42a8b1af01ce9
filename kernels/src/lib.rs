//! kiln's handwritten compute: CUDA C++ sources (`kernels/cuda/*.cu`) and their CPU twins
//! (`cpu/*.rs`), one family a file. Kernels see raw slices, shapes and strides, never tensors.
#![warn(missing_docs)]

pub mod cpu;
