//! Automatic mixed precision: an autocast region in which convolutions and matrix products run in
//! f16 or bf16 (PyTorch's `torch.autocast` policy); everything else keeps its dtype, and losses
//! compute in f32.

use crate::{DType, Error, Result};
use std::cell::Cell;

thread_local! {
    static AUTOCAST: Cell<Option<DType>> = const { Cell::new(None) };
}

/// Restores the previous autocast state when dropped.
#[must_use = "autocast ends when the guard drops"]
pub struct AutocastGuard(Option<DType>);

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        AUTOCAST.with(|a| a.set(self.0));
    }
}

/// Runs convolutions and matmuls of f32 inputs in `dtype` (F16 or BF16) on this thread until the
/// guard drops.
pub fn autocast(dtype: DType) -> Result<AutocastGuard> {
    if !matches!(dtype, DType::F16 | DType::BF16) {
        return Err(Error::InvalidArgument {
            op: "autocast",
            msg: format!("autocast runs in F16 or BF16, not {dtype:?}"),
        });
    }
    Ok(AutocastGuard(AUTOCAST.with(|a| a.replace(Some(dtype)))))
}

/// Suspends autocast on this thread until the guard drops, for ops that keep part of their work
/// in f32 by design (squeeze-excite's FC layers on f32 channel means).
pub(crate) fn suspend_autocast() -> AutocastGuard {
    set_autocast(None)
}

/// Sets this thread's autocast state to `state` (as [`autocast_dtype`] read it) until the guard
/// drops: activation checkpointing's recompute runs under the forward's state.
pub(crate) fn set_autocast(state: Option<DType>) -> AutocastGuard {
    AutocastGuard(AUTOCAST.with(|a| a.replace(state)))
}

/// The autocast dtype in effect on this thread, if any.
pub fn autocast_dtype() -> Option<DType> {
    AUTOCAST.with(|a| a.get())
}
