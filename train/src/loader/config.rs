//! What `DataConfig`'s flags build: the pipelines, loaders, normalize, erasing and mixup stages
//! they describe.

use super::aug_config::pair;
use super::data_config::DataConfig;
use super::{
    default_mean_std, BatchPlan, DistributedSampler, Layout, Loader, LoaderOptions, Normalize,
    RepeatAugSampler, Sampler, SizeSchedule,
};
use crate::augment::{
    aa_transform, AugHparams, CenterCrop, ColorJitter, EraseMode, EvalCropMode, GaussianBlur,
    HFlip, Interpolation, Mixup, MixupMode, Pipeline, RandomApply, RandomErasing, RandomGrayscale,
    Resize, ResizeTo, TrainCropMode, Transform, VFlip, DEFAULT_CROP_PCT,
};
use crate::data::wds::WdsDataset;
use crate::data::{Dataset, Source};
use crate::{Error, Result};
use std::sync::Arc;

impl DataConfig {
    /// Mean and std per channel, the defaults filled in.
    pub fn mean_std(&self) -> (Vec<f32>, Vec<f32>) {
        let (m, s) = default_mean_std(self.in_chans);
        (
            self.mean.clone().unwrap_or(m),
            self.std.clone().unwrap_or(s),
        )
    }

    /// The normalize stage into `layout`.
    pub fn normalize(&self, layout: Layout) -> Normalize {
        let (m, s) = self.mean_std();
        Normalize::new(&m, &s, layout)
    }

    fn eval_interp(&self) -> Result<Interpolation> {
        if self.interpolation.is_empty() {
            Ok(Interpolation::Bilinear)
        } else {
            self.interpolation.parse()
        }
    }

    /// The training resize filter: `--train-interpolation`, the eval one under `no_aug` or when
    /// it is empty (timm's train.py).
    fn train_interp(&self) -> Result<Interpolation> {
        match self.aug.no_aug || self.mix.train_interpolation.is_empty() {
            true => self.eval_interp(),
            false => self.mix.train_interpolation.parse(),
        }
    }

    /// timm's train transform: the `train_crop_mode` crop, flips, then AA/RandAugment/AugMix or
    /// ColorJitter, grayscale and blur; with `aug_splits` > 1 the first view is clean. `no_aug`
    /// gives resize + centre crop.
    pub fn train_pipeline(&self) -> Result<Pipeline> {
        let size = self.img_size;
        let interp = self.train_interp()?;
        if self.aug.no_aug {
            let steps: Vec<Box<dyn Transform>> = vec![
                Box::new(Resize {
                    size: ResizeTo::Shorter(size),
                    interp,
                }),
                Box::new(CenterCrop { w: size, h: size }),
            ];
            return Ok(Pipeline::new(steps, vec![]));
        }
        let mode: TrainCropMode = self.aug.crop_mode().parse()?;
        let (scale, ratio) = (self.aug.scale_range(), self.aug.ratio_range());
        let mut primary = mode.steps(size, scale, ratio, interp);
        if self.aug.hflip > 0.0 {
            primary.push(Box::new(HFlip(self.aug.hflip)));
        }
        if self.aug.vflip > 0.0 {
            primary.push(Box::new(VFlip(self.aug.vflip)));
        }
        let secondary = self.secondary(interp)?;
        Ok(Pipeline {
            primary,
            secondary,
            splits: self.aug_splits.max(1),
        })
    }

    /// The colour / policy steps after the geometric ones (timm's `transforms_imagenet_train`):
    /// AA/RandAugment/AugMix from `aa`; ColorJitter unless a policy replaces it, wrapped in
    /// RandomApply with `color_jitter_prob`; RandomGrayscale; RandomApply of a Gaussian blur.
    fn secondary(&self, interp: Interpolation) -> Result<Vec<Box<dyn Transform>>> {
        let size = self.img_size;
        let mut secondary: Vec<Box<dyn Transform>> = Vec::new();
        let aa = self.aug.policy();
        if let Some(aa) = aa {
            let (mean, _) = self.mean_std();
            secondary.push(aa_transform(
                aa,
                AugHparams::for_image(size, &mean, interp),
            )?);
        }
        if self.aug.color_jitter > 0.0 && aa.is_none_or(|a| a.contains("3a")) {
            let j = self.aug.color_jitter;
            let jitter = Box::new(ColorJitter {
                brightness: j,
                contrast: j,
                saturation: j,
                hue: 0.0,
            });
            secondary.push(match self.aug.color_jitter_prob {
                Some(p) => Box::new(RandomApply {
                    p,
                    transform: jitter,
                }),
                None => jitter,
            });
        }
        if let Some(p) = self.aug.grayscale_prob.filter(|&p| p > 0.0) {
            secondary.push(Box::new(RandomGrayscale(p)));
        }
        if let Some(p) = self.aug.gaussian_blur_prob.filter(|&p| p > 0.0) {
            secondary.push(Box::new(RandomApply {
                p,
                transform: Box::new(GaussianBlur::timm()),
            }));
        }
        Ok(secondary)
    }

    /// timm's eval transform: `crop_border_pixels` cut from the edges, then the `crop_mode`
    /// resize to `floor(img_size / crop_pct)` and crop to `img_size` (the `border` mode pads with
    /// the mean colour, timm's `round(255 * mean)`).
    pub fn eval_pipeline(&self) -> Result<Pipeline> {
        let mode: EvalCropMode = self.crop_mode.parse()?;
        let (mean, _) = self.mean_std();
        Ok(crate::augment::eval(
            self.img_size,
            self.crop_pct.unwrap_or(DEFAULT_CROP_PCT),
            mode,
            self.crop_border_pixels.unwrap_or(0),
            self.eval_interp()?,
            mean.iter().map(|&m| border_fill(m)).collect(),
        ))
    }

    /// RandomErasing for the normalized train batch, if `reprob` > 0.
    pub fn random_erasing(&self) -> Result<Option<RandomErasing>> {
        if self.mix.reprob <= 0.0 {
            return Ok(None);
        }
        let num_splits = if self.mix.resplit {
            self.aug_splits.max(2)
        } else {
            0
        };
        let mode: EraseMode = self.mix.remode.parse()?;
        Ok(Some(RandomErasing {
            probability: self.mix.reprob,
            mode,
            max_count: self.mix.recount,
            num_splits,
        }))
    }

    /// Mixup/CutMix if [`super::MixConfig::mixup_active`].
    pub fn mixup_fn(&self, num_classes: usize) -> Result<Option<Mixup>> {
        if !self.mix.mixup_active() {
            return Ok(None);
        }
        Ok(Some(Mixup {
            mixup_alpha: self.mix.mixup,
            cutmix_alpha: self.mix.cutmix,
            cutmix_minmax: self.mix.cutmix_minmax.as_deref().map(pair),
            prob: self.mix.mixup_prob,
            switch_prob: self.mix.mixup_switch_prob,
            mode: self.mix.mixup_mode.parse::<MixupMode>()?,
            label_smoothing: self.mix.smoothing,
            num_classes,
            off_epoch: self.mix.mixup_off_epoch,
        }))
    }

    /// The training loader for `rank` of `world`: shuffled, drop_last, RepeatAug sampler if
    /// `aug_repeats`; timm's train pipeline, or the small-image one with `small_images`. With
    /// `train_img_sizes`, batches follow the size schedule (see [`DataConfig::size_schedule`]),
    /// each size with that pipeline built at its size.
    pub fn train_loader(
        &self,
        dataset: Arc<dyn Dataset>,
        rank: usize,
        world: usize,
    ) -> Result<Loader> {
        if let Some(schedule) = self.size_schedule()? {
            return self.scheduled_train_loader(schedule, dataset, rank, world);
        }
        if self.small_images {
            return self.small_image_train_loader(dataset, rank, world);
        }
        let sampler = self.train_sampler(dataset.len(), rank, world);
        let opts = self.loader_options(rank, self.batch_size, true);
        Loader::new(dataset, self.train_pipeline()?, sampler, opts)
    }

    /// The training loader over `source`: [`DataConfig::train_loader`] for a random-access
    /// dataset, [`DataConfig::streamed_train_loader`] for webdataset shards.
    pub fn train_loader_for(&self, source: Source, rank: usize, world: usize) -> Result<Loader> {
        match source {
            Source::Indexed(d) => self.train_loader(d, rank, world),
            Source::Streamed(w) => self.streamed_train_loader(w, rank, world),
        }
    }

    /// The training loader of webdataset shards, streamed as timm streams them (its shards split
    /// over ranks and `workers` loader workers, shuffled by `seed` and the epoch), through the
    /// train pipeline (the small-image one with `small_images`). timm's iterable datasets take
    /// no sampler, so `aug_repeats` and scheduled sizes are refused.
    pub fn streamed_train_loader(
        &self,
        dataset: Arc<WdsDataset>,
        rank: usize,
        world: usize,
    ) -> Result<Loader> {
        if self.aug.repeats() > 0 {
            return Err(Error::config(
                "aug_repeats",
                self.aug.aug_repeats.to_string(),
                "0: repeated augmentation needs a sampler, which a streamed (wds/) dataset has not (timm asserts the same)",
            ));
        }
        if self.size_schedule()?.is_some() {
            return Err(Error::config(
                "train_img_sizes",
                "a schedule",
                "one size: scheduled sizes batch through a sampler, which a streamed (wds/) dataset has not",
            ));
        }
        let pipeline = match self.small_images {
            true => {
                self.check_small_image_crop()?;
                self.small_image_pipeline()?
            }
            false => self.train_pipeline()?,
        };
        let opts = self.loader_options(rank, self.batch_size, true);
        Loader::streamed(dataset, pipeline, world, opts)
    }

    /// The scheduled-resolution settings, checked (None without `train_img_sizes`).
    pub fn size_schedule(&self) -> Result<Option<SizeSchedule>> {
        SizeSchedule::from_config(self, self.sizes.train_size_schedule_epochs)
    }

    /// The train pipeline at `size` (timm builds one train transform per scheduled size).
    fn train_pipeline_at(&self, size: usize) -> Result<Pipeline> {
        let at = DataConfig {
            img_size: size,
            ..self.clone()
        };
        match self.small_images {
            true => at.small_image_pipeline(),
            false => at.train_pipeline(),
        }
    }

    /// timm's `create_loader` with `input_size_choices`: the shuffled train sampler under a
    /// [`BatchPlan`] seeded by `seed` (as train.py passes `--seed`), one pipeline per size.
    fn scheduled_train_loader(
        &self,
        schedule: SizeSchedule,
        dataset: Arc<dyn Dataset>,
        rank: usize,
        world: usize,
    ) -> Result<Loader> {
        if self.small_images {
            self.check_small_image_crop()?;
        }
        let pipelines = (schedule.sizes.iter())
            .map(|&s| self.train_pipeline_at(s))
            .collect::<Result<Vec<_>>>()?;
        let sampler = self.train_sampler(dataset.len(), rank, world);
        let plan = BatchPlan::new(schedule, sampler.indices(0).len(), self.seed)?;
        let opts = self.loader_options(rank, self.batch_size, true);
        Loader::scheduled(dataset, pipelines, sampler, plan, opts)
    }

    /// The shuffled sampler of `rank`'s shard: RepeatAug's when `aug_repeats`, else torch's
    /// DistributedSampler.
    fn train_sampler(&self, len: usize, rank: usize, world: usize) -> Box<dyn Sampler> {
        let seed = self.seed;
        if self.aug.repeats() > 0 {
            Box::new(RepeatAugSampler {
                len,
                rank,
                world,
                shuffle: true,
                seed,
                num_repeats: self.aug.repeats(),
                selected_round: 256,
                selected_ratio: 0,
            })
        } else {
            Box::new(DistributedSampler {
                len,
                rank,
                world,
                shuffle: true,
                seed,
            })
        }
    }

    /// A train loader at native size for small fixed-size images (IDX digits and clothes):
    /// pad-and-crop by an eighth plus flip, since timm's pipeline assumes large photos; with
    /// `aug_splits` > 1, augmented views add the colour steps (policy or jitter, grayscale, blur)
    /// to the clean one; `no_aug` keeps the images as they are. Rank `rank` of `world` reads its
    /// shard.
    fn small_image_train_loader(
        &self,
        dataset: Arc<dyn Dataset>,
        rank: usize,
        world: usize,
    ) -> Result<Loader> {
        self.check_small_image_crop()?;
        let sampler = self.train_sampler(dataset.len(), rank, world);
        Loader::new(
            dataset,
            self.small_image_pipeline()?,
            sampler,
            self.loader_options(rank, self.batch_size, true),
        )
    }

    /// The small-image train pipeline at `img_size`: pad-and-crop by an eighth plus flip (none
    /// of it with `no_aug`), augmented views adding the colour steps.
    fn small_image_pipeline(&self) -> Result<Pipeline> {
        let size = self.img_size;
        let mut pipeline = match self.aug.no_aug {
            true => crate::augment::small_train(size, 0, 0.0),
            false => crate::augment::small_train(size, size / 8, self.aug.hflip),
        };
        if self.aug_splits > 1 {
            // The clean view is the pad-and-crop one; the others add the policy or jitter.
            pipeline.secondary = self.secondary(self.train_interp()?)?;
            pipeline.splits = self.aug_splits;
        }
        Ok(pipeline)
    }

    /// The eval loader over `source`: [`DataConfig::eval_loader`] for a random-access dataset; for
    /// webdataset shards, each loader worker's shards in order (timm's evaluation stream, of a
    /// fixed length per worker when distributed, read by at most 2 workers then, as train.py
    /// does), keeping last batches.
    pub fn eval_loader_for(
        &self,
        source: Source,
        batch_size: usize,
        rank: usize,
        world: usize,
    ) -> Result<Loader> {
        match source {
            Source::Indexed(d) => self.eval_loader(d, batch_size, rank, world),
            Source::Streamed(w) => {
                let mut opts = self.loader_options(rank, batch_size, false);
                if world > 1 {
                    // timm's train.py evaluates distributed wds/ data with at most 2 workers.
                    opts.workers = opts.workers.min(2);
                }
                Loader::streamed(w, self.eval_pipeline()?, world, opts)
            }
        }
    }

    /// The eval loader: sequential (padded across ranks as torch's DistributedSampler), keeps the last batch.
    pub fn eval_loader(
        &self,
        dataset: Arc<dyn Dataset>,
        batch_size: usize,
        rank: usize,
        world: usize,
    ) -> Result<Loader> {
        let sampler = Box::new(DistributedSampler {
            len: dataset.len(),
            rank,
            world,
            shuffle: false,
            seed: self.seed,
        });
        Loader::new(
            dataset,
            self.eval_pipeline()?,
            sampler,
            self.loader_options(rank, batch_size, false),
        )
    }

    /// Small images take kiln's pad-and-crop, so a timm crop mode other than `rrc` (the one that
    /// pad-and-crop stands in for) is an error rather than ignored.
    fn check_small_image_crop(&self) -> Result<()> {
        match self.aug.crop_mode().parse()? {
            TrainCropMode::Rrc => Ok(()),
            _ => Err(Error::config(
                "train_crop_mode",
                self.aug.crop_mode(),
                "rrc: small images (IDX data) train with pad-and-crop at their native size",
            )),
        }
    }

    fn loader_options(&self, rank: usize, batch_size: usize, drop_last: bool) -> LoaderOptions {
        let shape = (self.img_size, self.img_size, self.in_chans);
        LoaderOptions {
            batch_size,
            workers: self.workers,
            drop_last,
            prefetch: 0,
            seed: self.seed,
            rank,
            shape,
        }
    }

    /// Checks settings that would otherwise fail later.
    pub fn validate(&self) -> Result<()> {
        if ![1, 3].contains(&self.in_chans) {
            return Err(Error::config(
                "in_chans",
                self.in_chans.to_string(),
                "1 or 3",
            ));
        }
        self.train_pipeline()?;
        if self.small_images {
            self.check_small_image_crop()?;
        }
        self.eval_pipeline()?;
        self.random_erasing()?;
        self.mixup_fn(2)?;
        // The trainer builder supplies a progressive schedule's epochs when they are unset.
        let epochs = self.sizes.train_size_schedule_epochs.unwrap_or(1);
        SizeSchedule::from_config(self, Some(epochs))?;
        Ok(())
    }
}

/// timm's `border` padding level of a channel, `round(255 * mean)` in Python's float64 with ties
/// to even, of the decimal the f32 `mean` was written as (its shortest form: 0.3, not
/// 0.30000001, whose 255-fold rounds the other way).
fn border_fill(mean: f32) -> u8 {
    let decimal: f64 = mean.to_string().parse().unwrap_or(f64::from(mean));
    (255.0 * decimal).round_ties_even().clamp(0.0, 255.0) as u8
}
