//! The normalize stage: uint8 NHWC batch -> f32 NCHW or NHWC, `(x / 255 - mean) / std`.
use super::Batch;

/// timm's IMAGENET_DEFAULT_MEAN.
pub const IMAGENET_DEFAULT_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// timm's IMAGENET_DEFAULT_STD.
pub const IMAGENET_DEFAULT_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Memory layout of the normalized output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Batch, channel, height, width (PyTorch's default).
    Nchw,
    /// Batch, height, width, channel (channels-last).
    Nhwc,
}

/// ImageNet mean and std for `chans` channels: the three values, or for one channel their mean.
pub fn default_mean_std(chans: usize) -> (Vec<f32>, Vec<f32>) {
    if chans == 3 {
        return (
            IMAGENET_DEFAULT_MEAN.to_vec(),
            IMAGENET_DEFAULT_STD.to_vec(),
        );
    }
    let avg = |v: [f32; 3]| v.iter().sum::<f32>() / 3.0;
    (
        vec![avg(IMAGENET_DEFAULT_MEAN); chans],
        vec![avg(IMAGENET_DEFAULT_STD); chans],
    )
}

/// Per-channel normalization into a chosen layout, through a 256-entry table per channel.
#[derive(Debug, Clone)]
pub struct Normalize {
    lut: Vec<[f32; 256]>,
    /// Per-channel mean, in 0..1 units.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation, in 0..1 units.
    pub std: Vec<f32>,
    /// Output layout.
    pub layout: Layout,
}

impl Normalize {
    /// Normalization by `mean` and `std` (in 0..1 units, one per channel) into `layout`.
    pub fn new(mean: &[f32], std: &[f32], layout: Layout) -> Self {
        let lut = mean
            .iter()
            .zip(std)
            .map(|(&m, &s)| std::array::from_fn(|v| (v as f32 / 255.0 - m) / s))
            .collect();
        Normalize {
            lut,
            mean: mean.to_vec(),
            std: std.to_vec(),
            layout,
        }
    }

    /// The normalized batch as a new vector.
    pub fn apply(&self, batch: &Batch) -> Vec<f32> {
        let mut out = vec![0.0; batch.images.len()];
        self.apply_into(batch, &mut out);
        out
    }

    /// Writes the normalized batch into `out` (length `n * h * w * c`).
    pub fn apply_into(&self, batch: &Batch, out: &mut [f32]) {
        let c = batch.c;
        assert_eq!(
            c,
            self.lut.len(),
            "batch has {c} channels, normalize has {}",
            self.lut.len()
        );
        assert_eq!(
            out.len(),
            batch.images.len(),
            "output length differs from the batch"
        );
        match self.layout {
            Layout::Nhwc => {
                for (o, px) in out.chunks_exact_mut(c).zip(batch.images.chunks_exact(c)) {
                    for k in 0..c {
                        o[k] = self.lut[k][px[k] as usize];
                    }
                }
            }
            Layout::Nchw => {
                let hw = batch.h * batch.w;
                for (o, img) in out
                    .chunks_exact_mut(hw * c)
                    .zip(batch.images.chunks_exact(hw * c))
                {
                    if let [lr, lg, lb] = &self.lut[..] {
                        // RGB in one pass over the pixels, the three planes written side by side.
                        let (r, gb) = o.split_at_mut(hw);
                        let (g, b) = gb.split_at_mut(hw);
                        for (((px, r), g), b) in img.chunks_exact(3).zip(r).zip(g).zip(b) {
                            *r = lr[px[0] as usize];
                            *g = lg[px[1] as usize];
                            *b = lb[px[2] as usize];
                        }
                        continue;
                    }
                    for (k, plane) in o.chunks_exact_mut(hw).enumerate() {
                        let lut = &self.lut[k];
                        for (dst, px) in plane.iter_mut().zip(img.chunks_exact(c)) {
                            *dst = lut[px[k] as usize];
                        }
                    }
                }
            }
        }
    }
}
