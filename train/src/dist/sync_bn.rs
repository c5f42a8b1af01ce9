//! SyncBN (`--sync-bn`) and the end-of-epoch BN buffer agreement (`--dist-bn`).

use super::communicator::Communicator;
use super::element::ReduceOp;
use super::tensor_collectives::{average_tensors, broadcast_tensors};
use crate::Result;
use kiln_engine::CrossReplicaSum;
use kiln_nn::layers::for_each_batch_norm;
use kiln_nn::Model;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

impl CrossReplicaSum for Communicator {
    fn sum(&self, values: &mut [f64]) -> kiln_engine::Result<()> {
        self.all_reduce(values, ReduceOp::Sum)
            .map_err(|e| kiln_engine::Error::InvalidArgument {
                op: "sync_batch_norm",
                msg: e.to_string(),
            })
    }
}

/// Makes every BatchNorm of `model` a SyncBatchNorm over `comm`'s ranks (timm's
/// `convert_sync_batchnorm`).
pub fn enable_sync_bn(model: &mut dyn Model, comm: &Arc<Communicator>) {
    let sync: Arc<dyn CrossReplicaSum> = comm.clone();
    for_each_batch_norm(model, &mut |bn| bn.sync = Some(sync.clone()));
}

/// timm's `--dist-bn`: how ranks agree on BN running statistics after each epoch (reduce,
/// broadcast, or the empty string for neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum DistBn {
    /// Average running_mean and running_var over ranks (timm's default).
    #[default]
    Reduce,
    /// Copy rank 0's.
    Broadcast,
    /// Each rank keeps its own (timm's `--dist-bn ''`).
    #[cfg_attr(feature = "clap", value(name = ""))]
    #[serde(rename = "")]
    Off,
}

/// Applies `mode` to the running statistics of every BatchNorm in `model` (timm's
/// `distribute_bn`), in one collective.
pub fn dist_bn(model: &mut dyn Model, comm: &Communicator, mode: DistBn) -> Result<()> {
    let mut stats = Vec::new();
    for_each_batch_norm(model, &mut |bn| {
        stats.push(bn.running_mean.clone());
        stats.push(bn.running_var.clone());
    });
    match mode {
        DistBn::Off => Ok(()),
        DistBn::Broadcast => broadcast_tensors(comm, &stats),
        DistBn::Reduce => average_tensors(comm, &stats),
    }
}
