//! timm's Mixup / CutMix on a normalized f32 batch: modes batch, pair, elem, half; cutmix_minmax;
//! prob and switch prob; label smoothing folded into the soft targets; off from `mixup_off_epoch`.
use super::AugRng;
use crate::loader::Layout;
use crate::{Error, Result};
use rand::Rng;
use rand_distr::{Beta, Distribution};

/// How lambda is drawn: once per batch, per pair (i, n-1-i), per element, or per element of the first
/// half (which alone is kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixupMode {
    /// One lambda for the batch.
    Batch,
    /// One lambda per pair (i, n-1-i); both are mixed.
    Pair,
    /// One lambda per element i, mixed with n-1-i.
    Elem,
    /// Like `Elem` on the first half; the second half is dropped.
    Half,
}

impl std::str::FromStr for MixupMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "batch" => Ok(MixupMode::Batch),
            "pair" => Ok(MixupMode::Pair),
            "elem" => Ok(MixupMode::Elem),
            "half" => Ok(MixupMode::Half),
            _ => Err(Error::config("mixup_mode", s, "batch, pair, elem or half")),
        }
    }
}

/// The shape of an f32 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Images.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Memory layout.
    pub layout: Layout,
}

impl Dims {
    /// Offset of element (image i, channel ch, row y, column x).
    pub fn at(&self, i: usize, ch: usize, y: usize, x: usize) -> usize {
        match self.layout {
            Layout::Nchw => ((i * self.c + ch) * self.h + y) * self.w + x,
            Layout::Nhwc => ((i * self.h + y) * self.w + x) * self.c + ch,
        }
    }

    /// Elements per image.
    pub fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }
}

/// timm's `Mixup` (with `correct_lam = True`).
#[derive(Debug, Clone)]
pub struct Mixup {
    /// Beta alpha of mixup (0: off).
    pub mixup_alpha: f64,
    /// Beta alpha of cutmix (0: off; forced to 1 when `cutmix_minmax` is set).
    pub cutmix_alpha: f64,
    /// Box side range as a fraction of the image, instead of drawing it from lambda.
    pub cutmix_minmax: Option<(f64, f64)>,
    /// Probability of mixing a batch (or element).
    pub prob: f64,
    /// Probability of cutmix rather than mixup when both are on.
    pub switch_prob: f64,
    /// Lambda granularity.
    pub mode: MixupMode,
    /// Label smoothing folded into the targets.
    pub label_smoothing: f64,
    /// Number of classes.
    pub num_classes: usize,
    /// Epoch from which mixing stops (0: never), timm's `mixup_off_epoch`.
    pub off_epoch: usize,
}

/// A cutmix box: rows yl..yh, columns xl..xh.
type BBox = (usize, usize, usize, usize);

impl Mixup {
    /// Mixes `x` (shape `d`) in place and returns the soft targets (`n × num_classes`, rows sum to 1).
    /// In `Half` mode `x` is cut to its first half and so are the targets.
    pub fn apply(
        &self,
        x: &mut Vec<f32>,
        d: Dims,
        targets: &[usize],
        epoch: usize,
        rng: &mut AugRng,
    ) -> Vec<f32> {
        self.apply_dense(x, d, &one_hot(targets, self.num_classes), epoch, rng)
    }

    /// [`Mixup::apply`] for dense targets (multi-label multi-hot rows, `n × num_classes`): each
    /// row smoothed as timm smooths one-hot rows, then mixed as timm mixes them (`lam·a + (1 -
    /// lam)·b`).
    pub fn apply_dense(
        &self,
        x: &mut Vec<f32>,
        d: Dims,
        dense: &[f32],
        epoch: usize,
        rng: &mut AugRng,
    ) -> Vec<f32> {
        let (lam, keep) = self.mix_images(x, d, epoch, rng);
        mixup_dense_target(dense, self.num_classes, &lam, self.label_smoothing)
            [..keep * self.num_classes]
            .to_vec()
    }

    /// Mixes `x` in place: each image's lambda, and the images kept (the first half in `Half`
    /// mode, `x` cut to them).
    fn mix_images(
        &self,
        x: &mut Vec<f32>,
        d: Dims,
        epoch: usize,
        rng: &mut AugRng,
    ) -> (Vec<f64>, usize) {
        assert!(
            d.n.is_multiple_of(2),
            "mixup needs an even batch, got {}",
            d.n
        );
        let enabled = self.off_epoch == 0 || epoch < self.off_epoch;
        let lam = match self.mode {
            MixupMode::Batch => self.mix_batch(x, d, enabled, rng),
            MixupMode::Pair => self.mix_pairs(x, d, enabled, rng),
            MixupMode::Elem | MixupMode::Half => self.mix_elems(x, d, enabled, rng),
        };
        let keep = if self.mode == MixupMode::Half {
            d.n / 2
        } else {
            d.n
        };
        x.truncate(keep * d.image_len());
        (lam, keep)
    }

    fn beta(alpha: f64, rng: &mut AugRng) -> f64 {
        Beta::new(alpha, alpha).map_or(1.0, |b| b.sample(rng))
    }

    /// timm's `_params_per_batch` / per element draw: (lambda, use cutmix).
    fn draw(&self, rng: &mut AugRng) -> (f64, bool) {
        let cutmix_alpha = if self.cutmix_minmax.is_some() {
            1.0
        } else {
            self.cutmix_alpha
        };
        match (self.mixup_alpha > 0.0, cutmix_alpha > 0.0) {
            (true, true) => {
                let cut = rng.gen::<f64>() < self.switch_prob;
                (
                    Self::beta(if cut { cutmix_alpha } else { self.mixup_alpha }, rng),
                    cut,
                )
            }
            (true, false) => (Self::beta(self.mixup_alpha, rng), false),
            (false, true) => (Self::beta(cutmix_alpha, rng), true),
            (false, false) => (1.0, false),
        }
    }

    /// Per-element (lambda, cutmix) for `k` elements, with `prob` gating each.
    fn draw_elems(&self, k: usize, enabled: bool, rng: &mut AugRng) -> Vec<(f64, bool)> {
        (0..k)
            .map(|_| {
                let (lam, cut) = self.draw(rng);
                if enabled && rng.gen::<f64>() < self.prob {
                    (lam as f32 as f64, cut)
                } else {
                    (1.0, false)
                }
            })
            .collect()
    }

    fn mix_batch(&self, x: &mut [f32], d: Dims, enabled: bool, rng: &mut AugRng) -> Vec<f64> {
        if !enabled || rng.gen::<f64>() >= self.prob {
            return vec![1.0; d.n];
        }
        let (lam, cut) = self.draw(rng);
        if lam == 1.0 {
            return vec![1.0; d.n];
        }
        let orig = x.to_vec();
        let lam = if cut {
            let (bbox, lam) = self.cutmix_box(d, lam, rng);
            (0..d.n).for_each(|i| paste(x, &orig, d, i, d.n - 1 - i, bbox));
            lam
        } else {
            (0..d.n).for_each(|i| blend_into(x, &orig, d, i, d.n - 1 - i, lam as f32));
            lam
        };
        vec![lam; d.n]
    }

    fn mix_pairs(&self, x: &mut [f32], d: Dims, enabled: bool, rng: &mut AugRng) -> Vec<f64> {
        let mut lams = self.draw_elems(d.n / 2, enabled, rng);
        let orig = x.to_vec();
        for (i, (lam, cut)) in lams.iter_mut().enumerate() {
            let j = d.n - 1 - i;
            if *lam == 1.0 {
                continue;
            }
            if *cut {
                let (bbox, l) = self.cutmix_box(d, *lam, rng);
                paste(x, &orig, d, i, j, bbox);
                paste(x, &orig, d, j, i, bbox);
                *lam = l;
            } else {
                blend_into(x, &orig, d, i, j, *lam as f32);
                blend_into(x, &orig, d, j, i, *lam as f32);
            }
        }
        let mut all: Vec<f64> = lams.iter().map(|l| l.0).collect();
        all.extend(lams.iter().rev().map(|l| l.0));
        all
    }

    fn mix_elems(&self, x: &mut [f32], d: Dims, enabled: bool, rng: &mut AugRng) -> Vec<f64> {
        let k = if self.mode == MixupMode::Half {
            d.n / 2
        } else {
            d.n
        };
        let mut lams = self.draw_elems(k, enabled, rng);
        let orig = x.to_vec();
        for (i, (lam, cut)) in lams.iter_mut().enumerate() {
            if *lam == 1.0 {
                continue;
            }
            if *cut {
                let (bbox, l) = self.cutmix_box(d, *lam, rng);
                paste(x, &orig, d, i, d.n - 1 - i, bbox);
                *lam = l;
            } else {
                blend_into(x, &orig, d, i, d.n - 1 - i, *lam as f32);
            }
        }
        let mut all: Vec<f64> = lams.iter().map(|l| l.0).collect();
        all.resize(d.n, 1.0);
        all
    }

    /// timm's `cutmix_bbox_and_lam`: a box from lambda (or from `cutmix_minmax`) and the lambda
    /// corrected to the box's clipped area.
    fn cutmix_box(&self, d: Dims, lam: f64, rng: &mut AugRng) -> (BBox, f64) {
        let (h, w) = (d.h, d.w);
        let (yl, yh, xl, xh) = match self.cutmix_minmax {
            Some((lo, hi)) => {
                let ch = rng.gen_range((h as f64 * lo) as usize..(h as f64 * hi) as usize);
                let cw = rng.gen_range((w as f64 * lo) as usize..(w as f64 * hi) as usize);
                let (yl, xl) = (rng.gen_range(0..h - ch), rng.gen_range(0..w - cw));
                (yl, yl + ch, xl, xl + cw)
            }
            None => {
                let ratio = (1.0 - lam).sqrt();
                let (ch, cw) = ((h as f64 * ratio) as i64, (w as f64 * ratio) as i64);
                let (cy, cx) = (rng.gen_range(0..h) as i64, rng.gen_range(0..w) as i64);
                let clip = |v: i64, hi: usize| v.clamp(0, hi as i64) as usize;
                (
                    clip(cy - ch / 2, h),
                    clip(cy + ch / 2, h),
                    clip(cx - cw / 2, w),
                    clip(cx + cw / 2, w),
                )
            }
        };
        let area = ((yh - yl) * (xh - xl)) as f64;
        ((yl, yh, xl, xh), 1.0 - area / (h * w) as f64)
    }
}

/// Copies box `b` of image `j` of `orig` into image `i` of `x`.
fn paste(x: &mut [f32], orig: &[f32], d: Dims, i: usize, j: usize, (yl, yh, xl, xh): BBox) {
    for ch in 0..d.c {
        for y in yl..yh {
            for xx in xl..xh {
                x[d.at(i, ch, y, xx)] = orig[d.at(j, ch, y, xx)];
            }
        }
    }
}

/// `x[i] = x[i] * lam + orig[j] * (1 - lam)`.
fn blend_into(x: &mut [f32], orig: &[f32], d: Dims, i: usize, j: usize, lam: f32) {
    let len = d.image_len();
    let src = &orig[j * len..(j + 1) * len];
    for (o, &s) in x[i * len..(i + 1) * len].iter_mut().zip(src) {
        *o = *o * lam + s * (1.0 - lam);
    }
}

/// timm's `mixup_target`: smoothed one-hot of target i times lam_i plus that of target n-1-i times
/// 1 - lam_i; off value `smoothing / classes`, on value `1 - smoothing + off`.
pub fn mixup_target(
    targets: &[usize],
    num_classes: usize,
    lam: &[f64],
    smoothing: f64,
) -> Vec<f32> {
    mixup_dense_target(&one_hot(targets, num_classes), num_classes, lam, smoothing)
}

/// One row of `num_classes` per target, 1 at its class (a class past the last leaves the row 0).
fn one_hot(targets: &[usize], num_classes: usize) -> Vec<f32> {
    let mut hot = vec![0f32; targets.len() * num_classes];
    for (row, &t) in hot.chunks_exact_mut(num_classes.max(1)).zip(targets) {
        if let Some(v) = row.get_mut(t) {
            *v = 1.0;
        }
    }
    hot
}

/// [`mixup_target`] of dense rows (`n × num_classes`, multi-hot for multi-label data): row i
/// smoothed (`y·(1 - smoothing) + smoothing / classes`, which is timm's off and on value for 0
/// and 1) times lam_i plus row n-1-i smoothed times 1 - lam_i.
pub fn mixup_dense_target(
    dense: &[f32],
    num_classes: usize,
    lam: &[f64],
    smoothing: f64,
) -> Vec<f32> {
    let k = num_classes.max(1);
    let n = dense.len() / k;
    let off = smoothing / num_classes as f64;
    let smooth = |v: f32| f64::from(v) * (1.0 - smoothing) + off;
    let mut out = vec![0f32; n * k];
    for (i, row) in out.chunks_exact_mut(k).enumerate() {
        let (a, b, l) = (&dense[i * k..][..k], &dense[(n - 1 - i) * k..][..k], lam[i]);
        for ((v, &y1), &y2) in row.iter_mut().zip(a).zip(b) {
            *v = (smooth(y1) * l + smooth(y2) * (1.0 - l)) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_rows_mix_as_one_hot_rows_do() {
        // Multi-hot rows, no smoothing: row i is lam_i·a + (1 - lam_i)·b, b the row n-1-i.
        let dense = [1.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let got = mixup_dense_target(&dense, 3, &[0.75, 0.75], 0.0);
        assert_eq!(got, vec![0.75, 0.75, 0.25, 0.25, 0.25, 0.75]);
        // One-hot rows through mixup_target are the dense path's, smoothing included.
        let (targets, lam) = ([2usize, 0, 1, 1], [0.3, 1.0, 0.6, 0.3]);
        let mut hot = vec![0f32; 4 * 5];
        targets
            .iter()
            .enumerate()
            .for_each(|(i, &t)| hot[i * 5 + t] = 1.0);
        assert_eq!(
            mixup_target(&targets, 5, &lam, 0.1),
            mixup_dense_target(&hot, 5, &lam, 0.1)
        );
        // Smoothed multi-hot values: 1 -> 1 - s + s/K, 0 -> s/K.
        let got = mixup_dense_target(&[1.0, 0.0, 1.0, 0.0], 2, &[1.0, 1.0], 0.2);
        assert_eq!(got, vec![0.9, 0.1, 0.9, 0.1]);
    }
}
