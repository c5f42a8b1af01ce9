//! Network slimming's sparsity on BatchNorm scales (Liu et al. 2017, as the reference trainer
//! applies it after backward): `γ.grad += λ·sign(γ)`, the gradient of λ·Σ|γ|.

use crate::layers::for_each_batch_norm;
use crate::{Module, Result};
use kiln_engine::Tensor;

/// Adds `lambda`·sign(γ) to the gradient of every BatchNorm's γ that has one.
pub fn add_slimming_grad(model: &mut dyn Module, lambda: f64) -> Result<()> {
    add_sign_grad(&batch_norm_weights(model), lambda)
}

/// Every BatchNorm's γ (handles on the model's own tensors: their gradients are the model's).
pub fn batch_norm_weights(model: &mut dyn Module) -> Vec<Tensor> {
    let mut weights = Vec::new();
    for_each_batch_norm(model, &mut |bn| weights.push(bn.weight.clone()));
    weights
}

/// `w.grad += lambda·sign(w)` for each of `weights` that has a gradient, in the gradient's
/// dtype and on its device.
pub fn add_sign_grad(weights: &[Tensor], lambda: f64) -> Result<()> {
    for w in weights {
        let Some(g) = w.grad() else { continue };
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
    }
    Ok(())
}
