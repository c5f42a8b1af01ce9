//! Structured pruning that really shrinks the model (Torch-Pruning's approach): a dependency
//! graph traced from one forward groups the parameter axes whose channels must go together
//! (`graph.rs`, `rules.rs`), channels are ranked (`importance.rs`) and chosen for a target
//! fraction of MACs or parameters (`select.rs`), then sliced out of the weights (`remove.rs`);
//! `slimming.rs` is network slimming's sparsity on BatchNorm scales during training.

mod channels;
mod graph;
mod ids;
mod importance;
mod label;
mod remove;
mod rules;
mod select;
mod slimming;
mod tracer;

pub use channels::Group;
pub use graph::DependencyGraph;
pub use importance::{importance, Criterion};
pub use remove::{apply_pruned_shapes, pruned_shapes_metadata, remove_channels, PRUNED_SHAPES_KEY};
pub use select::{select, PruneOptions, Target};
pub use slimming::{add_sign_grad, add_slimming_grad, batch_norm_weights};
pub use tracer::{Coupling, Role};

use crate::{Module, Result};
use std::collections::HashSet;

/// What [`prune`] did: the removed channels and the counts before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneReport {
    /// Channels removed.
    pub removed: usize,
    /// Trainable parameters before and after.
    pub params: [f64; 2],
    /// MACs of one image's forward before and after.
    pub macs: [f64; 2],
}

/// The channels a prune removes, chosen on a traced model. [`PrunePlan::apply`] removes them
/// from that model, or from another instance with the same names and shapes (an EMA copy).
pub struct PrunePlan {
    graph: DependencyGraph,
    removed: HashSet<usize>,
    /// What the removal does to the model.
    pub report: PruneReport,
}

impl PrunePlan {
    /// Traces `model` at `input_size`, ranks its channels by `criterion` (Taylor reads the
    /// gradients the parameters hold) and chooses those to remove for `opts`.
    pub fn new(
        model: &mut dyn Module,
        input_size: [usize; 3],
        criterion: Criterion,
        opts: &PruneOptions,
    ) -> Result<PrunePlan> {
        let graph = DependencyGraph::build(model, input_size)?;
        let scores = importance(&graph, model, criterion)?;
        let removed = select(&graph, &scores, opts);
        let none = HashSet::new();
        let report = PruneReport {
            removed: removed.len(),
            params: [graph.params(&none), graph.params(&removed)],
            macs: [graph.macs(&none), graph.macs(&removed)],
        };
        Ok(PrunePlan {
            graph,
            removed,
            report,
        })
    }

    /// Removes the chosen channels from `model`'s weights, biases and running statistics.
    pub fn apply(&self, model: &mut dyn Module) -> Result<()> {
        remove_channels(model, &self.graph, &self.removed)
    }
}

/// Traces `model` at `input_size`, ranks its channels by `criterion` and removes them for
/// `opts` ([`PrunePlan::new`], then [`PrunePlan::apply`]).
pub fn prune(
    model: &mut dyn Module,
    input_size: [usize; 3],
    criterion: Criterion,
    opts: &PruneOptions,
) -> Result<PruneReport> {
    let plan = PrunePlan::new(model, input_size, criterion, opts)?;
    plan.apply(model)?;
    Ok(plan.report)
}
