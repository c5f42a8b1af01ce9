//! Scheduled-resolution batching against timm 1.0's `ScheduledBatchSampler` (fixtures from
//! scripts/fixtures/make_sched_size_fixtures.py): each epoch's choice weights, the policy-average
//! batch size, the batches per epoch and, where one choice per epoch is possible, every batch;
//! the configs timm refuses are refused. kiln's own draws follow the weights (5-sigma binomial
//! bounds), and the loader yields each planned batch at its size, the same from any batch on
//! (resume) and for any worker count, cycling the samples when an epoch needs more.

use kiln_train::data::{Dataset, Image, Sample};
use kiln_train::loader::{
    Batch, BatchPlan, DataConfig, PlannedBatch, SizeSchedule, SizeScheduleConfig,
};
use serde::Deserialize;
use std::sync::Arc;

const FIXTURES: &str = include_str!("fixtures/sched_size/sched_size.json");

#[derive(Debug, Clone, Deserialize)]
struct Config {
    sizes: Vec<usize>,
    batch_size: usize,
    batch_sizes: Option<Vec<usize>>,
    probs: Option<Vec<f64>>,
    schedule: String,
    epochs: usize,
    spread: f64,
    random_mix: f64,
    num_batches: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    n: usize,
    config: Config,
    weights: Vec<Vec<f64>>,
    average_batch_size: f64,
    len: Option<usize>,
    /// Per epoch, each batch's (choice, batch size).
    epochs: Option<Vec<Vec<(usize, usize)>>>,
}

#[derive(Debug, Deserialize)]
struct Refused {
    name: String,
    n: usize,
    config: Config,
    error: String,
}

#[derive(Debug, Deserialize)]
struct Fixtures {
    seed: u64,
    cases: Vec<Case>,
    errors: Vec<Refused>,
}

fn fixtures() -> Fixtures {
    serde_json::from_str(FIXTURES).unwrap()
}

/// The data config train.py's flags make of `c`.
fn data_config(c: &Config) -> DataConfig {
    DataConfig {
        batch_size: c.batch_size,
        sizes: SizeScheduleConfig {
            train_img_sizes: Some(c.sizes.clone()),
            train_batch_sizes: c.batch_sizes.clone(),
            train_size_probs: c.probs.clone(),
            train_size_schedule: c.schedule.clone(),
            train_size_schedule_spread: c.spread,
            train_size_random_mix: c.random_mix,
            train_batches_per_epoch: c.num_batches,
            train_size_schedule_epochs: Some(c.epochs),
            ..SizeScheduleConfig::default()
        },
        ..DataConfig::default()
    }
}

fn schedule(c: &Config) -> SizeSchedule {
    data_config(c).size_schedule().unwrap().unwrap()
}

fn sorted(mut v: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    v.sort_unstable();
    v
}

fn pairs(batches: &[PlannedBatch]) -> Vec<(usize, usize)> {
    batches.iter().map(|b| (b.choice, b.size)).collect()
}

#[test]
fn weights_average_and_batches_per_epoch_are_timms() {
    let f = fixtures();
    for case in &f.cases {
        let s = schedule(&case.config);
        for (epoch, want) in case.weights.iter().enumerate() {
            let got = s.choice_weights_for_epoch(epoch);
            assert_eq!(got.len(), want.len(), "{}", case.name);
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (g - w).abs() <= 1e-12,
                    "{} epoch {epoch}: {got:?} vs timm {want:?}",
                    case.name
                );
            }
        }
        let avg = s.average_batch_size();
        assert!(
            (avg - case.average_batch_size).abs() <= 1e-12 * case.average_batch_size,
            "{}: average {avg} vs timm {}",
            case.name,
            case.average_batch_size
        );
        let plan = BatchPlan::new(s, case.n, f.seed).unwrap();
        if let Some(len) = case.len {
            assert_eq!(plan.len(), len, "{}", case.name);
        }
        for (epoch, want) in case.epochs.iter().flatten().enumerate() {
            let got = pairs(&plan.epoch(epoch));
            assert_eq!(
                sorted(got),
                sorted(want.clone()),
                "{} epoch {epoch}",
                case.name
            );
        }
    }
}

#[test]
fn configs_timm_refuses_are_refused_naming_the_flag() {
    let f = fixtures();
    for e in &f.errors {
        let got = data_config(&e.config)
            .size_schedule()
            .and_then(|s| BatchPlan::new(s.unwrap(), e.n, f.seed));
        let err = got.expect_err(&format!("{}: timm refuses it ({})", e.name, e.error));
        let text = err.to_string();
        assert!(text.starts_with("--"), "{}: {text}", e.name);
        assert!(!text.contains('\n'), "{}: {text}", e.name);
    }
}

/// Whether `count` of `n` draws is within 5 binomial sigmas of probability `p`.
fn within_5_sigma(count: usize, n: usize, p: f64) -> bool {
    let (mean, sd) = (n as f64 * p, (n as f64 * p * (1.0 - p)).sqrt());
    (count as f64 - mean).abs() <= 5.0 * sd.max(1e-9)
}

fn counts(batches: &[PlannedBatch], choices: usize) -> Vec<usize> {
    let mut c = vec![0; choices];
    batches.iter().for_each(|b| c[b.choice] += 1);
    c
}

#[test]
fn fixed_batch_draws_follow_each_epochs_weights() {
    let f = fixtures();
    for name in [
        "progressive_defaults",
        "progressive_wide_mix_probs",
        "constant_probs",
    ] {
        let case = f.cases.iter().find(|c| c.name == name).unwrap();
        let config = Config {
            num_batches: Some(20_000),
            ..case.config.clone()
        };
        let plan = BatchPlan::new(schedule(&config), case.n, f.seed).unwrap();
        for (epoch, weights) in case.weights.iter().enumerate() {
            let batches = plan.epoch(epoch);
            assert_eq!(batches.len(), 20_000);
            let c = counts(&batches, weights.len());
            for (k, &p) in weights.iter().enumerate() {
                assert!(
                    within_5_sigma(c[k], 20_000, p),
                    "{name} epoch {epoch}: {c:?} for {weights:?}"
                );
            }
        }
    }
}

#[test]
fn sample_budget_draws_follow_the_weights_and_fill_the_budget() {
    let f = fixtures();
    let case = (f.cases.iter())
        .find(|c| c.name == "constant_budget_batch_sizes")
        .unwrap();
    let n = 2_000_000;
    let s = schedule(&case.config);
    let (weights, sizes) = (s.weights.clone(), s.batch_sizes.clone());
    let plan = BatchPlan::new(s, n, f.seed).unwrap();
    let batches = plan.epoch(0);
    let used: usize = batches.iter().map(|b| b.size).sum();
    assert!(used <= n && n - used < *sizes.iter().min().unwrap());
    let c = counts(&batches, weights.len());
    for (k, &p) in weights.iter().enumerate() {
        assert!(
            within_5_sigma(c[k], batches.len(), p),
            "{c:?} for {weights:?}"
        );
    }
    // One composition, shuffled anew each epoch.
    let next = plan.epoch(1);
    assert_ne!(pairs(&batches), pairs(&next));
    assert_eq!(sorted(pairs(&batches)), sorted(pairs(&next)));
    assert_eq!(
        pairs(&plan.epoch(1)),
        pairs(&next),
        "a pure function of the epoch"
    );
}

/// `n` 20×20 RGB images; sample i has label i, so a batch's targets name its samples.
#[derive(Debug)]
struct Numbered(usize);

impl Dataset for Numbered {
    fn len(&self) -> usize {
        self.0
    }
    fn label(&self, i: usize) -> usize {
        i
    }
    fn filename(&self, i: usize) -> String {
        format!("{i}")
    }
    fn load(&self, i: usize) -> kiln_train::Result<Sample> {
        let data = (0..20 * 20 * 3).map(|p| ((p * 7 + i * 13) % 251) as u8);
        Ok(Sample {
            image: Image::new(20, 20, 3, data.collect()),
            label: i,
            filename: self.filename(i),
        })
    }
    fn num_classes(&self) -> usize {
        self.0
    }
}

fn scheduled_config(workers: usize) -> DataConfig {
    DataConfig {
        workers,
        sizes: SizeScheduleConfig {
            train_img_sizes: Some(vec![16, 24, 32]),
            train_batch_sizes: Some(vec![12, 8, 6]),
            train_size_schedule: "progressive".into(),
            train_size_schedule_epochs: Some(3),
            // 14 batches of 6 to 12 samples need more than the 50 samples: the indices cycle.
            train_batches_per_epoch: Some(14),
            ..SizeScheduleConfig::default()
        },
        ..DataConfig::default()
    }
}

fn load(workers: usize, epoch: usize, from: usize) -> Vec<Batch> {
    let cfg = scheduled_config(workers);
    let mut loader = cfg.train_loader(Arc::new(Numbered(50)), 0, 1).unwrap();
    assert_eq!(loader.len(), 14);
    let batches = loader.epoch_from(epoch, from).map(Result::unwrap);
    batches.collect()
}

#[test]
fn the_loader_yields_each_planned_batch_at_its_size() {
    let cfg = scheduled_config(0);
    let plan = BatchPlan::new(cfg.size_schedule().unwrap().unwrap(), 50, cfg.seed).unwrap();
    for epoch in [0, 2] {
        let batches = load(2, epoch, 0);
        let planned = plan.epoch(epoch);
        assert_eq!(batches.len(), planned.len());
        let mut seen = Vec::new();
        for (b, p) in batches.iter().zip(&planned) {
            let side = [16, 24, 32][p.choice];
            assert_eq!((b.n, b.h, b.w, b.c), (p.size, side, side, 3));
            assert_eq!(b.images.len(), p.size * side * side * 3);
            seen.extend_from_slice(&b.targets);
        }
        // The sampler's order for the epoch, repeated: every sample before any twice.
        assert!(seen.len() > 50);
        let mut first: Vec<usize> = seen[..50].to_vec();
        first.sort_unstable();
        assert_eq!(first, (0..50).collect::<Vec<_>>());
        assert_eq!(seen[50..], seen[..seen.len() - 50]);
        // Resumed from batch 5 and with another worker count: the same batches.
        let tail = load(0, epoch, 5);
        assert_eq!(tail.len(), batches.len() - 5);
        for (x, y) in batches[5..].iter().zip(&tail) {
            assert_eq!(
                (x.index, &x.targets, &x.images),
                (y.index, &y.targets, &y.images)
            );
        }
    }
}
