//! Tensor operations, one family per file: the forward through the backend and the backward that
//! autograd records for it.

mod conv;
mod creation;
mod dropout;
mod elementwise;
mod matmul;
mod norm;
mod pool;
mod reduce;
mod softmax;
mod view;

pub use conv::Conv2dParams;
pub use creation::Generator;
pub use dropout::{manual_seed, with_global_generator};
pub use norm::BatchNormArgs;
pub use pool::Pool2d;

use crate::autograd::Node;
use crate::{CpuStorage, DType, Device, Layout, Result, Storage, Tensor};
use std::sync::Arc;

impl Tensor {
    /// A tensor over new CPU storage, recording `node`.
    pub(crate) fn cpu_result(s: CpuStorage, layout: Layout, node: Option<Arc<Node>>) -> Tensor {
        Tensor::from_parts(Storage::Cpu(s), layout, Device::Cpu, node)
    }

    /// A gradient-free tensor over new CPU storage.
    pub(crate) fn cpu_plain(s: CpuStorage, layout: Layout) -> Tensor {
        Tensor::cpu_result(s, layout, None)
    }

    /// Runs `f` on f32 copies of low-precision (f16/bf16) inputs and casts the result back,
    /// so every op accumulates in at least f32.
    pub(crate) fn in_compute_precision(
        inputs: &[&Tensor],
        f: impl FnOnce(&[Tensor]) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let low = inputs
            .iter()
            .map(|t| t.dtype())
            .find(|d| matches!(d, DType::F16 | DType::BF16));
        let Some(dtype) = low else {
            let owned: Vec<Tensor> = inputs.iter().map(|&t| t.clone()).collect();
            return f(&owned);
        };
        let up: Vec<Tensor> = inputs
            .iter()
            .map(|t| {
                if t.dtype() == dtype {
                    t.to_dtype(DType::F32)
                } else {
                    Ok((*t).clone())
                }
            })
            .collect::<Result<_>>()?;
        f(&up)?.to_dtype(dtype)
    }
}

pub(crate) use crate::autograd::record as record_node;
