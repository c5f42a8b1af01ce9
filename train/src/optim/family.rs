//! What an optimizer family tells the rule optimizer: its rule, its state, how weight decay
//! applies, and the step's scalars.

use super::decay::Decay;
use crate::Result;
use kiln_engine::{Rule, Tensor};

/// The scalars of one rule step, in f64 until they reach the kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RuleScalars {
    /// The rule's `k` (meaning per [`Rule`]).
    pub k: [f64; 12],
    /// Step size multiplying the direction in the epilogue.
    pub lr: f64,
    /// Whether this step applies decoupled weight decay (ADOPT's first step does not).
    pub decays: bool,
}

impl RuleScalars {
    /// `k` padded with zeros, step size `lr`, decaying.
    pub fn new(k: &[f64], lr: f64) -> RuleScalars {
        let mut full = [0.0; 12];
        full[..k.len()].copy_from_slice(k);
        RuleScalars {
            k: full,
            lr,
            decays: true,
        }
    }
}

/// One optimizer family: an update rule and how its scalars follow from the step.
pub(crate) trait Family: Send {
    /// The per-element rule.
    fn rule(&self) -> Rule;
    /// Its state tensors: timm's state name and initial value, [`Rule::states`] of them.
    fn states(&self) -> Vec<(&'static str, f32)>;
    /// The state tensor that starts as a copy of the parameter instead (MADGRAD's x0).
    fn state_from_param(&self) -> Option<usize> {
        None
    }
    /// Per-parameter scalar state beyond the step count (saved with it), e.g. NAdam's
    /// `mu_product`; starts at 0 unless [`Family::scalar_init`] says otherwise.
    fn scalar_state(&self) -> &'static [&'static str] {
        &[]
    }
    /// Initial values of the scalar state.
    fn scalar_init(&self) -> Vec<f64> {
        vec![0.0; self.scalar_state().len()]
    }
    /// How weight decay applies.
    fn decay(&self) -> Decay;
    /// The term of the direction cautious masking applies to, from the step's `k` and one
    /// parameter's updated state (None: the whole direction).
    fn cautious_part(&self, _k: &[f64; 12], _state: &[Tensor]) -> Result<Option<Tensor>> {
        Ok(None)
    }
    /// The scalars of step `step` (1-based) at learning rate `lr` (group-scaled); advances the
    /// per-parameter scalar state.
    fn scalars(&self, lr: f64, step: u64, scalar_state: &mut [f64]) -> RuleScalars;
}
