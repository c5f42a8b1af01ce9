//! The global L2 norm of a list of gradients in one fused pass, and one multi-tensor scale: the
//! two halves of `torch.nn.utils.clip_grad_norm_`. Tensors are f32, dense from offset 0, on one
//! device; on CUDA each is one launch per 32 tensors.

use super::optim::{check_lists, flats};
use crate::{Result, Storage, Tensor};

/// √(Σ_t Σ g²) over every tensor of `grads` (0 for none).
pub fn grad_norm(grads: &[Tensor]) -> Result<f64> {
    let Some(device) = check_lists("grad_norm", &[grads])? else {
        return Ok(0.0);
    };
    Ok(Storage::sq_norm(device, &flats(grads))?.sqrt())
}

/// Multiplies every tensor of `grads` by `factor` in place (the unscale kernel of loss scaling,
/// whose inf/NaN flag is not read).
pub fn scale_grads_(grads: &[Tensor], factor: f32) -> Result<()> {
    let Some(device) = check_lists("scale_grads", &[grads])? else {
        return Ok(());
    };
    Storage::scale_(device, &flats(grads), factor)
}

/// `clip_grad_norm_` without reading anything on the host, for a CUDA graph: the global norm's
/// partials, the factor max_norm / (norm + eps) when below 1 (else 1) computed on the device
/// with the bits of the host's path (partials added in f64 in the same order), and one
/// multi-tensor scale by it. On the CPU, the host path.
pub fn clip_grad_norm_on_device_(grads: &[Tensor], max_norm: f64, eps: f64) -> Result<()> {
    let Some(device) = check_lists("clip_grad_norm", &[grads])? else {
        return Ok(());
    };
    Storage::clip_grad_norm_(device, &flats(grads), max_norm, eps)
}
