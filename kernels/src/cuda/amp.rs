//! Launchers for `amp.cu`: gradient unscaling with an inf/NaN flag, and the model EMA update,
//! each over a list of f32 tensors in one launch per 32 tensors. Twin of [`crate::cpu::amp`].

use super::optim::{same_counts, tensor_lists};
use super::{DevPtr, Kernels};
use crate::Result;

const FILE: &str = "amp.cu";

/// grads\[t\] *= inv_scale in place; sets the f32 at `found_inf` to 1.0 when any gradient held an
/// inf or NaN (it is never cleared: zero it before the step).
pub fn unscale_and_check(
    k: &Kernels,
    grads: &[DevPtr],
    lens: &[usize],
    inv_scale: f32,
    found_inf: DevPtr,
) -> Result<()> {
    launch_unscale(k, grads, lens, (inv_scale, 0), found_inf)
}

/// As [`unscale_and_check`] with the factor read from the f32 at `inv_scale` in device memory (a
/// CUDA graph's loss scale, written before each replay, or a clip factor the device computed).
pub fn unscale_and_check_by(
    k: &Kernels,
    grads: &[DevPtr],
    lens: &[usize],
    inv_scale: DevPtr,
    found_inf: DevPtr,
) -> Result<()> {
    launch_unscale(k, grads, lens, (1.0, inv_scale), found_inf)
}

/// The unscale launches with the factor by value, or from device memory when the pointer is
/// not null.
fn launch_unscale(
    k: &Kernels,
    grads: &[DevPtr],
    lens: &[usize],
    (inv_scale, inv_p): (f32, DevPtr),
    found_inf: DevPtr,
) -> Result<()> {
    same_counts("unscale_and_check", &[grads.len(), lens.len()])?;
    let rows: Vec<([DevPtr; 1], usize)> = grads.iter().zip(lens).map(|(&g, &n)| ([g], n)).collect();
    for (l, cfg) in tensor_lists(&rows)? {
        // SAFETY: every listed gradient has `len` f32 elements, found_inf and a non-null inv_p
        // address one f32 each (the callers' guarantee); the list matches
        // `unscale_check_f32(TensorList<1>, float, const float*, float*)`.
        unsafe {
            k.launch(
                FILE,
                "unscale_check_f32",
                cfg,
                &[&l, &inv_scale, &inv_p, &found_inf],
            )?
        };
    }
    Ok(())
}

/// ema\[t\] = decay·ema\[t\] + (1 - decay)·model\[t\] for every f32 tensor pair.
pub fn ema_update(
    k: &Kernels,
    ema: &[DevPtr],
    model: &[DevPtr],
    lens: &[usize],
    decay: f32,
) -> Result<()> {
    same_counts("ema_update", &[ema.len(), model.len(), lens.len()])?;
    let rows: Vec<([DevPtr; 2], usize)> = (0..ema.len())
        .map(|t| ([ema[t], model[t]], lens[t]))
        .collect();
    for (l, cfg) in tensor_lists(&rows)? {
        // SAFETY: every listed ema and model tensor has `len` f32 elements; the list matches
        // `ema_update_f32(TensorList<2>, float)`.
        unsafe { k.launch(FILE, "ema_update_f32", cfg, &[&l, &decay])? };
    }
    Ok(())
}
