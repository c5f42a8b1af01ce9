//! The loader gives the same batches for a seed whatever the worker count; samplers and drop_last.
use kiln_train::augment::small_train;
use kiln_train::data::{Dataset, IdxDataset};
use kiln_train::loader::{
    Batch, DistributedSampler, Loader, LoaderOptions, RepeatAugSampler, Sampler,
};
use std::path::Path;
use std::sync::Arc;

fn fashion() -> Arc<dyn Dataset> {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/fashion-mnist"
    ));
    Arc::new(IdxDataset::open(dir, "t10k", 1).unwrap())
}

/// A rank-0 loader of the shuffled Fashion-MNIST test split through `small_train` at 28×28, its
/// sampler and its augmentation both seeded with `seed`.
fn shuffled_loader(
    batch_size: usize,
    workers: usize,
    prefetch: usize,
    drop_last: bool,
    seed: u64,
) -> Loader {
    let ds = fashion();
    let sampler = Box::new(DistributedSampler::single(ds.len(), true, seed));
    let opts = LoaderOptions {
        batch_size,
        workers,
        drop_last,
        prefetch,
        seed,
        rank: 0,
        shape: (28, 28, 1),
    };
    Loader::new(ds, small_train(28, 4, 0.5), sampler, opts).unwrap()
}

fn run_epoch(workers: usize, seed: u64, epoch: usize, drop_last: bool) -> Vec<Batch> {
    let mut loader = shuffled_loader(96, workers, 0, drop_last, seed);
    let out: Vec<Batch> = loader.epoch(epoch).map(Result::unwrap).collect();
    assert_eq!(out.len(), loader.len());
    out
}

fn same(a: &[Batch], b: &[Batch]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.images == y.images && x.targets == y.targets)
}

#[test]
fn same_seed_same_batches_any_worker_count() {
    let base = run_epoch(0, 7, 3, false);
    for workers in [1, 2, 3] {
        assert!(
            same(&base, &run_epoch(workers, 7, 3, false)),
            "{workers} workers differ"
        );
    }
}

#[test]
fn epoch_and_seed_change_batches() {
    let base = run_epoch(2, 7, 3, false);
    assert!(!same(&base, &run_epoch(2, 7, 4, false)));
    assert!(!same(&base, &run_epoch(2, 8, 3, false)));
}

#[test]
fn drop_last_drops_the_partial_batch() {
    let keep = run_epoch(2, 1, 0, false);
    let drop = run_epoch(2, 1, 0, true);
    assert_eq!(keep.len(), 2000usize.div_ceil(96));
    assert_eq!(keep.last().unwrap().n, 2000 % 96);
    assert_eq!(drop.len(), 2000 / 96);
    assert!(drop
        .iter()
        .all(|b| b.n == 96 && b.images.len() == 96 * 28 * 28));
}

#[test]
fn persistent_workers_serve_many_epochs_and_abandoned_ones() {
    let mut loader = shuffled_loader(64, 2, 4, true, 0);
    let first: Vec<usize> = loader.epoch(0).take(3).map(|b| b.unwrap().index).collect();
    assert_eq!(first, [0, 1, 2]);
    let full: Vec<Batch> = loader.epoch(1).map(Result::unwrap).collect();
    assert_eq!(full.len(), 2000 / 64);
    assert!(full
        .iter()
        .enumerate()
        .all(|(i, b)| b.index == i && b.epoch == 1));
    assert!(same(&full, &run_epoch_64(1)));
}

fn run_epoch_64(epoch: usize) -> Vec<Batch> {
    let mut loader = shuffled_loader(64, 0, 0, true, 0);
    loader.epoch(epoch).map(Result::unwrap).collect()
}

#[test]
fn distributed_sampler_pads_and_partitions() {
    let ranks: Vec<Vec<usize>> = (0..3)
        .map(|rank| {
            DistributedSampler {
                len: 10,
                rank,
                world: 3,
                shuffle: true,
                seed: 5,
            }
            .indices(2)
        })
        .collect();
    assert!(ranks.iter().all(|r| r.len() == 4));
    let mut all: Vec<usize> = ranks.concat();
    all.sort();
    all.dedup();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    let again = DistributedSampler {
        len: 10,
        rank: 1,
        world: 3,
        shuffle: true,
        seed: 5,
    }
    .indices(2);
    assert_eq!(again, ranks[1]);
}

#[test]
fn repeat_aug_sampler_spreads_repeats_over_ranks() {
    let s = |rank| RepeatAugSampler {
        len: 1024,
        rank,
        world: 4,
        shuffle: true,
        seed: 0,
        num_repeats: 3,
        selected_round: 256,
        selected_ratio: 0,
    };
    assert_eq!(s(0).num_selected(), 256);
    let ranks: Vec<Vec<usize>> = (0..4).map(|r| s(r).indices(0)).collect();
    assert!(ranks.iter().all(|r| r.len() == 256));
    // consecutive triples of the repeated list go to consecutive ranks
    let full: Vec<usize> = (0..256)
        .flat_map(|k| (0..4).map(move |r| (r, k)))
        .map(|(r, k)| ranks[r][k])
        .collect();
    assert_eq!(full[0], full[1]);
    assert_eq!(full[1], full[2]);
}

#[test]
fn fashion_through_dataconfig_with_mixup_and_randaugment() {
    use kiln_train::augment::derive_rng;
    use kiln_train::loader::{AugConfig, DataConfig, Dims, Layout, MixConfig};
    let cfg = DataConfig {
        img_size: 28,
        in_chans: 1,
        batch_size: 256,
        workers: 2,
        aug: AugConfig::default().aa("rand-m9-mstd0.5-inc1"),
        mix: MixConfig::default().reprob(0.25).mixup(0.2).cutmix(1.0),
        ..DataConfig::default()
    };
    let ds = fashion();
    let mut loader = cfg.train_loader(ds.clone(), 0, 1).unwrap();
    let (norm, mixup, erase) = (
        cfg.normalize(Layout::Nchw),
        cfg.mixup_fn(10).unwrap().unwrap(),
        cfg.random_erasing().unwrap().unwrap(),
    );
    let mut n = 0;
    for batch in loader.epoch(0) {
        let b = batch.unwrap();
        let d = Dims {
            n: b.n,
            c: 1,
            h: 28,
            w: 28,
            layout: Layout::Nchw,
        };
        let mut x = norm.apply(&b);
        let mut rng = derive_rng(&[cfg.seed, 0, b.index as u64]);
        erase.apply(&mut x, d, &mut rng);
        let soft = mixup.apply(&mut x, d, &b.targets, 0, &mut rng);
        assert_eq!(soft.len(), b.n * 10);
        assert!(soft
            .chunks(10)
            .all(|r| (r.iter().sum::<f32>() - 1.0).abs() < 1e-5));
        n += b.n;
    }
    assert_eq!(n, 2000 / 256 * 256);
}
