//! Network slimming's sparsity on BatchNorm scales (Liu et al. 2017, as the reference trainer
//! applies it after backward): `γ.grad += λ·sign(γ)`, the gradient of λ·Σ|γ|.

use crate::{Module, Result};
use kiln_engine::Tensor;

/// Adds `lambda`·sign(γ) to the gradient of every BatchNorm's γ that has one.
pub fn add_slimming_grad(model: &mut dyn Module, lambda: f64) -> Result<()> {
    let mut result = Ok(());
    model.for_each_batch_norm(&mut |bn| {
        if result.is_ok() {
            result = add_sign(&bn.weight, lambda);
        }
    });
    result
}

/// `w.grad += lambda·sign(w)`, in the gradient's dtype and on its device.
fn add_sign(w: &Tensor, lambda: f64) -> Result<()> {
    let Some(g) = w.grad() else {
        return Ok(());
    };
    let sign: Vec<f32> = w
        .to_vec_f32()?
        .into_iter()
        .map(|v| if v == 0.0 { 0.0 } else { v.signum() })
        .collect();
    let penalty = Tensor::from_vec(sign, w.shape())?
        .mul_scalar(lambda)?
        .to_dtype(g.dtype())?
        .to_device(g.device())?;
    w.set_grad(Some(g.add(&penalty)?));
    Ok(())
}
