//! DistributedDataParallel as PyTorch's reducer does it: parameters and buffers broadcast from
//! rank 0 at the start; gradients packed into buckets (about 25 MB, a small first one, in
//! reverse registration order: the order backward finishes them) whose all-reduce starts from
//! the autograd's leaf hook as soon as the bucket's last gradient is complete, while backward
//! goes on; averaged gradients written back once backward ends. Buckets are flat f32 tensors on
//! the gradients' device (NCCL reduces them there, device threads pass them between devices), or,
//! for MPI, host buffers kept from step to step ([`HostBucket`]).

use super::communicator::{Bucket, Communicator, HostBucket, PendingReduce};
use super::element::ReduceOp;
use super::sync_bn::DistBn;
use super::tensor_collectives::{average_tensors, broadcast_tensors};
use crate::{Error, Result};
use kiln_engine::{no_grad, DType, Tensor, TensorId};
use kiln_nn::{Kind, Module};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

/// DDP's settings (PyTorch's `bucket_cap_mb`, `broadcast_buffers`).
#[derive(Debug, Clone)]
pub struct DdpOptions {
    /// Bucket capacity in bytes (PyTorch: 25 MB).
    pub bucket_bytes: usize,
    /// The first bucket's capacity (PyTorch: 1 MB), so communication starts early.
    pub first_bucket_bytes: usize,
    /// Broadcast rank 0's buffers (BN running statistics) before each forward
    /// (timm's default; `--no-ddp-bb` turns it off).
    pub broadcast_buffers: bool,
    /// Start each bucket's all-reduce from the autograd hook (true) or only after backward.
    pub overlap: bool,
    /// How BN running statistics are agreed after each epoch (timm's `--dist-bn`).
    pub dist_bn: DistBn,
}

impl Default for DdpOptions {
    fn default() -> Self {
        DdpOptions {
            bucket_bytes: 25 << 20,
            first_bucket_bytes: 1 << 20,
            broadcast_buffers: true,
            overlap: true,
            dist_bn: DistBn::Reduce,
        }
    }
}

/// Time spent in all-reduce, split into what backward hid and what it did not.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReduceTimes {
    /// Seconds from the end of backward until every bucket was reduced (exposed).
    pub waited: f64,
    /// Updates reduced.
    pub updates: usize,
}

/// What one backward did, in order (see [`Ddp::last_events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DdpEvent {
    /// Bucket `b`'s all-reduce was started (from the hook while backward ran, or after it).
    Started(usize),
    /// The autograd's backward returned.
    BackwardEnded,
    /// Bucket `b`'s averaged gradients were written back.
    Written(usize),
}

/// The data-parallel wrapper of one model's parameters and buffers.
pub struct Ddp {
    comm: Arc<Communicator>,
    /// Parameters in reverse registration order.
    params: Vec<Tensor>,
    /// Each parameter's index in `params`.
    index: HashMap<TensorId, usize>,
    /// Consecutive runs of `params`, one per bucket.
    buckets: Vec<Range<usize>>,
    buffers: Vec<Tensor>,
    /// BN running means and variances (for `--dist-bn`).
    bn_stats: Vec<Tensor>,
    options: DdpOptions,
    times: ReduceTimes,
    /// The last backward's events.
    events: Vec<DdpEvent>,
    /// Each bucket's host buffers, when the communicator reduces in host memory (taken by a
    /// round while it runs; allocated on first use).
    host: Vec<Option<HostBucket>>,
}

impl std::fmt::Debug for Ddp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Ddp({} params in {} buckets)",
            self.params.len(),
            self.buckets.len()
        )
    }
}

/// One backward's bookkeeping: which buckets are ready, started and in flight.
struct Round<'a> {
    ddp: &'a Ddp,
    ready: Vec<usize>,
    /// The next bucket to start (buckets start in order, the same on every rank).
    next: usize,
    pending: Vec<PendingReduce>,
    error: Option<Error>,
    events: Vec<DdpEvent>,
    /// The host buffers of buckets not yet started (see [`Ddp`]'s `host`).
    host: Vec<Option<HostBucket>>,
}

impl Ddp {
    /// Wraps `model`'s parameters and buffers and broadcasts them from rank 0.
    pub fn new(comm: Arc<Communicator>, model: &dyn Module, options: DdpOptions) -> Result<Ddp> {
        let tensors = model.named_tensors();
        let params: Vec<Tensor> = tensors
            .iter()
            .rev()
            .filter(|t| t.kind == Kind::Parameter && t.tensor.requires_grad())
            .map(|t| t.tensor.clone())
            .collect();
        let buffers: Vec<Tensor> = tensors
            .iter()
            .filter(|t| t.kind == Kind::Buffer)
            .map(|t| t.tensor.clone())
            .collect();
        let bn_stats = tensors
            .iter()
            .filter(|t| t.name.ends_with("running_mean") || t.name.ends_with("running_var"))
            .map(|t| t.tensor.clone())
            .collect();
        let ddp = Ddp {
            bn_stats,
            index: params
                .iter()
                .enumerate()
                .map(|(i, p)| (p.id(), i))
                .collect(),
            buckets: buckets(&params, &options),
            comm,
            params,
            buffers,
            options,
            times: ReduceTimes::default(),
            events: Vec::new(),
            host: Vec::new(),
        };
        let all: Vec<Tensor> = ddp.params.iter().chain(&ddp.buffers).cloned().collect();
        broadcast_tensors(&ddp.comm, &all)?;
        Ok(ddp)
    }

    /// The communicator.
    pub fn comm(&self) -> &Arc<Communicator> {
        &self.comm
    }

    /// The last backward's bucket starts, its end and the write-backs, in the order they came.
    pub fn last_events(&self) -> &[DdpEvent] {
        &self.events
    }

    /// The all-reduce time backward did not hide, so far.
    pub fn times(&self) -> ReduceTimes {
        self.times
    }

    /// Broadcasts rank 0's buffers, if the options ask for it (before each training forward).
    pub fn sync_buffers(&self) -> Result<()> {
        if self.options.broadcast_buffers {
            broadcast_tensors(&self.comm, &self.buffers)?;
        }
        Ok(())
    }

    /// After an epoch: agrees on BN running statistics as `--dist-bn` asks (before validation).
    pub fn distribute_bn(&self) -> Result<()> {
        match self.options.dist_bn {
            DistBn::Reduce => average_tensors(&self.comm, &self.bn_stats),
            DistBn::Broadcast => broadcast_tensors(&self.comm, &self.bn_stats),
            DistBn::Off => Ok(()),
        }
    }

    /// Backward from `loss`, all-reducing (averaging) the gradients bucket by bucket as
    /// backward completes them; on return every rank holds the same averaged gradients.
    pub fn backward(&mut self, loss: &Tensor) -> Result<()> {
        let mut host = std::mem::take(&mut self.host);
        host.resize_with(self.buckets.len(), || None);
        let mut round = Round {
            host,
            ddp: self,
            ready: vec![0; self.buckets.len()],
            next: 0,
            pending: Vec::with_capacity(self.buckets.len()),
            error: None,
            events: Vec::with_capacity(2 * self.buckets.len() + 1),
        };
        if self.options.overlap {
            loss.backward_hooked(&mut |leaf| round.leaf_done(leaf))?;
        } else {
            loss.backward()?;
        }
        round.events.push(DdpEvent::BackwardEnded);
        let start = Instant::now();
        let (events, host) = round.finish()?;
        self.events = events;
        self.host = host;
        self.times.waited += start.elapsed().as_secs_f64();
        self.times.updates += 1;
        Ok(())
    }

    /// Whether any rank's `flag` is set (the loss scaler's overflow, agreed before the step).
    pub fn any(&self, flag: bool) -> Result<bool> {
        let mut v = [f32::from(u8::from(flag))];
        self.comm.all_reduce(&mut v, ReduceOp::Max)?;
        Ok(v[0] > 0.0)
    }

    /// The mean of per-rank values weighted by their counts: each entry is (value, count).
    pub fn weighted_mean(&self, values: &[(f64, f64)]) -> Result<Vec<f64>> {
        let mut buf: Vec<f64> = values.iter().flat_map(|&(v, n)| [v * n, n]).collect();
        self.comm.all_reduce(&mut buf, ReduceOp::Sum)?;
        Ok(buf
            .chunks(2)
            .map(|c| if c[1] > 0.0 { c[0] / c[1] } else { 0.0 })
            .collect())
    }
}

impl Round<'_> {
    /// The hook: counts the leaf towards its bucket and starts every bucket now complete.
    fn leaf_done(&mut self, leaf: &Tensor) {
        let Some(&i) = self.ddp.index.get(&leaf.id()) else {
            return;
        };
        let b = self.ddp.buckets.partition_point(|r| r.end <= i);
        self.ready[b] += 1;
        while self.error.is_none()
            && self.next < self.ddp.buckets.len()
            && self.ready[self.next] == self.ddp.buckets[self.next].len()
        {
            if let Err(e) = self.start(self.next) {
                self.error = Some(e);
            }
            self.next += 1;
        }
    }

    /// Packs bucket `b`'s gradients (zeros where a parameter got none) into one flat f32
    /// tensor on their device, or into its host buffers, and starts its all-reduce.
    fn start(&mut self, b: usize) -> Result<()> {
        let params = &self.ddp.params[self.ddp.buckets[b].clone()];
        let bucket = if self.ddp.comm.stages_on_host() {
            let len = params.iter().map(Tensor::numel).sum();
            let mut host = self.host[b]
                .take()
                .unwrap_or_else(|| HostBucket::with_len(len));
            host.pack(params)?;
            Bucket::Host(host)
        } else {
            Bucket::Device(flatten(params)?)
        };
        let pending = self.ddp.comm.start_all_reduce(bucket, ReduceOp::Average)?;
        self.pending.push(pending);
        self.events.push(DdpEvent::Started(b));
        Ok(())
    }

    /// Starts the buckets the hook did not, waits for all and writes the averages back;
    /// returns the round's events and the host buffers for the next round.
    fn finish(mut self) -> Result<(Vec<DdpEvent>, Vec<Option<HostBucket>>)> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        for b in self.next..self.ddp.buckets.len() {
            self.start(b)?;
        }
        let comm = &self.ddp.comm;
        comm.wait_queued()?;
        for (b, (pending, range)) in self.pending.into_iter().zip(&self.ddp.buckets).enumerate() {
            let params = &self.ddp.params[range.clone()];
            match pending.wait(comm)? {
                Bucket::Device(flat) => write_grads(params, &flat)?,
                Bucket::Host(host) => {
                    host.unpack(params)?;
                    self.host[b] = Some(host);
                }
            }
            self.events.push(DdpEvent::Written(b));
        }
        Ok((self.events, self.host))
    }
}

/// The gradients of `params` as one flat f32 tensor on their device (zeros for a parameter
/// without a gradient).
fn flatten(params: &[Tensor]) -> Result<Tensor> {
    let _no_grad = no_grad();
    let parts = params
        .iter()
        .map(|p| match p.grad() {
            Some(g) => g.to_dtype(DType::F32)?.reshape(&[p.numel()]),
            None => Tensor::zeros(&[p.numel()], DType::F32)?.to_device(p.device()),
        })
        .collect::<kiln_engine::Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, 0)?)
}

/// Splits `params` into consecutive buckets of at most the capacity (the first one smaller).
fn buckets(params: &[Tensor], options: &DdpOptions) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, p) in params.iter().enumerate() {
        let cap = if out.is_empty() {
            options.first_bucket_bytes
        } else {
            options.bucket_bytes
        };
        if i > start && bytes + 4 * p.numel() > cap {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += 4 * p.numel();
    }
    if start < params.len() {
        out.push(start..params.len());
    }
    out
}

/// Sets each parameter's gradient to its slice of `flat` (on the parameters' device), in the
/// gradient's dtype, each in storage of its own.
fn write_grads(params: &[Tensor], flat: &Tensor) -> Result<()> {
    let _no_grad = no_grad();
    let mut at = 0;
    for p in params {
        let n = p.numel();
        let dtype = p.grad().map_or(p.dtype(), |g| g.dtype());
        let g = flat
            .narrow(0, at, n)?
            .reshape(p.shape())?
            .to_dtype(dtype)?
            .contiguous_copy()?;
        p.set_grad(Some(g));
        at += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_whole_parameters_under_the_cap() {
        let p = |n: usize| Tensor::zeros(&[n], DType::F32).unwrap();
        let params = [p(10), p(300), p(200), p(5), p(600), p(100)];
        let options = DdpOptions {
            bucket_bytes: 4 * 700,
            first_bucket_bytes: 4 * 100,
            ..DdpOptions::default()
        };
        // The first holds 10 (300 would pass 100); then 300+200+5, 600+100.
        assert_eq!(buckets(&params, &options), vec![0..1, 1..4, 4..6]);
        let one = DdpOptions {
            first_bucket_bytes: 1,
            bucket_bytes: 1,
            ..DdpOptions::default()
        };
        assert_eq!(buckets(&params[..2], &one), vec![0..1, 1..2]);
    }
}
