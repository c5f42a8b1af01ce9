//! kiln's tensors, autograd and backends.
#![warn(missing_docs)]
