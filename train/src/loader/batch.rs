//! `Batch`: a uint8 NHWC batch with its targets, as workers produce it.

/// A batch of `n` images of `h`×`w`×`c` bytes, NHWC, with one target per image. With aug splits
/// the images are split-major: all clean views first, then each augmented split.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// `n * h * w * c` bytes, NHWC.
    pub images: Vec<u8>,
    /// Images in the batch (samples × splits; fewer than asked when files were skipped).
    pub n: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Class index per image (a multi-label image's first class).
    pub targets: Vec<usize>,
    /// From a multi-label dataset: the dense multi-hot targets, row-major `[n, classes]` (1 for
    /// each class the image has); empty for single-label data.
    pub multi_hot: Vec<f32>,
    /// Source file per image.
    pub filenames: Vec<String>,
    /// Views per sample (timm's `aug_splits`, 1 without).
    pub splits: usize,
    /// Position of this batch in its epoch.
    pub index: usize,
    /// The epoch it belongs to.
    pub epoch: usize,
    /// Files skipped for this batch because they could not be read or decoded (in training,
    /// replaced by the next samples).
    pub skipped: usize,
}

impl Batch {
    /// Bytes of one image.
    pub fn image_len(&self) -> usize {
        self.h * self.w * self.c
    }

    /// A copy with every image mirrored left to right (test-time augmentation).
    pub fn hflipped(&self) -> Batch {
        let (row, c) = (self.w * self.c, self.c);
        let mut images = self.images.clone();
        for line in images.chunks_exact_mut(row) {
            let src = line.to_vec();
            for (x, px) in line.chunks_exact_mut(c).enumerate() {
                let from = (self.w - 1 - x) * c;
                px.copy_from_slice(&src[from..from + c]);
            }
        }
        Batch {
            images,
            ..self.clone()
        }
    }

    /// The classes of a multi-label batch's rows (`multi_hot`'s width), 0 for single-label data.
    pub fn multi_label_classes(&self) -> usize {
        match self.n {
            0 => 0,
            n => self.multi_hot.len() / n,
        }
    }

    /// The bytes of image `i` (HWC).
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * self.image_len()..(i + 1) * self.image_len()]
    }
}
