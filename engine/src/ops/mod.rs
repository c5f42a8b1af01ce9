//! Tensor operations, one family per file: the forward through the backend and the backward that
//! autograd records for it.

mod attention;
mod bce;
mod bn_conv;
mod conv;
mod creation;
mod dropout;
mod elementwise;
mod grad_norm;
mod images;
mod layer_norm;
mod matmul;
pub(crate) mod norm;
mod optim;
mod pool;
mod reduce;
mod softmax;
mod squeeze_excite;
mod view;

pub use attention::AttnOptions;
pub use conv::{ChannelStats, Conv2dParams};
pub use creation::Generator;
pub use dropout::{manual_seed, manual_seed_thread, with_global_generator};
pub use grad_norm::{clip_grad_norm_on_device_, grad_norm, scale_grads_};
pub use norm::{BatchNormArgs, CrossReplicaSum};
pub use optim::{ema_update_, flag_nonfinite_, rule_step_, unscale_grads_, unscale_grads_by_};
pub use pool::Pool2d;
pub use squeeze_excite::SqueezeExcite;

use crate::autograd::Node;
use crate::{Capability, DType, Device, Layout, Result, Storage, Tensor};
use std::sync::Arc;

impl Tensor {
    /// A tensor over new storage (on the storage's device), recording `node`.
    pub(crate) fn result(s: Storage, layout: Layout, node: Option<Arc<Node>>) -> Tensor {
        Tensor::from_parts(s, layout, node)
    }

    /// A gradient-free tensor over new storage.
    pub(crate) fn plain(s: Storage, layout: Layout) -> Tensor {
        Tensor::result(s, layout, None)
    }

    /// `rhs` on this tensor's device: a one-element CPU tensor (a scalar) moves over, as PyTorch
    /// allows; anything else on another device is an error naming `op`.
    pub(crate) fn on_my_device(&self, op: &'static str, rhs: &Tensor) -> Result<Tensor> {
        if rhs.device() == self.device() {
            return Ok(rhs.clone());
        }
        if rhs.device() == Device::Cpu && rhs.numel() == 1 {
            return rhs.to_device(self.device());
        }
        Err(crate::Error::DeviceMismatch {
            op,
            lhs: self.device(),
            rhs: rhs.device(),
        })
    }

    /// Runs a GEMM-like op (conv, matmul): under autocast, f32 inputs are cast to the autocast
    /// dtype first; f16/bf16 inputs then go straight to the CUDA kernels (which accumulate in
    /// f32) or through f32 copies on the CPU.
    pub(crate) fn in_gemm_precision(
        inputs: &[&Tensor],
        f: impl FnOnce(&[Tensor]) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let cast: Vec<Tensor> = match crate::amp::autocast_dtype() {
            Some(low) => inputs
                .iter()
                .map(|t| {
                    if t.dtype() == DType::F32 {
                        t.to_dtype(low)
                    } else {
                        Ok((*t).clone())
                    }
                })
                .collect::<Result<_>>()?,
            None => inputs.iter().map(|&t| t.clone()).collect(),
        };
        if cast
            .iter()
            .all(|t| t.device().supports(Capability::LowPrecisionGemm))
        {
            return f(&cast);
        }
        let refs: Vec<&Tensor> = cast.iter().collect();
        Tensor::in_compute_precision(&refs, f)
    }

    /// Runs `f` on the inputs as they are when all are on a CUDA device in one dtype (the
    /// kernels read and write f16/bf16 and compute in f32, so autocast adds no cast pass), else
    /// as [`Tensor::in_compute_precision`].
    pub(crate) fn in_kernel_precision(
        inputs: &[&Tensor],
        f: impl FnOnce(&[Tensor]) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let dtype = inputs.first().map(|t| t.dtype());
        let native = inputs.iter().all(|t| {
            t.device().supports(Capability::LowPrecisionKernels) && Some(t.dtype()) == dtype
        });
        if native {
            let owned: Vec<Tensor> = inputs.iter().map(|&t| t.clone()).collect();
            return f(&owned);
        }
        Tensor::in_compute_precision(inputs, f)
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
