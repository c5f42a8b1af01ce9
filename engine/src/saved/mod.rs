//! The per-op state that crosses the backend boundary besides plain storages: what an op's
//! backward reads of its forward, the buffers a pass updates in place, and the statistics and
//! gradients a backend hands back. The tensor layer (`ops/`), the boundary
//! ([`crate::backend`]) and both backends ([`crate::cpu`], [`crate::cuda`]) import them from
//! here, so that the backends never import the boundary that dispatches to them.

mod attention;
mod batch_norm;
mod channel_partials;
mod layer_norm;

pub use attention::AttnSaved;
pub use batch_norm::{BnGrads, BnRunning, BnSaved, BnStats};
pub use channel_partials::ChannelPartials;
pub use layer_norm::{LnGrads, LnSaved};
