//! `BatchPlan`: the random half of timm's `ScheduledBatchSampler`: each epoch's list of
//! (size choice, batch size) batches, a pure function of (seed, epoch). Sample-budget mode draws
//! one composition filling the sampler's samples once (from the seed) and shuffles it per epoch;
//! fixed-batch mode draws its batches per epoch from that epoch's choice weights. The draws use
//! kiln's generator: torch's `multinomial` on the CPU samples through MKL and cannot be mirrored.
use super::size_schedule::{no_batch_fits, SizeSchedule};
use crate::augment::{derive_rng, AugRng};
use crate::Result;
use rand::seq::SliceRandom;
use rand::Rng;

/// Stream tags, so the plan's draws share no stream with the sampler's or the transforms'.
const BUDGET_TAG: u64 = 0x5C4E_D01E;
const FIXED_TAG: u64 = 0x5C4E_D02F;
const ORDER_TAG: u64 = 0x5C4E_D03A;

/// One planned batch: which size choice and how many samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedBatch {
    /// Index into the schedule's sizes.
    pub choice: usize,
    /// Samples in the batch.
    pub size: usize,
}

/// The batches of every epoch of a scheduled-resolution loader.
#[derive(Debug, Clone)]
pub struct BatchPlan {
    schedule: SizeSchedule,
    seed: u64,
    /// Fixed-batch mode's batches per epoch, or sample-budget mode's composition (unshuffled).
    mode: Mode,
}

#[derive(Debug, Clone)]
enum Mode {
    Fixed(usize),
    Budget(Vec<PlannedBatch>),
}

impl BatchPlan {
    /// The plan over a sampler of `samples` indices per epoch, its draws seeded by `seed`.
    pub fn new(schedule: SizeSchedule, samples: usize, seed: u64) -> Result<BatchPlan> {
        if samples == 0 {
            return Err(no_batch_fits());
        }
        let mode = match schedule.fixed_batches(samples)? {
            Some(n) => Mode::Fixed(n),
            None => Mode::Budget(budget(&schedule, samples, seed)?),
        };
        Ok(BatchPlan {
            schedule,
            seed,
            mode,
        })
    }

    /// The schedule the plan draws from.
    pub fn schedule(&self) -> &SizeSchedule {
        &self.schedule
    }

    /// Batches per epoch (the same every epoch).
    pub fn len(&self) -> usize {
        match &self.mode {
            Mode::Fixed(n) => *n,
            Mode::Budget(b) => b.len(),
        }
    }

    /// Whether an epoch has no batch (never: construction refuses such a plan).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the plan draws a fixed count of batches per epoch (cycling the sampler's indices
    /// when they need more samples than it yields), rather than spending a sample budget.
    pub fn is_fixed(&self) -> bool {
        matches!(self.mode, Mode::Fixed(_))
    }

    /// The batches of `epoch`, in the order they are loaded.
    pub fn epoch(&self, epoch: usize) -> Vec<PlannedBatch> {
        let mut batches = match &self.mode {
            Mode::Budget(b) => b.clone(),
            Mode::Fixed(n) => {
                let weights = self.schedule.choice_weights_for_epoch(epoch);
                let all: Vec<usize> = (0..weights.len()).collect();
                let mut rng = derive_rng(&[self.seed, epoch as u64, FIXED_TAG]);
                (0..*n)
                    .map(|_| self.planned(draw(&weights, &all, &mut rng)))
                    .collect()
            }
        };
        batches.shuffle(&mut derive_rng(&[self.seed, epoch as u64, ORDER_TAG]));
        batches
    }

    fn planned(&self, choice: usize) -> PlannedBatch {
        PlannedBatch {
            choice,
            size: self.schedule.batch_sizes[choice],
        }
    }
}

/// timm's `_create_sample_budget_schedule` (training's drop_last): choices drawn by the base
/// weights among those whose batch still fits the samples left, until none fits.
fn budget(s: &SizeSchedule, samples: usize, seed: u64) -> Result<Vec<PlannedBatch>> {
    let active = s.active();
    let mut rng = derive_rng(&[seed, BUDGET_TAG]);
    let mut remaining = samples;
    let mut plan = Vec::new();
    loop {
        let fits: Vec<usize> = (active.iter().copied())
            .filter(|&c| s.batch_sizes[c] <= remaining)
            .collect();
        if fits.is_empty() {
            break;
        }
        let choice = draw(&s.weights, &fits, &mut rng);
        remaining -= s.batch_sizes[choice];
        plan.push(PlannedBatch {
            choice,
            size: s.batch_sizes[choice],
        });
    }
    if plan.is_empty() {
        return Err(no_batch_fits());
    }
    Ok(plan)
}

/// One choice of `among` drawn with probability proportional to its weight (`among` holds at
/// least one positive weight).
fn draw(weights: &[f64], among: &[usize], rng: &mut AugRng) -> usize {
    let total: f64 = among.iter().map(|&c| weights[c]).sum();
    let u = rng.gen::<f64>() * total;
    let mut cumulative = 0.0;
    let mut last = among[0];
    for &c in among.iter().filter(|&&c| weights[c] > 0.0) {
        cumulative += weights[c];
        last = c;
        if u < cumulative {
            return c;
        }
    }
    last
}
