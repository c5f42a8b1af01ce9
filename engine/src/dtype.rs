//! Element types and the Rust types that store them.

use half::{bf16, f16};

/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 64-bit float (used by gradient checks).
    F64,
    /// IEEE half precision (storage; math accumulates in f32).
    F16,
    /// bfloat16 (storage; math accumulates in f32).
    BF16,
    /// 64-bit signed integer (class indices, argmax).
    I64,
    /// 32-bit signed integer.
    I32,
    /// Unsigned byte (images).
    U8,
    /// Boolean, one byte per element (comparison results, masks).
    Bool,
}

impl DType {
    /// Bytes per element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::U8 | DType::Bool => 1,
        }
    }

    /// Whether this is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// The name PyTorch and safetensors use (`F32`, `BF16`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F64 => "F64",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::I64 => "I64",
            DType::I32 => "I32",
            DType::U8 => "U8",
            DType::Bool => "BOOL",
        }
    }
}

/// The dtype of the statistics kept for activations of `dtype` (BN's per-channel vectors,
/// LayerNorm's per-row μ and rstd, the losses' per-row values): f32 for f16 and bf16 (the
/// statistics of low-precision activations stay in f32, as in PyTorch), else `dtype` itself.
pub(crate) fn stat_dtype(dtype: DType) -> DType {
    match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        other => other,
    }
}

/// A Rust type that a tensor can hold, with lossless-enough conversion through f64.
pub trait WithDType: Copy + Send + Sync + bytemuck::Pod + std::fmt::Debug + 'static {
    /// The dtype this type stores.
    const DTYPE: DType;
    /// Converts from f64 (rounding, saturating for integers).
    fn from_f64(v: f64) -> Self;
    /// Converts to f64.
    fn to_f64(self) -> f64;
}

macro_rules! with_dtype {
    ($t:ty, $dt:ident, $from:expr, $to:expr) => {
        impl WithDType for $t {
            const DTYPE: DType = DType::$dt;
            fn from_f64(v: f64) -> Self {
                $from(v)
            }
            fn to_f64(self) -> f64 {
                $to(self)
            }
        }
    };
}
with_dtype!(f32, F32, |v| v as f32, |v: f32| v as f64);
with_dtype!(f64, F64, |v| v, |v| v);
with_dtype!(f16, F16, f16::from_f64, f16::to_f64);
with_dtype!(bf16, BF16, bf16::from_f64, bf16::to_f64);
with_dtype!(i64, I64, |v| v as i64, |v: i64| v as f64);
with_dtype!(i32, I32, |v| v as i32, |v: i32| v as f64);
with_dtype!(u8, U8, |v| v as u8, |v: u8| v as f64);
