//! Typed host buffers: [`CpuStorage`] (one `Vec` per dtype), the element types that move in and
//! out of it ([`StorageElem`]), and `with_vec!` over whichever `Vec` it holds.

use crate::{DType, Error, Result, WithDType};
use half::{bf16, f16};

/// A host buffer of one dtype.
#[derive(Debug, Clone)]
pub enum CpuStorage {
    /// f32 elements.
    F32(Vec<f32>),
    /// f64 elements.
    F64(Vec<f64>),
    /// f16 elements.
    F16(Vec<f16>),
    /// bf16 elements.
    BF16(Vec<bf16>),
    /// i64 elements.
    I64(Vec<i64>),
    /// i32 elements.
    I32(Vec<i32>),
    /// u8 elements.
    U8(Vec<u8>),
    /// Booleans as 0/1 bytes.
    Bool(Vec<u8>),
}

/// Runs `$body` with `$v` bound to the typed Vec inside a `CpuStorage`, whatever its dtype.
#[macro_export]
#[doc(hidden)]
macro_rules! with_vec {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            $crate::CpuStorage::F32($v) => $body,
            $crate::CpuStorage::F64($v) => $body,
            $crate::CpuStorage::F16($v) => $body,
            $crate::CpuStorage::BF16($v) => $body,
            $crate::CpuStorage::I64($v) => $body,
            $crate::CpuStorage::I32($v) => $body,
            $crate::CpuStorage::U8($v) => $body,
            $crate::CpuStorage::Bool($v) => $body,
        }
    };
}

/// A Rust element type that can be moved in and out of a [`CpuStorage`].
pub trait StorageElem: WithDType {
    /// Wraps a Vec.
    fn wrap(v: Vec<Self>) -> CpuStorage;
    /// Borrows the Vec if the storage holds this type.
    fn slice(s: &CpuStorage) -> Option<&[Self]>;
    /// Borrows the Vec mutably if the storage holds this type.
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]>;
}

macro_rules! storage_elem {
    ($t:ty, $var:ident) => {
        impl StorageElem for $t {
            fn wrap(v: Vec<Self>) -> CpuStorage {
                CpuStorage::$var(v)
            }
            fn slice(s: &CpuStorage) -> Option<&[Self]> {
                match s {
                    CpuStorage::$var(v) => Some(v),
                    _ => None,
                }
            }
            fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]> {
                match s {
                    CpuStorage::$var(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
storage_elem!(f32, F32);
storage_elem!(f64, F64);
storage_elem!(f16, F16);
storage_elem!(bf16, BF16);
storage_elem!(i64, I64);
storage_elem!(i32, I32);
storage_elem!(u8, U8);

impl CpuStorage {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::BF16(_) => DType::BF16,
            CpuStorage::I64(_) => DType::I64,
            CpuStorage::I32(_) => DType::I32,
            CpuStorage::U8(_) => DType::U8,
            CpuStorage::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_vec!(self, v => v.len())
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `n` zeros of `dtype`.
    pub fn zeros(dtype: DType, n: usize) -> CpuStorage {
        match dtype {
            DType::F32 => CpuStorage::F32(vec![0.0; n]),
            DType::F64 => CpuStorage::F64(vec![0.0; n]),
            DType::F16 => CpuStorage::F16(vec![f16::ZERO; n]),
            DType::BF16 => CpuStorage::BF16(vec![bf16::ZERO; n]),
            DType::I64 => CpuStorage::I64(vec![0; n]),
            DType::I32 => CpuStorage::I32(vec![0; n]),
            DType::U8 => CpuStorage::U8(vec![0; n]),
            DType::Bool => CpuStorage::Bool(vec![0; n]),
        }
    }

    /// `n` copies of the first element (zeros when empty).
    pub fn splat_first(&self, n: usize) -> CpuStorage {
        macro_rules! splat {
            ($($var:ident),*) => {
                match self {
                    $(CpuStorage::$var(v) => {
                        CpuStorage::$var(vec![v.first().copied().unwrap_or_default(); n])
                    })*
                }
            };
        }
        splat!(F32, F64, F16, BF16, I64, I32, U8, Bool)
    }

    /// The elements as `T`, or a dtype error naming `op`.
    pub fn as_slice<T: StorageElem>(&self, op: &'static str) -> Result<&[T]> {
        T::slice(self).ok_or(Error::DTypeMismatch {
            op,
            lhs: self.dtype(),
            rhs: T::DTYPE,
        })
    }

    /// The elements as mutable `T`, or a dtype error naming `op`.
    pub fn as_mut_slice<T: StorageElem>(&mut self, op: &'static str) -> Result<&mut [T]> {
        let dtype = self.dtype();
        T::slice_mut(self).ok_or(Error::DTypeMismatch {
            op,
            lhs: dtype,
            rhs: T::DTYPE,
        })
    }

    /// The raw bytes, little-endian as in memory.
    pub fn as_bytes(&self) -> &[u8] {
        with_vec!(self, v => bytemuck::cast_slice(v))
    }

    /// A buffer of `dtype` from raw little-endian bytes; the length must be a whole number of elements.
    pub fn from_bytes(dtype: DType, bytes: &[u8]) -> Result<CpuStorage> {
        if !bytes.len().is_multiple_of(dtype.size_in_bytes()) {
            return Err(Error::InvalidArgument {
                op: "from_bytes",
                msg: format!(
                    "{} bytes is not a whole number of {dtype:?} elements",
                    bytes.len()
                ),
            });
        }
        let mut s = CpuStorage::zeros(dtype, bytes.len() / dtype.size_in_bytes());
        with_vec!(&mut s, v => bytemuck::cast_slice_mut(v.as_mut_slice()).copy_from_slice(bytes));
        Ok(s)
    }
}
