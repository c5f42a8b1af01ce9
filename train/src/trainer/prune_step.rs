//! The prune step a run takes at the start of an epoch when its schedule says so (see
//! pruning.rs): channels out of the model and the callbacks' copies, then the optimizer,
//! data-parallel buckets and CUDA graphs rebuilt for the new parameters.

use super::fit::{data_parallel, Run};
use crate::optim::create_optimizer_for_model_and;
use crate::Result;
use kiln_nn::prune::{batch_norm_weights, PrunePlan};

impl Run {
    /// Runs the prune step due at the start of this epoch, if any (a run resumed mid-epoch has
    /// run it already): channels out of the model and the callbacks' copies, then a fresh
    /// optimizer, slimming list, data-parallel buckets and CUDA graphs for the new parameters.
    pub(super) fn prune_if_due(&mut self) -> Result<()> {
        let Some(p) = &self.pruning else {
            return Ok(());
        };
        let position = self.state.position;
        let due = (position.batch == 0).then(|| p.schedule.step_at(position.epoch));
        let Some((step, options)) = due.flatten() else {
            return Ok(());
        };
        let s = &p.schedule;
        let plan = PrunePlan::new(self.model.as_mut(), s.input_size, s.criterion, &options)?;
        if plan.report.removed == 0 {
            return Ok(());
        }
        let format = self.model.weights_memory_format();
        plan.apply(self.model.as_mut())?;
        self.model.set_memory_format(format)?;
        for cb in &mut self.callbacks {
            cb.model_pruned(&plan)?;
        }
        let optimizer =
            create_optimizer_for_model_and(&p.optimizer, self.model.as_ref(), Vec::new())?;
        self.updater.optimizer = optimizer;
        if let Some((lambda, _)) = self.updater.slimming.take() {
            self.updater.slimming = Some((lambda, batch_norm_weights(self.model.as_mut())));
        }
        self.updater.ddp = data_parallel(&self.config.dist, self.model.as_ref(), None)?;
        self.graph.forget();
        self.config.record_shapes = true;
        if self.is_first_rank() {
            print_step(step, s.steps, position.epoch, &plan);
        }
        Ok(())
    }
}

/// One log line per step: what the model lost.
fn print_step(step: usize, steps: usize, epoch: usize, plan: &PrunePlan) {
    let r = &plan.report;
    let pct = |x: [f64; 2]| 100.0 * x[1] / x[0];
    println!(
        "Prune step {step}/{steps} (epoch {epoch}): {} channels removed; params {} -> {} ({:.1}%), MACs {} -> {} ({:.1}%); the optimizer starts afresh",
        r.removed,
        r.params[0],
        r.params[1],
        pct(r.params),
        r.macs[0],
        r.macs[1],
        pct(r.macs)
    );
}
