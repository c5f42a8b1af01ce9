//! Data at scale (issue 63, item 4), on one core: listing an ImageFolder the size of ImageNet-1k's
//! train split (1,281,167 empty files in 1,000 class folders), opening 1,000 webdataset shards and
//! reading every member header, and the loader's img/s on the same JPEGs at 224² read from an
//! ImageFolder and from shards. Each step prints its time and the growth of resident memory
//! (VmRSS), so memory per file or per shard shows.
//!
//! `cargo bench --bench data_scale`. The trees are made once under `KILN_SCALE_DIR` (default
//! `.cache/scale`); `KILN_SCALE_FILES` sets the file count; the JPEGs are benches/data.rs's
//! (`KILN_BENCH_IMAGES`, from `scripts/bench/make-images.py`).
mod common;

use common::rrc224_flip;
use kiln::train::data::wds::{read_shard, WdsDataset, WdsOptions};
use kiln::train::data::{Dataset, ImageFolder};
use kiln::train::loader::{DistributedSampler, Loader, LoaderOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// ImageNet-1k's train split.
const IMAGENET_TRAIN_FILES: usize = 1_281_167;
const CLASSES: usize = 1000;
const SHARDS: usize = 1000;
/// Samples in each of the 1,000 shards (tiny members).
const SAMPLES_PER_SHARD: usize = 64;
/// Epochs over the JPEGs per timed pass, and passes per source (alternating).
const EPOCHS_PER_PASS: usize = 4;
const PASSES: usize = 3;

fn env_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// Resident memory in bytes (VmRSS of /proc/self/status).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    kib.unwrap_or(0) * 1024
}

/// `files` empty `.jpg` files spread over CLASSES folders under `root/train` (made once).
fn file_tree(root: &Path, files: usize) -> std::io::Result<PathBuf> {
    let train = root.join(format!("folder-{files}/train"));
    let done = root.join(format!("folder-{files}/.complete"));
    if done.is_file() {
        return Ok(train);
    }
    let t = Instant::now();
    for c in 0..CLASSES {
        let dir = train.join(format!("n{c:08}"));
        std::fs::create_dir_all(&dir)?;
        for i in (c..files).step_by(CLASSES) {
            std::fs::File::create(dir.join(format!("n{c:08}_{i}.JPEG")))?;
        }
    }
    std::fs::write(done, b"")?;
    println!(
        "made {files} empty files in {CLASSES} folders in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(train)
}

/// Appends a tar member `name` holding `data` (ustar, as webdataset's writers make them).
fn member(tar: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, name, data)
}

/// Writes `samples` (image bytes, extension, label) as shards of `per_shard` samples and the
/// `_info.json` of their one split `train`, under `dir`.
fn write_shards(
    dir: &Path,
    samples: &[(Vec<u8>, &str, usize)],
    per_shard: usize,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let (mut names, mut lengths) = (Vec::new(), Vec::new());
    for (k, chunk) in samples.chunks(per_shard).enumerate() {
        let mut tar = tar::Builder::new(Vec::new());
        for (i, (bytes, ext, label)) in chunk.iter().enumerate() {
            let key = format!("s{k:06}_{i:06}");
            member(&mut tar, &format!("{key}.{ext}"), bytes)?;
            member(
                &mut tar,
                &format!("{key}.cls"),
                label.to_string().as_bytes(),
            )?;
        }
        let name = format!("train-{k:06}.tar");
        std::fs::write(dir.join(&name), tar.into_inner()?)?;
        names.push(name);
        lengths.push(chunk.len());
    }
    let info = serde_json::json!({
        "name": "scale",
        "splits": {"train": {
            "name": "train",
            "num_samples": samples.len(),
            "filenames": names,
            "shard_lengths": lengths,
        }},
    });
    std::fs::write(dir.join("_info.json"), info.to_string())
}

fn listing(root: &Path) {
    let files = std::env::var("KILN_SCALE_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(IMAGENET_TRAIN_FILES);
    let train = file_tree(root, files).expect("the file tree");
    let before = rss();
    let t = Instant::now();
    let ds = ImageFolder::open(&train, None, 3).expect("listing");
    let secs = t.elapsed().as_secs_f64();
    let grown = rss().saturating_sub(before);
    println!(
        "ImageFolder listing: {} files, {} classes in {secs:.2} s; resident memory +{:.1} MiB \
         ({:.0} bytes a file)",
        ds.len(),
        ds.num_classes(),
        grown as f64 / (1 << 20) as f64,
        grown as f64 / ds.len() as f64
    );
}

fn shards(root: &Path) {
    let dir = root.join(format!("shards-{SHARDS}"));
    if !dir.join("_info.json").is_file() {
        let tiny: Vec<(Vec<u8>, &str, usize)> = (0..SHARDS * SAMPLES_PER_SHARD)
            .map(|i| (vec![0u8; 16], "jpg", i % CLASSES))
            .collect();
        write_shards(&dir, &tiny, SAMPLES_PER_SHARD).expect("the shards");
    }
    let before = rss();
    let t = Instant::now();
    let ds = WdsDataset::open(&dir, WdsOptions::new("train", true, 0, 3)).expect("open");
    let opened = t.elapsed().as_secs_f64();
    let mut samples = 0;
    for shard in ds.shards() {
        samples += read_shard(shard, ds.keys()).expect("a shard").len();
    }
    let secs = t.elapsed().as_secs_f64();
    let grown = rss().saturating_sub(before);
    println!(
        "webdataset: {} shards opened in {opened:.3} s, every member header read ({samples} \
         samples) in {secs:.2} s; resident memory +{:.1} MiB ({:.0} bytes a shard)",
        ds.shards().len(),
        grown as f64 / (1 << 20) as f64,
        grown as f64 / ds.shards().len() as f64
    );
}

fn options(n: usize) -> LoaderOptions {
    LoaderOptions {
        batch_size: 32.min(n),
        workers: 1,
        drop_last: false,
        prefetch: 2,
        seed: 0,
        rank: 0,
        shape: (224, 224, 3),
    }
}

/// img/s of `EPOCHS_PER_PASS` epochs of `loader` from `epoch`.
fn pass(loader: &mut Loader, epoch: usize) -> f64 {
    let t = Instant::now();
    let mut images = 0;
    for e in epoch..epoch + EPOCHS_PER_PASS {
        let mut batches = loader.epoch(e);
        while let Some(batch) = batches.next() {
            let batch = batch.expect("a batch");
            images += batch.n;
            batches.recycle(batch);
        }
    }
    images as f64 / t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn jpegs(root: &Path) {
    let images = env_path("KILN_BENCH_IMAGES", ".cache/bench-images");
    let Ok(folder) = ImageFolder::open(&images, None, 3) else {
        println!(
            "JPEG throughput skipped: no images in {} (scripts/bench/make-images.py)",
            images.display()
        );
        return;
    };
    let n = folder.len();
    let samples: Vec<(Vec<u8>, &str, usize)> = (0..n)
        .map(|i| {
            let path = folder.filename(i);
            (std::fs::read(path).expect("a JPEG"), "jpg", folder.label(i))
        })
        .collect();
    let dir = root.join("jpeg-shards");
    write_shards(&dir, &samples, 16).expect("the JPEG shards");
    let folder: Arc<dyn Dataset> = Arc::new(folder);
    let sampler = Box::new(DistributedSampler::single(n, true, 0));
    let mut from_folder =
        Loader::new(folder, rrc224_flip(None), sampler, options(n)).expect("loader");
    let wds = WdsDataset::open(&dir, WdsOptions::new("train", true, 0, 3)).expect("shards");
    let mut from_shards =
        Loader::streamed(Arc::new(wds), rrc224_flip(None), 1, options(n)).expect("loader");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for p in 0..PASSES {
        let epoch = 1 + p * EPOCHS_PER_PASS;
        a.push(pass(&mut from_folder, epoch));
        b.push(pass(&mut from_shards, epoch));
    }
    let (a, b) = (median(a), median(b));
    println!(
        "JPEG decode + RandomResizedCrop(224) + flip, one loader worker, {n} images x \
         {EPOCHS_PER_PASS} epochs, median of {PASSES} alternating passes: ImageFolder {a:.1} \
         img/s, shards {b:.1} img/s ({:.2}x)",
        b / a
    );
}

fn main() {
    // As the `kiln` command does at start.
    kiln::engine::cpu::heap::keep_freed_blocks();
    let root = env_path("KILN_SCALE_DIR", ".cache/scale");
    listing(&root);
    shards(&root);
    jpegs(&root);
}
