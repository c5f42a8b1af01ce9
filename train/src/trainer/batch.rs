//! The batch-side stages between the loader and the model: normalize, erasing, mixup, upload.

use crate::augment::{derive_rng, Dims, Mixup, RandomErasing};
use crate::loader::{Batch, Layout as DataLayout, Normalize};
use crate::Result;
use kiln_engine::{DType, Device, Tensor};

/// The batch-side stages between the loader and the model.
#[derive(Debug, Clone)]
pub struct BatchStages {
    /// u8 -> normalized f32, NCHW or NHWC.
    pub normalize: Normalize,
    /// RandomErasing on the normalized train batch.
    pub erasing: Option<RandomErasing>,
    /// Mixup/CutMix producing soft targets.
    pub mixup: Option<Mixup>,
    /// Seed for erasing and mixup draws.
    pub seed: u64,
    /// Where the model runs: batches are copied there.
    pub device: Device,
    /// The images' dtype: the model's (timm's `img_dtype`, F32 unless the model was cast).
    pub dtype: DType,
}

/// A batch as tensors: images [N, C, H, W] (channels-last in memory for NHWC) and targets.
pub struct TensorBatch {
    /// The images.
    pub images: Tensor,
    /// Class indices (I64), or soft or multi-label targets (F32, [N, K]).
    pub targets: Tensor,
    /// Class indices, for accuracy.
    pub labels: Vec<usize>,
}

impl BatchStages {
    /// Normalizes a loader batch and applies erasing and mixup when `train`. On a CUDA device
    /// without erasing or mixup, the uint8 batch is uploaded and normalized on the device.
    pub fn prepare(&self, batch: &Batch, train: bool) -> Result<TensorBatch> {
        let host_stages = train && (self.erasing.is_some() || self.mixup.is_some());
        if self.device != Device::Cpu && !host_stages {
            return self.prepare_on_device(batch);
        }
        let mut x = self.normalize.apply(batch);
        let d = Dims {
            n: batch.n,
            c: batch.c,
            h: batch.h,
            w: batch.w,
            layout: self.normalize.layout,
        };
        let mut rng = derive_rng(&[self.seed, batch.epoch as u64, batch.index as u64, 0xBA7C4]);
        if let (true, Some(e)) = (train, &self.erasing) {
            e.apply(&mut x, d, &mut rng);
        }
        let mixup = self
            .mixup
            .as_ref()
            .filter(|_| train && batch.n.is_multiple_of(2));
        let classes = batch.multi_label_classes();
        let (targets, n) = match mixup {
            Some(m) => {
                let soft = match classes {
                    0 => m.apply(&mut x, d, &batch.targets, batch.epoch, &mut rng),
                    _ => m.apply_dense(&mut x, d, &batch.multi_hot, batch.epoch, &mut rng),
                };
                let n = x.len() / d.image_len();
                (Tensor::from_vec(soft, &[n, m.num_classes])?, n)
            }
            None => (targets_of(batch)?, batch.n),
        };
        let images = match self.normalize.layout {
            DataLayout::Nchw => Tensor::from_vec(x, &[n, batch.c, batch.h, batch.w])?,
            DataLayout::Nhwc => {
                Tensor::from_vec(x, &[n, batch.h, batch.w, batch.c])?.permute(&[0, 3, 1, 2])?
            }
        };
        Ok(TensorBatch {
            images: images.to_dtype(self.dtype)?.to_device(self.device)?,
            targets: targets.to_device(self.device)?,
            labels: batch.targets[..n].to_vec(),
        })
    }
}

impl BatchStages {
    fn prepare_on_device(&self, batch: &Batch) -> Result<TensorBatch> {
        let shape = [batch.n, batch.h, batch.w, batch.c];
        let (mean, std) = (&self.normalize.mean, &self.normalize.std);
        let images =
            Tensor::from_u8_images(&batch.images, shape, mean, std, self.dtype, self.device)?;
        let images = match self.normalize.layout {
            DataLayout::Nhwc => images,
            DataLayout::Nchw => images.to_memory_format(kiln_engine::MemoryFormat::Contiguous)?,
        };
        Ok(TensorBatch {
            images,
            targets: targets_of(batch)?.to_device(self.device)?,
            labels: batch.targets.clone(),
        })
    }
}

/// A batch's targets unmixed: its dense multi-hot rows (F32 [N, K]) for multi-label data, else
/// its class indices (I64 [N]).
fn targets_of(batch: &Batch) -> Result<Tensor> {
    Ok(match batch.multi_label_classes() {
        0 => Tensor::from_vec(
            batch.targets.iter().map(|&t| t as i64).collect(),
            &[batch.n],
        )?,
        k => Tensor::from_vec(batch.multi_hot.clone(), &[batch.n, k])?,
    })
}
