//! timm's gradient checkpointing (`set_grad_checkpointing`, `checkpoint_seq`): a model's blocks
//! are shared with the graphs that record them, so that backward can re-run a block
//! ([`kiln_engine::checkpoint`]) instead of keeping its intermediate activations.

use crate::{Children, Error, Module, Result, Visitor, VisitorMut};
use kiln_engine::Tensor;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A block a checkpoint's backward may re-run: shared (behind a lock) with the graphs that
/// recorded it. The recompute runs the block as it is then, as PyTorch's does.
pub struct Checkpointed<M>(Arc<RwLock<M>>);

impl<M: Module + 'static> Checkpointed<M> {
    /// Wraps `block`.
    pub fn new(block: M) -> Checkpointed<M> {
        Checkpointed(Arc::new(RwLock::new(block)))
    }

    /// The block, to read.
    pub fn get(&self) -> RwLockReadGuard<'_, M> {
        read(&self.0)
    }

    /// The block, to change.
    pub fn get_mut(&mut self) -> RwLockWriteGuard<'_, M> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The block's forward, checkpointed when `checkpoint` (timm's `checkpoint(block, x)`).
    pub fn forward_checkpointed(&self, x: &Tensor, checkpoint: bool) -> Result<Tensor> {
        self.run_checkpointed(std::slice::from_ref(x), checkpoint, |b, xs| {
            b.forward(&xs[0])
        })
    }

    /// `f(block, xs)`, checkpointed when `checkpoint`: a block that reads several tensors
    /// (timm's DenseNet bottleneck concatenates every earlier feature map inside the checkpoint).
    pub fn run_checkpointed(
        &self,
        xs: &[Tensor],
        checkpoint: bool,
        f: fn(&M, &[Tensor]) -> Result<Tensor>,
    ) -> Result<Tensor> {
        if !checkpoint {
            return f(&self.get(), xs);
        }
        let params: Vec<Tensor> = self
            .get()
            .named_parameters()
            .into_iter()
            .map(|t| t.tensor)
            .collect();
        let block = self.0.clone();
        let run = move |xs: &[Tensor]| f(&read(&block), xs).map_err(into_engine);
        Ok(kiln_engine::checkpoint(xs, &params, run)?)
    }
}

/// timm's `checkpoint_seq` with every block its own segment when `enabled`; else the blocks
/// run in order, recorded as usual.
pub fn checkpoint_seq<'a, M: Module + 'static>(
    blocks: impl IntoIterator<Item = &'a Checkpointed<M>>,
    x: Tensor,
    enabled: bool,
) -> Result<Tensor> {
    blocks
        .into_iter()
        .try_fold(x, |h, b| b.forward_checkpointed(&h, enabled))
}

fn read<M>(block: &RwLock<M>) -> RwLockReadGuard<'_, M> {
    block.read().unwrap_or_else(|e| e.into_inner())
}

/// The engine error a recompute reports (the engine's own, else this crate's as its message).
fn into_engine(e: Error) -> kiln_engine::Error {
    match e {
        Error::Engine(e) => e,
        other => kiln_engine::Error::InvalidArgument {
            op: "checkpoint",
            msg: other.to_string(),
        },
    }
}

/// The block is this module's one child, flattened: its tensors under this module's prefix, its
/// own traversals (a BatchNorm walk, a conv's memory format) reached through the lock.
impl<M: Module + 'static> Children for Checkpointed<M> {
    fn visit(&self, v: &mut dyn Visitor) {
        v.child("", &*self.get())
    }

    fn visit_mut(&mut self, v: &mut dyn VisitorMut) -> Result<()> {
        v.child("", &mut *self.get_mut())
    }
}

impl<M: Module + 'static> Module for Checkpointed<M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.get().forward(x)
    }
}
