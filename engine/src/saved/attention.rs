//! What fused attention's backward reads, generic over the storage type (`&Storage` at the
//! boundary, each backend's own below it).

use crate::{Result, Storage};

/// What fused attention's backward reads: the forward's dense Q, K, V and O, its per-row
/// logsumexp (statistics dtype) and dO.
pub struct AttnSaved<S> {
    /// Queries [bh, lq, d].
    pub q: S,
    /// Keys [bh, lk, d].
    pub k: S,
    /// Values [bh, lk, d].
    pub v: S,
    /// The forward's output [bh, lq, d].
    pub o: S,
    /// The forward's logsumexp per query row.
    pub lse: S,
    /// The gradient of O.
    pub dout: S,
    /// The forward's dense bias [count, lq, lk] (q's dtype), when it had one.
    pub bias: Option<S>,
}

impl<'a> AttnSaved<&'a Storage> {
    /// The same buffers on one backend, taken out by `pick` (which names the op on a mismatch).
    pub(crate) fn on<S>(&self, pick: impl Fn(&'a Storage) -> Result<S>) -> Result<AttnSaved<S>> {
        Ok(AttnSaved {
            q: pick(self.q)?,
            k: pick(self.k)?,
            v: pick(self.v)?,
            o: pick(self.o)?,
            lse: pick(self.lse)?,
            dout: pick(self.dout)?,
            bias: self.bias.map(&pick).transpose()?,
        })
    }
}
