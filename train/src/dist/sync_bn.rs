//! SyncBN (`--sync-bn`) and the end-of-epoch BN buffer agreement (`--dist-bn`).

use super::communicator::{Communicator, ReduceOp};
use crate::{Error, Result};
use kiln_engine::CrossReplicaSum;
use kiln_nn::Model;
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
    model.for_each_batch_norm(&mut |bn| bn.sync = Some(sync.clone()));
}

/// timm's `--dist-bn`: how ranks agree on BN running statistics after each epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistBn {
    /// Average running_mean and running_var over ranks (timm's default).
    Reduce,
    /// Copy rank 0's.
    Broadcast,
}

impl DistBn {
    /// Parses `--dist-bn` (`reduce`, `broadcast`, or empty for none).
    pub fn from_flag(s: &str) -> Result<Option<DistBn>> {
        match s {
            "reduce" => Ok(Some(DistBn::Reduce)),
            "broadcast" => Ok(Some(DistBn::Broadcast)),
            "" => Ok(None),
            other => Err(Error::Flag {
                flag: "--dist-bn".into(),
                msg: format!("'{other}' is not one of reduce, broadcast, or empty"),
            }),
        }
    }
}

/// Applies `mode` to the running statistics of every BatchNorm in `model` (timm's
/// `distribute_bn`), in one collective.
pub fn dist_bn(model: &mut dyn Model, comm: &Communicator, mode: DistBn) -> Result<()> {
    let mut stats = Vec::new();
    model.for_each_batch_norm(&mut |bn| {
        stats.push(bn.running_mean.clone());
        stats.push(bn.running_var.clone());
    });
    match mode {
        DistBn::Broadcast => super::ddp::broadcast_tensors(comm, &stats),
        DistBn::Reduce => super::ddp::average_tensors(comm, &stats),
    }
}
