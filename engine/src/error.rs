//! The engine's one error type.

use crate::{DType, Device};

/// Everything an engine operation can fail with; each variant names the op and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // === Shape errors ===
    /// Two operands whose shapes do not fit together.
    #[error("{op}: shape mismatch between {lhs:?} and {rhs:?}")]
    ShapeMismatch {
        /// The operation.
        op: &'static str,
        /// The first operand's shape.
        lhs: Vec<usize>,
        /// The second operand's shape.
        rhs: Vec<usize>,
    },
    /// An operand whose shape the op cannot take.
    #[error("{op}: invalid shape {shape:?}: {msg}")]
    BadShape {
        /// The operation.
        op: &'static str,
        /// The shape at fault.
        shape: Vec<usize>,
        /// Why it is invalid.
        msg: String,
    },
    /// A dimension index out of range.
    #[error("{op}: dimension {dim} out of range for a tensor of rank {rank}")]
    DimOutOfRange {
        /// The operation.
        op: &'static str,
        /// The dimension asked for.
        dim: isize,
        /// The tensor's rank.
        rank: usize,
    },
    /// An op argument out of its valid range.
    #[error("{op}: {msg}")]
    InvalidArgument {
        /// The operation.
        op: &'static str,
        /// What is wrong.
        msg: String,
    },

    // === DType and device errors ===
    /// Operands of different dtypes.
    #[error("{op}: dtype mismatch between {lhs:?} and {rhs:?}")]
    DTypeMismatch {
        /// The operation.
        op: &'static str,
        /// The first operand's dtype.
        lhs: DType,
        /// The second operand's dtype.
        rhs: DType,
    },
    /// A dtype the op does not implement.
    #[error("{op}: not implemented for dtype {dtype:?}")]
    UnsupportedDType {
        /// The operation.
        op: &'static str,
        /// The dtype at fault.
        dtype: DType,
    },
    /// Operands on different devices.
    #[error("{op}: device mismatch between {lhs:?} and {rhs:?}")]
    DeviceMismatch {
        /// The operation.
        op: &'static str,
        /// The first operand's device.
        lhs: Device,
        /// The second operand's device.
        rhs: Device,
    },
    /// A CUDA driver call or kernel launch failed.
    #[error("CUDA: {0}")]
    Cuda(String),
    /// The device allocator could not satisfy a request.
    #[error("cuda:{device} out of memory: tried to allocate {requested} bytes; {allocated} bytes allocated by tensors, {reserved} reserved by kiln's allocator, {free} free of {total} on the device")]
    OutOfMemory {
        /// Device ordinal.
        device: usize,
        /// Bytes asked for.
        requested: usize,
        /// Bytes held by tensors.
        allocated: usize,
        /// Bytes held by the allocator (tensors + cache).
        reserved: usize,
        /// Bytes the driver reports free.
        free: usize,
        /// Device memory in total.
        total: usize,
    },
    /// CUDA was asked for but cannot be used.
    #[error("no CUDA device: {0}")]
    NoCuda(String),
    /// Something a CUDA graph capture cannot record (a host synchronization, a host<->device
    /// copy, a driver allocation, a vendor library call, a host-side random draw): the capture
    /// is abandoned, having run nothing.
    #[error("CUDA graph capture: {0}")]
    Capture(String),
    /// The allocator's cache had no block for a request made during a capture, which cannot ask
    /// the driver: reserve the size ([`crate::cuda::CudaDevice::reserve`]) and capture again.
    #[error("CUDA graph capture on cuda:{device}: the allocator's cache has no free block of {bytes} bytes, and a capture cannot allocate from the driver (reserve it, then capture again)")]
    CaptureCacheMiss {
        /// Device ordinal.
        device: usize,
        /// The block size that was missing.
        bytes: usize,
    },

    // === Autograd errors ===
    /// `backward()` on a tensor that does not require grad.
    #[error(
        "backward: the tensor does not require grad (did you forget requires_grad_ or no_grad?)"
    )]
    NoGraph,
    /// `backward()` on a non-scalar without an explicit gradient.
    #[error("backward: implicit gradient needs a scalar, got shape {0:?}")]
    NonScalarBackward(Vec<usize>),

    // === I/O ===
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A kernel module failed to compile or launch.
    #[error(transparent)]
    Kernel(kiln_kernels::Error),
}

impl From<kiln_kernels::Error> for Error {
    /// A launcher's error; the engine's own error when it came from the scratch allocator the
    /// engine installed (an out-of-memory, a capture's cache miss).
    fn from(e: kiln_kernels::Error) -> Error {
        match e {
            kiln_kernels::Error::Scratch(inner) => match inner.downcast::<Error>() {
                Ok(own) => *own,
                Err(other) => Error::Kernel(kiln_kernels::Error::Scratch(other)),
            },
            e => Error::Kernel(e),
        }
    }
}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Returns early with an `Error::InvalidArgument` naming the op.
#[macro_export]
macro_rules! bail {
    ($op:expr, $($arg:tt)*) => {
        return Err($crate::Error::InvalidArgument { op: $op, msg: format!($($arg)*) })
    };
}
