//! CPU twins of the CUDA kernels, one module per family.
