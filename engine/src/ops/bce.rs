//! Binary cross-entropy with logits, fused with its backward (timm's `BinaryCrossEntropy`).

use super::record_node;
use super::softmax::{targets, LossInputs};
use crate::dtype::stat_dtype;
use crate::{Capability, Layout, Result, Tensor};
use kiln_kernels::cpu::bce::BceOpts;

impl Tensor {
    /// Per-row sums \[N\] over classes of the binary cross-entropy with logits [N, K], against
    /// class indices \[N\] (I64, one-hot with timm's smoothing: off = s/K, on = 1 - s + s/K) or
    /// soft targets [N, K], binarized above `opts.threshold` and weighted by `opts.pos_weight` as
    /// PyTorch's `binary_cross_entropy_with_logits`. Neither the targets nor σ(x) are stored.
    pub fn bce_with_logits_rows(
        &self,
        target: &Tensor,
        smoothing: f64,
        opts: BceOpts,
    ) -> Result<Tensor> {
        // Native kernels (CUDA's) read f16/bf16 logits as they are (f32 losses and targets).
        let native = self.device().supports(Capability::LowPrecisionBce);
        let t = LossInputs::new("binary_cross_entropy", self, target, smoothing, native)?;
        let (n, k, soft) = (t.rows, t.classes, t.soft);
        let loss = {
            let ts = t.target.storage();
            t.logits
                .storage()
                .bce_fwd(k, targets(&ts, soft, smoothing), opts)?
        };
        let per_row = Tensor::plain(loss, Layout::contiguous(&[n]));
        let (xd, td) = (t.logits.detach(), t.target.detach());
        let node = record_node("binary_cross_entropy", &[&t.logits], move |g| {
            let scale = LossInputs::row_scale(g, stat_dtype(xd.dtype()), n)?;
            let ts = td.storage();
            let dx =
                xd.storage()
                    .bce_bwd(k, targets(&ts, soft, smoothing), opts, &scale.storage())?;
            Ok(vec![Some(Tensor::plain(dx, Layout::contiguous(&[n, k])))])
        });
        Ok(per_row.with_layout(per_row.layout().clone(), node))
    }
}
