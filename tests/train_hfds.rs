//! `kiln train --dataset hfds/NAME` end to end on a Hugging Face datasets cache written by the
//! `datasets` library (train/tests/fixtures/hfds/cache, `kiln-fixture/fmnist-e2e`: 160 train and
//! 64 validation images of the embedded Fashion-MNIST subset, made by
//! scripts/fixtures/make_hfds_fixtures.py): it learns as well as the same run on an ImageFolder
//! of the same images, counts the split's rows and the ClassLabel's classes, `kiln validate`
//! scores its checkpoint on the cached split as the run did, and a missing split or a refused
//! flag is reported before training.

mod common;

use common::as_folder::{
    assert_learns_as_the_folder, assert_trains_ten_classes, gray_png, small_run_flags,
    validate_as_the_run,
};
use common::{kiln_fails, summary_rows, train, train_fails, Scratch};
use kiln::train::data::hfds::{HfdsDataset, HfdsOptions};
use kiln::train::data::Dataset;
use std::path::{Path, PathBuf};

const NAME: &str = "kiln-fixture/fmnist-e2e";

fn cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("train/tests/fixtures/hfds/cache")
}

/// Writes `split` of the cached dataset as `folder/<split>/c<label>/<row>.png`.
fn write_folder(root: &Path, split: &str) {
    let ds = HfdsDataset::open(&cache(), NAME, &HfdsOptions::new(split, 1)).unwrap();
    for i in 0..ds.len() {
        let s = ds.load(i).unwrap();
        let dir = root
            .join("folder")
            .join(split)
            .join(format!("c{}", s.label));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{i:04}.png")), gray_png(&s.image)).unwrap();
    }
}

#[test]
fn trains_on_the_datasets_cache_as_well_as_on_the_folder() {
    let root = Scratch::new("hfds-e2e");
    write_folder(&root, "train");
    write_folder(&root, "validation");
    let out = root.join("runs");
    let flags = small_run_flags("12");
    train(&root.join("folder"), &out, "folder", &flags);
    let dataset = format!("hfds/{NAME}");
    let hfds = [&flags[..], &["--dataset", &dataset]].concat();
    let stdout = train(&cache(), &out, "hfds", &hfds);
    assert_trains_ten_classes(&stdout, 160);
    // 12 epochs, the mean of the last 6 (one epoch's top-1 swings by 20 points on 64 images).
    let (a, b) =
        assert_learns_as_the_folder(&out, "hfds", 6..=11, (40.0, 8.0), ("hfds", "the cache"));
    println!("mean top-1 over epochs 6-11: folder {a}, hfds {b}");

    // kiln validate reads the cached split as validate.py does: at the training size (the eval
    // transform of train.py), the last epoch's top-1 again.
    let ck = out.join("hfds/last.safetensors");
    let ck = ck.to_str().unwrap();
    let extra = [
        "--dataset",
        &dataset,
        "--checkpoint",
        ck,
        "--use-train-size",
    ];
    let last = summary_rows(&out.join("hfds"))[11][3];
    let row = validate_as_the_run(&cache(), &extra, last);
    assert!(
        row["samples"] == 64,
        "kiln validate {row} against the run's last eval top-1 {last}"
    );

    // kiln infer names each prediction by its file: it reads folders and says where to go.
    let c = cache();
    let args = [
        "infer",
        c.to_str().unwrap(),
        "--dataset",
        &dataset,
        "--checkpoint",
        ck,
    ];
    let (_, stderr) = kiln_fails(&args);
    assert!(
        stderr.contains("--dataset") && stderr.contains("kiln validate"),
        "{stderr}"
    );

    // (run, added flags, what its error must say): the dataset has no split `val`, refused
    // naming the splits it has; --dataset-download stays refused (kiln reads the cache offline);
    // a missing image column is named with the columns there are.
    let refused: [(&str, &[&str], [&str; 2]); 3] = [
        (
            "no-split",
            &["--val-split", "val"],
            ["no split \"val\"", "\"validation\""],
        ),
        (
            "download",
            &["--dataset-download"],
            ["--dataset-download", "load_dataset"],
        ),
        (
            "key",
            &["--input-key", "img"],
            ["no column \"img\"", "\"image\""],
        ),
    ];
    for (exp, added, [first, second]) in refused {
        let stderr = train_fails(&cache(), &out, exp, &[&hfds[..], added].concat());
        assert!(
            stderr.contains(first) && stderr.contains(second),
            "{stderr}"
        );
    }
}
