//! Activation checkpointing (PyTorch's `torch.utils.checkpoint`): a function runs without
//! recording its graph; one node stands for it, whose backward re-runs the function with
//! recording on over the saved inputs and backpropagates through that inner graph. Memory then
//! holds each checkpointed function's inputs instead of all its intermediate activations, for
//! a second forward pass in backward.
//!
//! The recompute sees what the forward saw: the random stream at the forward's position (so
//! dropout and drop-path draw the same masks; the stream is put back afterwards, as PyTorch's
//! `preserve_rng_state`) and the same autocast state. BatchNorm in the recompute normalizes
//! with the batch statistics again but leaves its running statistics alone
//! ([`is_recomputing`]): PyTorch's checkpoint updates them twice, kiln once.
//!
//! The parameters the function reads are the node's inputs too, and the inner backward hands
//! their gradients back to the outer one instead of into `.grad()`: each parameter's gradient
//! is accumulated once, by the outer backward, which fires its leaf hook (data-parallel
//! all-reduce) when the gradient is complete, as without checkpointing.

use super::grad_mode::{enable_grad, is_grad_enabled, no_grad, NoGradGuard};
use super::tape::{leaf_grads, record};
use crate::amp::{autocast_dtype, set_autocast, AutocastGuard};
use crate::{with_global_generator, DType, Error, Generator, Result, Tensor};
use std::cell::Cell;
use std::sync::Arc;

thread_local! {
    static RECOMPUTING: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is re-running a checkpointed function in backward (BatchNorm then leaves
/// its running statistics as the forward left them).
pub fn is_recomputing() -> bool {
    RECOMPUTING.with(Cell::get)
}

/// The function a checkpoint node re-runs.
type Recompute = Arc<dyn Fn(&[Tensor]) -> Result<Tensor> + Send + Sync>;

/// The thread state the forward ran under, which the recompute restores.
struct ForwardState {
    generator: Generator,
    autocast: Option<DType>,
}

impl ForwardState {
    fn now() -> ForwardState {
        ForwardState {
            generator: with_global_generator(|g| g.clone()),
            autocast: autocast_dtype(),
        }
    }

    /// Recording on, the forward's random stream and autocast state, and the recompute flag,
    /// until the guard drops (which puts the stream back where backward had it).
    fn enter(&self) -> RecomputeGuard {
        RecomputeGuard {
            resume: with_global_generator(|g| std::mem::replace(g, self.generator.clone())),
            was_recomputing: RECOMPUTING.with(|r| r.replace(true)),
            _grad: enable_grad(),
            _autocast: set_autocast(self.autocast),
        }
    }
}

/// Restores the thread's state from before [`ForwardState::enter`] when dropped.
struct RecomputeGuard {
    resume: Generator,
    was_recomputing: bool,
    _grad: NoGradGuard,
    _autocast: AutocastGuard,
}

impl Drop for RecomputeGuard {
    fn drop(&mut self) {
        with_global_generator(|g| *g = self.resume.clone());
        RECOMPUTING.with(|r| r.set(self.was_recomputing));
    }
}

/// `f(inputs)` without keeping its intermediate activations: backward re-runs `f` to get them.
/// `params` are the tensors `f` reads besides `inputs` (a module's parameters); those that
/// require grad get their gradients as if `f` had run recorded. A tensor that requires grad,
/// read by `f` but not listed, makes backward fail rather than lose its gradient. Without
/// recording, or with nothing that requires grad, this is just `f(inputs)`.
pub fn checkpoint(
    inputs: &[Tensor],
    params: &[Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor> + Send + Sync + 'static,
) -> Result<Tensor> {
    let params: Vec<Tensor> = params
        .iter()
        .filter(|p| p.requires_grad())
        .cloned()
        .collect();
    let recorded: Vec<&Tensor> = inputs.iter().chain(&params).collect();
    if !is_grad_enabled() || !recorded.iter().any(|t| t.requires_grad()) {
        return f(inputs);
    }
    let state = ForwardState::now();
    let out = {
        let _guard = no_grad();
        f(inputs)?
    };
    let saved: Vec<(Tensor, bool)> = inputs
        .iter()
        .map(|t| (t.detach(), t.requires_grad()))
        .collect();
    let f: Recompute = Arc::new(f);
    let node = record("checkpoint", &recorded, {
        let params = params.clone();
        move |g| recompute_grads(&f, &saved, &params, &state, g)
    });
    Ok(out.with_layout(out.layout().clone(), node))
}

/// The gradients of the saved inputs, then of `params`, from re-running `f` recorded and
/// backpropagating `grad` (the output's gradient) through it.
fn recompute_grads(
    f: &Recompute,
    saved: &[(Tensor, bool)],
    params: &[Tensor],
    state: &ForwardState,
    grad: &Tensor,
) -> Result<Vec<Option<Tensor>>> {
    let xs: Vec<Tensor> = saved
        .iter()
        .map(|(t, needs)| t.detach().requires_grad_(*needs).clone())
        .collect();
    let out = {
        let _guard = state.enter();
        f(&xs)?
    };
    if !out.requires_grad() {
        return Ok(vec![None; xs.len() + params.len()]);
    }
    let mut grads = leaf_grads(&out, grad.clone())?;
    let wanted = xs.iter().chain(params).map(|t| grads.remove(&t.id()));
    let wanted: Vec<Option<Tensor>> = wanted.collect();
    if !grads.is_empty() {
        return Err(Error::InvalidArgument {
            op: "checkpoint",
            msg: format!(
                "the checkpointed function read {} tensor(s) that require grad but were not \
                 passed as inputs or parameters; their gradients would be lost",
                grads.len()
            ),
        });
    }
    Ok(wanted)
}
