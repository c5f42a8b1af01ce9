//! Data pipeline throughput on one core: JPEG decode + RandomResizedCrop(224) + hflip + normalize,
//! then the same with RandAugment `rand-m9-mstd0.5`. Images: `scripts/bench/make-images.py`
//! (`.cache/bench-images/`, or `KILN_BENCH_IMAGES`); torchvision's figure: `scripts/bench/torchvision-loader.py`.
mod common;

use common::rrc224_flip as pipeline;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kiln::train::data::{Dataset, ImageFolder};
use kiln::train::loader::{
    DistributedSampler, Layout, Loader, LoaderOptions, Normalize, IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
};
use std::path::PathBuf;
use std::sync::Arc;

fn images_dir() -> PathBuf {
    std::env::var_os("KILN_BENCH_IMAGES")
        .map_or_else(|| PathBuf::from(".cache/bench-images"), PathBuf::from)
}

fn bench_pipeline(c: &mut Criterion, name: &str, aa: Option<&str>, ds: &Arc<ImageFolder>) {
    let n = ds.len();
    let sampler = Box::new(DistributedSampler::single(n, true, 0));
    let opts = LoaderOptions {
        batch_size: n,
        workers: 0,
        drop_last: false,
        prefetch: 1,
        seed: 0,
        rank: 0,
        shape: (224, 224, 3),
    };
    let mut loader = Loader::new(ds.clone(), pipeline(aa), sampler, opts).expect("loader");
    let norm = Normalize::new(&IMAGENET_DEFAULT_MEAN, &IMAGENET_DEFAULT_STD, Layout::Nchw);
    let mut out = vec![0f32; n * 224 * 224 * 3];
    let mut group = c.benchmark_group("data");
    group
        .throughput(Throughput::Elements(n as u64))
        .sample_size(10);
    let mut epoch = 0;
    group.bench_function(name, |b| {
        b.iter(|| {
            epoch += 1;
            let mut batches = loader.epoch(epoch);
            while let Some(batch) = batches.next() {
                let batch = batch.expect("batch");
                norm.apply_into(&batch, &mut out[..batch.images.len()]);
                batches.recycle(batch);
            }
        })
    });
    group.finish();
}

fn data(c: &mut Criterion) {
    // As the `kiln` command does at start.
    kiln::engine::cpu::heap::keep_freed_blocks();
    let dir = images_dir();
    let Ok(ds) = ImageFolder::open(&dir, None, 3) else {
        eprintln!(
            "skipping the data bench: no images in {} (run scripts/bench/make-images.py)",
            dir.display()
        );
        return;
    };
    let ds = Arc::new(ds);
    bench_pipeline(c, "decode_rrc224_flip_normalize", None, &ds);
    bench_pipeline(
        c,
        "decode_rrc224_flip_randaug_m9_mstd0.5_normalize",
        Some("rand-m9-mstd0.5"),
        &ds,
    );
}

criterion_group!(benches, data);
criterion_main!(benches);
