//! Launchers for `optim.cu`: multi-tensor SGD and AdamW steps, one launch per 32 tensors. Twin of
//! [`crate::cpu::optim`] (f32). The tensor lists travel by value as kernel parameters.

use super::{DevPtr, Kernels};
use crate::cpu::optim::{AdamWStep, SgdStep};
use crate::{Error, Result};
use cudarc::driver::{DeviceRepr, LaunchConfig};

const FILE: &str = "optim.cu";

/// Tensors per launch (the kernels' `MT_TENSORS`).
const MT_TENSORS: usize = 32;
/// Elements per block (the kernels' `MT_CHUNK`).
const MT_CHUNK: usize = 4096;

/// The kernels' `TensorList<P>`: P pointers per tensor, lengths, and each tensor's first block.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct TensorList<const P: usize> {
    ptr: [[u64; P]; MT_TENSORS],
    len: [i64; MT_TENSORS],
    start: [i32; MT_TENSORS + 1],
    count: i32,
}

// SAFETY: plain-old-data with the C layout `TensorList<P>` has in the .cu files.
unsafe impl<const P: usize> DeviceRepr for TensorList<P> {}

/// Splits `tensors` (P pointers and a length each) into launches of at most [`MT_TENSORS`]
/// tensors, each with its grid; groups without elements are left out.
pub(crate) fn tensor_lists<const P: usize>(
    tensors: &[([DevPtr; P], usize)],
) -> Result<Vec<(TensorList<P>, LaunchConfig)>> {
    let mut out = Vec::new();
    for group in tensors.chunks(MT_TENSORS) {
        let mut l = TensorList {
            ptr: [[0; P]; MT_TENSORS],
            len: [0; MT_TENSORS],
            start: [0; MT_TENSORS + 1],
            count: group.len() as i32,
        };
        let mut blocks = 0usize;
        for (t, (ptrs, len)) in group.iter().enumerate() {
            l.ptr[t] = *ptrs;
            l.len[t] = *len as i64;
            l.start[t] = blocks as i32;
            blocks += len.div_ceil(MT_CHUNK);
        }
        if blocks > i32::MAX as usize {
            return Err(Error::Launch(format!(
                "multi-tensor launch of {blocks} chunks exceeds the grid"
            )));
        }
        l.start[group.len()] = blocks as i32;
        if blocks > 0 {
            let cfg = LaunchConfig {
                grid_dim: (blocks as u32, 1, 1),
                block_dim: (256, 1, 1),
                shared_mem_bytes: 0,
            };
            out.push((l, cfg));
        }
    }
    Ok(out)
}

/// Checks that each list has one entry per tensor; `what` names the lists for the error.
pub(crate) fn same_counts(what: &str, counts: &[usize]) -> Result<()> {
    if counts.windows(2).any(|w| w[0] != w[1]) {
        return Err(Error::Launch(format!(
            "{what}: lists of different lengths {counts:?}"
        )));
    }
    Ok(())
}

/// A list of same-shaped f32 tensors and their optimizer state.
#[derive(Debug, Clone, Copy)]
pub struct TensorSet<'a> {
    /// Parameters, updated in place.
    pub params: &'a [DevPtr],
    /// Their gradients.
    pub grads: &'a [DevPtr],
    /// Optimizer state per parameter: SGD's momentum buffer (the second unused; both may be empty
    /// without momentum), or AdamW's m and v.
    pub state: [&'a [DevPtr]; 2],
    /// Elements per tensor.
    pub lens: &'a [usize],
}

impl TensorSet<'_> {
    /// (pointers, len) per tensor: param, grad, then the first `states` state lists.
    fn rows<const P: usize>(&self, op: &str, states: usize) -> Result<Vec<([DevPtr; P], usize)>> {
        let mut counts = vec![self.params.len(), self.grads.len(), self.lens.len()];
        counts.extend(self.state[..states].iter().map(|s| s.len()));
        same_counts(op, &counts)?;
        Ok((0..self.params.len())
            .map(|t| {
                let mut p = [0; P];
                p[0] = self.params[t];
                p[1] = self.grads[t];
                for s in 0..states {
                    p[2 + s] = self.state[s][t];
                }
                (p, self.lens[t])
            })
            .collect())
    }
}

/// One SGD step (momentum, dampening, Nesterov, L2 weight decay as the twin) over every tensor.
pub fn sgd_step(k: &Kernels, s: &TensorSet, h: &SgdStep) -> Result<()> {
    let states = usize::from(h.momentum != 0.0);
    let rows = s.rows::<3>("sgd_step", states)?;
    let (nesterov, first) = (h.nesterov as i32, h.first_step as i32);
    for (l, cfg) in tensor_lists(&rows)? {
        // SAFETY: every listed tensor has `len` f32 elements in param, grad and (with momentum)
        // buffer; the buffer pointer is null and unread without momentum; the list matches
        // `sgd_f32(TensorList<3>, float ×4, int, int)`.
        unsafe {
            k.launch(
                FILE,
                "sgd_f32",
                cfg,
                &[
                    &l,
                    &h.lr,
                    &h.momentum,
                    &h.dampening,
                    &h.weight_decay,
                    &nesterov,
                    &first,
                ],
            )?;
        }
    }
    Ok(())
}

/// One AdamW step (decoupled decay, bias-corrected moments, as the twin) over every tensor.
pub fn adamw_step(k: &Kernels, s: &TensorSet, h: &AdamWStep) -> Result<()> {
    let rows = s.rows::<4>("adamw_step", 2)?;
    // The twin's scalars, computed the same way in f32.
    let (b1, b2) = h.betas;
    let bc1 = 1.0 - b1.powi(h.step as i32);
    let bc2 = 1.0 - b2.powi(h.step as i32);
    let step_size = h.lr / bc1;
    let decay = 1.0 - h.lr * h.weight_decay;
    for (l, cfg) in tensor_lists(&rows)? {
        // SAFETY: every listed tensor has `len` f32 elements in param, grad, m and v; the list
        // matches `adamw_f32(TensorList<4>, float ×6)`.
        unsafe {
            k.launch(
                FILE,
                "adamw_f32",
                cfg,
                &[&l, &b1, &b2, &h.eps, &step_size, &decay, &bc2],
            )?;
        }
    }
    Ok(())
}
