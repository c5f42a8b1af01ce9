//! Optimizers by timm's names (`create_optimizer_v2`), built as rules plus parts.
//!
//! **Rules.** Each optimizer family is one per-element update rule ([`kiln_engine::Rule`]): the
//! state tensors it keeps and its scalar hyper-parameters. The rule runs as one fused
//! multi-tensor step on the parameters' device (`rule_step_`: a CPU twin generic over the element
//! function, one CUDA kernel that switches on the rule). A family file here (sgd.rs, adam.rs, ...)
//! only says which rule, which state tensors with which initial values, and how the step's
//! scalars (bias corrections, rectification, lr inside the state) follow from the step count and
//! the learning rate; it computes them on the host once per group of same-aged parameters.
//!
//! **Parts** wrap any rule:
//! - weight decay (`decay.rs`): coupled L2 (added to the gradient inside the kernel), decoupled
//!   (`p·(1 − lr·wd)` in the kernel's epilogue, before or after the update), or corrected
//!   decoupled (`lr²/max_lr` in place of `lr`, timm's `c` suffix);
//! - cautious masking (`cautious.rs`, timm's `c` prefix): the kernel writes the update direction
//!   instead of applying it, then engine ops keep the entries whose sign agrees with the gradient,
//!   rescaled by the kept fraction, and apply them;
//! - parameter groups (`groups.rs`): per-parameter weight decay and lr scale (no decay on 1-d
//!   params, biases and the model's `no_weight_decay` names; layer-wise lr decay from the model's
//!   `group_matcher`); `step(lr)` multiplies `lr` by each parameter's scale;
//! - layer-wise norms (`trust.rs`): LAMB scales the rule's update by ‖p‖/‖u‖ (after clipping the
//!   gradients by their global norm), LARS scales the gradient before SGD's rule, NovoGrad
//!   divides it by the root of a running average of its squared norm, MARS corrects it with the
//!   previous gradient and clips its norm before Adam's rule;
//! - projection (`projection.rs`, AdamP/SGDP): the rule's direction loses its radial component
//!   on weights that look scale-invariant;
//! - lookahead (`lookahead.rs`, the `lookahead_` prefix): a wrapper around any optimizer.
//!
//! Adafactor (`adafactor.rs`, timm's T5 form and its Big Vision variant) is a matrix rule composed
//! from engine ops per tensor: its factored second moments are not shaped like the parameter.
//!
//! Muon (`muon.rs`) orthogonalises each weight's momentum by Newton–Schulz iterations
//! (`newton_schulz.rs`, engine matmuls) and hands the other parameters to an AdamW rule optimizer.
//!
//! Kron (`kron.rs`, PSGD with Kronecker-factored preconditioners) fits one triangular or diagonal
//! factor per dim of each parameter (`kron_precond.rs`, host f32 loops) to its momentum and noise
//! drawn from twins of timm's Python and torch generators.
//!
//! `factory.rs` maps timm's names to a family plus parts, and names what kiln does not support.

mod adabelief;
mod adafactor;
mod adagrad;
mod adam;
mod adamax;
mod adan;
mod ademamix;
mod adopt;
mod cautious;
mod decay;
mod factory;
mod family;
mod groups;
mod kron;
mod kron_precond;
mod laprop;
mod lion;
mod lookahead;
mod madgrad;
mod muon;
mod newton_schulz;
mod optimizer;
mod projection;
mod rmsprop;
mod rule_optimizer;
mod sgd;
mod trust;

pub use factory::{
    create_optimizer, create_optimizer_for_model, create_optimizer_for_model_and, OptimizerConfig,
};
pub use groups::{layer_decay_groups, layer_decayed_params, param_groups, LayerGroup};
pub use lookahead::Lookahead;
pub(crate) use optimizer::{densify_grads, full_like_param, grad_of, lerp, restore, resume_error};
pub use optimizer::{HostState, Optimizer, Param};
pub use rule_optimizer::{Parts, RuleOptimizer};
