//! Samplers: which dataset indices a rank reads in an epoch (torch's DistributedSampler, timm's RepeatAugSampler).
use crate::augment::derive_rng;
use rand::seq::SliceRandom;

/// The ordered dataset indices one rank reads in an epoch.
pub trait Sampler: Send + Sync + std::fmt::Debug {
    /// Indices for `epoch` (the same epoch always gives the same list).
    fn indices(&self, epoch: usize) -> Vec<usize>;
}

/// torch's DistributedSampler: an optional seeded shuffle per epoch, padded by repeating the start
/// so every rank gets `ceil(len / world)` samples, then every `world`-th index from `rank`.
/// With `world = 1` it is the plain (shuffled or sequential) sampler.
#[derive(Debug, Clone)]
pub struct DistributedSampler {
    /// Dataset length.
    pub len: usize,
    /// This process's rank.
    pub rank: usize,
    /// Number of processes.
    pub world: usize,
    /// Shuffle each epoch.
    pub shuffle: bool,
    /// Base seed; the shuffle of epoch e is seeded by (seed, e), as `set_epoch` does in torch.
    pub seed: u64,
}

impl DistributedSampler {
    /// A single-process sampler over `len` samples.
    pub fn single(len: usize, shuffle: bool, seed: u64) -> Self {
        DistributedSampler {
            len,
            rank: 0,
            world: 1,
            shuffle,
            seed,
        }
    }
}

/// 0..len, shuffled by (seed, epoch) if asked.
fn epoch_order(len: usize, shuffle: bool, seed: u64, epoch: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..len).collect();
    if shuffle {
        idx.shuffle(&mut derive_rng(&[seed, epoch as u64, 0x5A3F]));
    }
    idx
}

/// Pads `idx` to `total` by repeating it from the start, then keeps every `world`-th from `rank`.
fn pad_and_stride(mut idx: Vec<usize>, total: usize, rank: usize, world: usize) -> Vec<usize> {
    let base = idx.clone();
    while idx.len() < total && !base.is_empty() {
        let need = (total - idx.len()).min(base.len());
        idx.extend_from_slice(&base[..need]);
    }
    idx.truncate(total);
    idx.into_iter().skip(rank).step_by(world).collect()
}

impl Sampler for DistributedSampler {
    fn indices(&self, epoch: usize) -> Vec<usize> {
        let idx = epoch_order(self.len, self.shuffle, self.seed, epoch);
        let total = self.len.div_ceil(self.world) * self.world;
        pad_and_stride(idx, total, self.rank, self.world)
    }
}

/// timm's RepeatAugSampler: each index repeated `num_repeats` times in a row (so the repeats land on
/// different ranks), padded and strided like DistributedSampler, then cut to the selected count
/// (`floor(len / 256) * 256 / world` with timm's defaults).
#[derive(Debug, Clone)]
pub struct RepeatAugSampler {
    /// Dataset length.
    pub len: usize,
    /// This process's rank.
    pub rank: usize,
    /// Number of processes.
    pub world: usize,
    /// Shuffle each epoch.
    pub shuffle: bool,
    /// Base seed.
    pub seed: u64,
    /// Repeats per sample (timm default 3).
    pub num_repeats: usize,
    /// Round the selected count down to a multiple of this (timm default 256; 0: no rounding).
    pub selected_round: usize,
    /// Divide the selected count by this (0: by `world`, timm's default).
    pub selected_ratio: usize,
}

impl RepeatAugSampler {
    /// The number of indices each rank yields per epoch.
    pub fn num_selected(&self) -> usize {
        let ratio = if self.selected_ratio == 0 {
            self.world
        } else {
            self.selected_ratio
        } as f64;
        match self.len.checked_div(self.selected_round) {
            Some(rounds) => ((rounds * self.selected_round) as f64 / ratio).floor() as usize,
            None => (self.len as f64 / ratio).ceil() as usize,
        }
    }
}

impl Sampler for RepeatAugSampler {
    fn indices(&self, epoch: usize) -> Vec<usize> {
        let idx = epoch_order(self.len, self.shuffle, self.seed, epoch);
        let repeated: Vec<usize> = idx
            .iter()
            .flat_map(|&i| std::iter::repeat_n(i, self.num_repeats))
            .collect();
        let total = (self.len * self.num_repeats).div_ceil(self.world) * self.world;
        let mut mine = pad_and_stride(repeated, total, self.rank, self.world);
        mine.truncate(self.num_selected());
        mine
    }
}
