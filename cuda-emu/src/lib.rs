//! A CPU implementation of the CUDA driver API that interprets PTX.
#![warn(missing_docs)]
