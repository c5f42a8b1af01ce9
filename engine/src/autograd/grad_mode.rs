//! Whether ops record the autograd graph on this thread, and the guard that turns it off
//! ([`no_grad`], PyTorch's `torch.no_grad()`), or back on ([`enable_grad`]).

use std::cell::Cell;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops record the graph on this thread.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Restores the previous recording state when dropped (from [`no_grad`] or [`enable_grad`]).
pub struct NoGradGuard {
    previous: bool,
}

/// Returns a guard under which ops record no graph.
pub fn no_grad() -> NoGradGuard {
    NoGradGuard {
        previous: GRAD_ENABLED.with(|g| g.replace(false)),
    }
}

/// Returns a guard under which ops record the graph again (PyTorch's `torch.enable_grad()`),
/// as activation checkpointing's recompute does inside backward.
pub fn enable_grad() -> NoGradGuard {
    NoGradGuard {
        previous: GRAD_ENABLED.with(|g| g.replace(true)),
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}
