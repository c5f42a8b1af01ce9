//! `kiln train --dataset hfds/NAME` end to end on a Hugging Face datasets cache written by the
//! `datasets` library (train/tests/fixtures/hfds/cache, `kiln-fixture/fmnist-e2e`: 160 train and
//! 64 validation images of the embedded Fashion-MNIST subset, made by
//! scripts/fixtures/make_hfds_fixtures.py): it learns as well as the same run on an ImageFolder
//! of the same images, counts the split's rows and the ClassLabel's classes, `kiln validate`
//! scores its checkpoint on the cached split as the run did, and a missing split or a refused
//! flag is reported before training.

mod common;

use common::{kiln_fails, summary_rows, train, train_fails, validate_row, Scratch};
use kiln::train::data::hfds::{HfdsDataset, HfdsOptions};
use kiln::train::data::Dataset;
use kiln::train::loader::{grid_png, Batch};
use std::path::{Path, PathBuf};
use std::process::Command;

const NAME: &str = "kiln-fixture/fmnist-e2e";

fn cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("train/tests/fixtures/hfds/cache")
}

/// Writes `split` of the cached dataset as `folder/<split>/c<label>/<row>.png`.
fn write_folder(root: &Path, split: &str) {
    let ds = HfdsDataset::open(&cache(), NAME, &HfdsOptions::new(split, 1)).unwrap();
    for i in 0..ds.len() {
        let s = ds.load(i).unwrap();
        let one = Batch {
            images: s.image.data.clone(),
            n: 1,
            h: s.image.h,
            w: s.image.w,
            c: 1,
            ..Batch::default()
        };
        let dir = root
            .join("folder")
            .join(split)
            .join(format!("c{}", s.label));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("{i:04}.png")),
            grid_png(&one, 1).unwrap().bytes,
        )
        .unwrap();
    }
}

#[test]
fn trains_on_the_datasets_cache_as_well_as_on_the_folder() {
    let root = Scratch::new("hfds-e2e");
    write_folder(&root, "train");
    write_folder(&root, "validation");
    let out = root.join("runs");
    let flags = [
        "--epochs",
        "6",
        "--img-size",
        "32",
        "--no-aug",
        "-b",
        "16",
        "-j",
        "2",
    ];
    train(&root.join("folder"), &out, "folder", &flags);
    let dataset = format!("hfds/{NAME}");
    let hfds = [&flags[..], &["--dataset", &dataset]].concat();
    let stdout = train(&cache(), &out, "hfds", &hfds);
    assert!(
        stdout.contains("Training 160 images (10 classes"),
        "{stdout}"
    );
    let (folder, cached) = (
        summary_rows(&out.join("folder")),
        summary_rows(&out.join("hfds")),
    );
    let (a, b) = (folder[5][3], cached[5][3]);
    println!("top-1 after 6 epochs: folder {a}, hfds {b}");
    assert!(
        a > 40.0 && b > 40.0,
        "top-1 after 6 epochs (chance 10%): folder {a}, hfds {b}"
    );
    assert!(
        (a - b).abs() <= 12.0,
        "top-1 from the folder {a} and from the cache {b}"
    );

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
    let row = validate_row(Command::new(env!("CARGO_BIN_EXE_kiln")), &cache(), &extra);
    let top1 = row["top1"].as_f64().unwrap();
    assert!(
        (top1 - b).abs() < 1e-3 && row["samples"] == 64,
        "kiln validate {row} against the run's last eval top-1 {b}"
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

    // The dataset has no split `val`: refused, naming the splits it has.
    let val = [&hfds[..], &["--val-split", "val"]].concat();
    let stderr = train_fails(&cache(), &out, "no-split", &val);
    assert!(
        stderr.contains("no split \"val\"") && stderr.contains("\"validation\""),
        "{stderr}"
    );
    // --dataset-download stays refused: kiln reads the cache offline.
    let download = [&hfds[..], &["--dataset-download"]].concat();
    let stderr = train_fails(&cache(), &out, "download", &download);
    assert!(
        stderr.contains("--dataset-download") && stderr.contains("load_dataset"),
        "{stderr}"
    );
    // A missing image column is named with the columns there are.
    let key = [&hfds[..], &["--input-key", "img"]].concat();
    let stderr = train_fails(&cache(), &out, "key", &key);
    assert!(
        stderr.contains("no column \"img\"") && stderr.contains("\"image\""),
        "{stderr}"
    );
}
