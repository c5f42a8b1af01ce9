//! Fused optimizer steps over one parameter tensor: a single pass reads the parameter, its
//! gradient and its state and writes both back. Twin of `cuda/optim.cu`.

use super::PAR_GRAIN;
use rayon::prelude::*;

/// SGD hyper-parameters for one step (PyTorch's `torch.optim.SGD` semantics).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdStep {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor (0 disables the buffer).
    pub momentum: f32,
    /// Dampening of the gradient in the momentum buffer.
    pub dampening: f32,
    /// L2 weight decay added to the gradient.
    pub weight_decay: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Whether the momentum buffer is being initialized (first step: buf = grad).
    pub first_step: bool,
}

/// p -= lr · d, with d from grad, weight decay and momentum as `torch.optim.SGD`.
pub fn sgd_step(p: &mut [f32], grad: &[f32], buf: &mut [f32], h: &SgdStep) {
    p.par_chunks_mut(PAR_GRAIN)
        .zip(grad.par_chunks(PAR_GRAIN))
        .zip(buf.par_chunks_mut(PAR_GRAIN))
        .for_each(|((p, g), b)| {
            for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
                let mut d = g + h.weight_decay * *p;
                if h.momentum != 0.0 {
                    *b = if h.first_step {
                        d
                    } else {
                        h.momentum * *b + (1.0 - h.dampening) * d
                    };
                    d = if h.nesterov { d + h.momentum * *b } else { *b };
                }
                *p -= h.lr * d;
            }
        });
}

/// AdamW hyper-parameters for one step (`torch.optim.AdamW`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWStep {
    /// Learning rate.
    pub lr: f32,
    /// β1, β2.
    pub betas: (f32, f32),
    /// ε added to the denominator.
    pub eps: f32,
    /// Decoupled weight decay.
    pub weight_decay: f32,
    /// 1-based step count, for bias correction.
    pub step: u32,
}

/// One AdamW step: decoupled decay, moment updates, bias-corrected update.
pub fn adamw_step(p: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], h: &AdamWStep) {
    let (b1, b2) = h.betas;
    let bc1 = 1.0 - b1.powi(h.step as i32);
    let bc2 = 1.0 - b2.powi(h.step as i32);
    let step_size = h.lr / bc1;
    let decay = 1.0 - h.lr * h.weight_decay;
    p.par_chunks_mut(PAR_GRAIN)
        .zip(grad.par_chunks(PAR_GRAIN))
        .zip(m.par_chunks_mut(PAR_GRAIN).zip(v.par_chunks_mut(PAR_GRAIN)))
        .for_each(|((p, g), (m, v))| {
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *p *= decay;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *p -= step_size * *m / ((*v / bc2).sqrt() + h.eps);
            }
        });
}
