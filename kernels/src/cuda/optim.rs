//! Launcher for `optim.cu`: one multi-tensor rule step, one launch per 32 tensors. Twin of
//! [`crate::cpu::optim`] (f32, f16 or bf16 params). The tensor lists travel by value as kernel parameters.

use super::{DevPtr, Kernels};
use crate::cpu::optim::{RuleElem, RuleStep, MAX_STATES};
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

// SAFETY: `RuleStep` is `repr(C)` plain-old-data (an i32 enum, f32s, an i32), laid out as
// `optim.cu`'s `RuleStep`.
unsafe impl DeviceRepr for RuleStep {}

/// Parameters, gradients and a rule's state, one entry per tensor in every list.
#[derive(Debug, Clone, Copy)]
pub struct TensorSet<'a> {
    /// Parameters, updated in place unless `dirs` is given.
    pub params: &'a [DevPtr],
    /// Their gradients.
    pub grads: &'a [DevPtr],
    /// Where the directions go instead (two-pass parts); empty to apply the update.
    pub dirs: &'a [DevPtr],
    /// The rule's state lists ([`crate::cpu::optim::Rule::states`] of them).
    pub state: &'a [&'a [DevPtr]],
    /// Elements per tensor.
    pub lens: &'a [usize],
}

/// Pointers per tensor in `rule_f32`'s list: param, grad, dir, the states.
const ROW: usize = 3 + MAX_STATES;

impl TensorSet<'_> {
    /// (pointers, len) per tensor, null where a list is absent.
    fn rows(&self, op: &str) -> Result<Vec<([DevPtr; ROW], usize)>> {
        let mut counts = vec![self.params.len(), self.grads.len(), self.lens.len()];
        if !self.dirs.is_empty() {
            counts.push(self.dirs.len());
        }
        counts.extend(self.state.iter().map(|s| s.len()));
        same_counts(op, &counts)?;
        Ok((0..self.params.len())
            .map(|t| {
                let mut p = [0; ROW];
                p[0] = self.params[t];
                p[1] = self.grads[t];
                p[2] = self.dirs.get(t).copied().unwrap_or(0);
                for (s, list) in self.state.iter().enumerate() {
                    p[3 + s] = list[t];
                }
                (p, self.lens[t])
            })
            .collect())
    }
}

/// Device memory a rule step's launches read instead of their by-value arguments (0: none): a
/// CUDA graph replays them with scalars the host rewrites before each replay, and skips them on
/// the device when a flag says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceArgs {
    /// A [`RuleStep`] that replaces `h`.
    pub scalars: DevPtr,
    /// An f32 that, when non-zero, makes the step leave every tensor untouched.
    pub skip: DevPtr,
}

/// One step of `h.rule` over every tensor of `s`, whose params and grads hold `E`; `dev` may move
/// the scalars and a skip flag into device memory.
pub fn rule_step<E: RuleElem>(
    k: &Kernels,
    s: &TensorSet,
    h: &RuleStep,
    dev: DeviceArgs,
) -> Result<()> {
    let states = h.rule.states();
    if s.state.len() != states {
        return Err(Error::Launch(format!(
            "rule_step: {:?} keeps {states} state lists, got {}",
            h.rule,
            s.state.len()
        )));
    }
    let rows = s.rows("rule_step")?;
    let states = states as i32;
    for (l, cfg) in tensor_lists(&rows)? {
        // SAFETY: every listed tensor has `len` f32 elements in param, grad, dir (when not null)
        // and each of the rule's `states` state tensors; the kernel reads no state past `states`;
        // params and grads hold `E`, the type `E::KERNEL` reads; the arguments match
        // `rule_<E>(TensorList<7>, RuleStep, const RuleStep*, const float*, int)`; `dev`'s
        // non-null addresses hold a RuleStep and an f32 (the caller's guarantee).
        unsafe {
            k.launch(
                FILE,
                E::KERNEL,
                cfg,
                &[&l, h, &dev.scalars, &dev.skip, &states],
            )?;
        }
    }
    Ok(())
}
