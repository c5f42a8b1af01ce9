//! Reverse-mode autograd: ops record a [`Node`] on their output when an input requires grad;
//! `backward()` walks the recorded graph from the loss in reverse topological order (the tape),
//! calling each node's backward and accumulating gradients into leaves' `.grad()`.

mod checkpoint;
mod grad_mode;
mod gradcheck;
mod tape;

pub use checkpoint::{checkpoint, is_recomputing};
pub use grad_mode::{enable_grad, is_grad_enabled, no_grad, NoGradGuard};
pub use gradcheck::{check_gradients, GradCheck};
pub(crate) use tape::{backward, record};
pub use tape::{BackwardFn, LeafHook, Node};
