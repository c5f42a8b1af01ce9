//! timm's RandomErasing on a normalized f32 batch: `reprob`, `remode` (const, rand, pixel), `recount`,
//! and no erasing on the clean split when the batch holds aug splits.
use super::{uniform, AugRng, Dims};
use crate::{Error, Result};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// What fills an erased box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EraseMode {
    /// Zeros (the mean, after normalization).
    Const,
    /// One normal draw per channel.
    Rand,
    /// One normal draw per element.
    Pixel,
}

impl std::str::FromStr for EraseMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_lowercase().as_str() {
            "" | "const" => Ok(EraseMode::Const),
            "rand" => Ok(EraseMode::Rand),
            "pixel" => Ok(EraseMode::Pixel),
            _ => Err(Error::config("remode", s, "const, rand or pixel")),
        }
    }
}

/// timm's `RandomErasing(probability, mode, max_count, num_splits)` with its default area (0.02..1/3)
/// and aspect (0.3..1/0.3) ranges.
#[derive(Debug, Clone)]
pub struct RandomErasing {
    /// Probability of erasing an image.
    pub probability: f64,
    /// Fill mode.
    pub mode: EraseMode,
    /// Boxes per erased image: 1..=max_count, drawn uniformly.
    pub max_count: usize,
    /// With > 1, the first `n / num_splits` images (the clean split) are left alone.
    pub num_splits: usize,
}

impl RandomErasing {
    /// Erases images of `x` (shape `d`) in place.
    pub fn apply(&self, x: &mut [f32], d: Dims, rng: &mut AugRng) {
        let start = if self.num_splits > 1 {
            d.n / self.num_splits
        } else {
            0
        };
        for i in start..d.n {
            self.erase(x, d, i, rng);
        }
    }

    fn erase(&self, x: &mut [f32], d: Dims, i: usize, rng: &mut AugRng) {
        if rng.gen::<f64>() > self.probability {
            return;
        }
        let area = (d.h * d.w) as f64;
        let count = if self.max_count <= 1 {
            1
        } else {
            rng.gen_range(1..=self.max_count)
        };
        let log_ratio = (0.3f64.ln(), (1.0f64 / 0.3).ln());
        for _ in 0..count {
            for _ in 0..10 {
                let target = uniform(rng, 0.02, 1.0 / 3.0) * area / count as f64;
                let aspect = uniform(rng, log_ratio.0, log_ratio.1).exp();
                let h = (target * aspect).sqrt().round_ties_even() as usize;
                let w = (target / aspect).sqrt().round_ties_even() as usize;
                if w < d.w && h < d.h {
                    let (top, left) = (rng.gen_range(0..=d.h - h), rng.gen_range(0..=d.w - w));
                    self.fill(x, d, i, (top, h, left, w), rng);
                    break;
                }
            }
        }
    }

    fn fill(
        &self,
        x: &mut [f32],
        d: Dims,
        i: usize,
        (top, h, left, w): (usize, usize, usize, usize),
        rng: &mut AugRng,
    ) {
        for ch in 0..d.c {
            let per_chan: f32 = if self.mode == EraseMode::Rand {
                StandardNormal.sample(rng)
            } else {
                0.0
            };
            for y in top..top + h {
                for xx in left..left + w {
                    x[d.at(i, ch, y, xx)] = match self.mode {
                        EraseMode::Pixel => StandardNormal.sample(rng),
                        _ => per_chan,
                    };
                }
            }
        }
    }
}
