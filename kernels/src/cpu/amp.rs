//! Mixed-precision helpers over lists of f32 tensors: unscaling gradients with an inf/NaN check
//! (PyTorch's `_amp_foreach_non_finite_check_and_unscale_`) and the model EMA update. Twin of
//! `cuda/amp.cu`.

use super::PAR_GRAIN;
use rayon::prelude::*;

/// g *= inv_scale for every gradient, in place; whether any gradient held an inf or NaN (checked
/// before scaling, as PyTorch).
pub fn unscale_and_check(grads: &mut [&mut [f32]], inv_scale: f32) -> bool {
    let mut found = false;
    for g in grads.iter_mut() {
        found |= g
            .par_chunks_mut(PAR_GRAIN)
            .map(|g| {
                let mut bad = false;
                for v in g {
                    bad |= !v.is_finite();
                    *v *= inv_scale;
                }
                bad
            })
            .reduce(|| false, |a, b| a || b);
    }
    found
}

/// ema = decay·ema + (1 - decay)·model for every tensor pair.
pub fn ema_update(ema: &mut [&mut [f32]], model: &[&[f32]], decay: f32) {
    for (e, m) in ema.iter_mut().zip(model) {
        e.par_chunks_mut(PAR_GRAIN)
            .zip(m.par_chunks(PAR_GRAIN))
            .for_each(|(e, m)| {
                for (e, &m) in e.iter_mut().zip(m) {
                    *e = decay * *e + (1.0 - decay) * m;
                }
            });
    }
}
