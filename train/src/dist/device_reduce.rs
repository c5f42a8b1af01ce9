//! How the device threads of one process combine a gradient bucket when NCCL does not serve
//! them: the last rank to post the bucket adds the ranks' parts in rank order (so every rank
//! gets the same bits), either on its own device after peer copies (`cuMemcpyPeer`, when every
//! pair of devices has peer access) or on the host after downloading each part.

use super::element::{combine, Element, ReduceOp};
use crate::{Error, Result};
use kiln_engine::{cuda, DType, Device, Tensor};

/// The way bucket parts travel between the devices of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Device to device (peer copies), summed on the reducing rank's device.
    Peer,
    /// Downloaded to host memory, summed there, uploaded by each rank.
    Host,
}

impl Path {
    /// A name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Path::Peer => "device peer copies",
            Path::Host => "host memory",
        }
    }

    /// Peer copies when every pair of `ordinals` can enable peer access, else the host.
    pub fn for_devices(ordinals: &[usize]) -> Result<Path> {
        let devices = ordinals
            .iter()
            .map(|&n| cuda::device(n))
            .collect::<kiln_engine::Result<Vec<_>>>()?;
        for a in &devices {
            for b in &devices {
                if !a.enable_peer_access(b)? {
                    return Ok(Path::Host);
                }
            }
        }
        Ok(Path::Peer)
    }
}

/// The reduction of `parts` (one flat f32 bucket per rank, in rank order): on `device` over
/// peer copies, or a host tensor.
pub fn reduce_parts(parts: &[Tensor], op: ReduceOp, path: Path, device: Device) -> Result<Tensor> {
    let world = parts.len();
    let n = parts.first().map_or(0, Tensor::numel);
    if let Some((r, p)) = parts.iter().enumerate().find(|(_, p)| p.numel() != n) {
        return Err(Error::Dist(format!(
            "bucket all-reduce: rank {r} gave {} elements where rank 0 gave {n}",
            p.numel()
        )));
    }
    match path {
        Path::Peer => {
            let mut acc = parts[0].to_dtype(DType::F32)?.to_device(device)?;
            for p in &parts[1..] {
                let p = p.to_device(device)?;
                acc = match op {
                    ReduceOp::Sum | ReduceOp::Average => acc.add(&p)?,
                    ReduceOp::Max => acc.maximum(&p)?,
                };
            }
            if op == ReduceOp::Average {
                acc = acc.mul_scalar(1.0 / world as f64)?;
            }
            Ok(acc)
        }
        Path::Host => {
            let host = parts
                .iter()
                .map(Tensor::to_vec_f32)
                .collect::<kiln_engine::Result<Vec<_>>>()?;
            let slices: Vec<&[f32]> = host.iter().map(Vec::as_slice).collect();
            let mut sum = combine(&slices, n, op)?;
            if op == ReduceOp::Average {
                sum.iter_mut().for_each(|v| *v = v.div_by(world));
            }
            Ok(Tensor::from_vec(sum, &[n])?)
        }
    }
}
