//! `kiln train --dataset wds/NAME` end to end on webdataset shards made from the embedded
//! Fashion-MNIST subset (as scripts/make-wds.py writes them from an ImageFolder): it learns as
//! well as the same run from the ImageFolder of the same images, and a run resumed from a
//! mid-epoch recovery checkpoint ends with the bits of the run never interrupted, `kiln validate`
//! scores its checkpoint on the shards as the run did, the same run on 2 ranks (each reading its
//! own shards, as train/tests/data_wds.rs shows the split against timm's) learns as well, and more
//! loader workers than shards are refused before training.

mod common;

use common::as_folder::{
    assert_learns_as_the_folder, assert_trains_ten_classes, gray_png, validate_as_the_run,
};
use common::launched::free_port;
use common::{
    assert_same_bits, kiln_ok_in, summary_rows, tar_member as member, train, train_args,
    train_fails, Scratch,
};
use kiln::train::data::{Dataset, IdxDataset};
use std::path::Path;
use std::process::Command;

/// Samples per shard.
const SHARD: usize = 96;

/// Writes `n` samples of the embedded `prefix` split as `folder/<split>/c<label>/<k>.png` and as
/// shards `shards/fmnist-<split>-<k>.tar` (`<key>.png`, `<key>.cls`); returns the split's info.
fn write_split(root: &Path, split: &str, prefix: &str, n: usize) -> serde_json::Value {
    let embedded = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist");
    let ds = IdxDataset::open(&embedded, prefix, 1).unwrap();
    let (mut filenames, mut lengths) = (vec![], vec![]);
    for start in (0..n).step_by(SHARD) {
        let mut tar = Vec::new();
        for i in start..(start + SHARD).min(n) {
            let s = ds.load(i).unwrap();
            let png = gray_png(&s.image);
            let dir = root
                .join("folder")
                .join(split)
                .join(format!("c{}", s.label));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{i}.png")), &png).unwrap();
            let key = format!("{split}_{i:08}");
            member(&mut tar, &format!("{key}.png"), &png);
            member(
                &mut tar,
                &format!("{key}.cls"),
                s.label.to_string().as_bytes(),
            );
        }
        tar.resize(tar.len() + 1024, 0);
        let name = format!("fmnist-{split}-{:06}.tar", filenames.len());
        std::fs::write(root.join("shards").join(&name), tar).unwrap();
        lengths.push((start + SHARD).min(n) - start);
        filenames.push(name);
    }
    serde_json::json!({"name": split, "num_samples": n, "filenames": filenames, "shard_lengths": lengths})
}

#[test]
fn trains_on_shards_as_well_as_on_the_folder_and_resumes_mid_epoch_exactly() {
    let root = Scratch::new("wds-e2e");
    std::fs::create_dir_all(root.join("shards")).unwrap();
    let train_split = write_split(&root, "train", "train", 640);
    let val_split = write_split(&root, "validation", "t10k", 320);
    let info = serde_json::json!({
        "name": "fmnist",
        "num_classes": 10,
        "splits": {"train": train_split, "validation": val_split},
    });
    std::fs::write(root.join("shards/_info.json"), info.to_string()).unwrap();
    let out = root.join("runs");
    let flags = ["--epochs", "4", "--img-size", "32", "--no-aug", "-j", "2"];
    train(&root.join("folder"), &out, "folder", &flags);
    let wds = [
        &flags[..],
        &["--dataset", "wds/fmnist", "--recovery-interval", "7"],
    ]
    .concat();
    let stdout = train(&root.join("shards"), &out, "wds", &wds);
    assert_trains_ten_classes(&stdout, 640);
    let (_, b) =
        assert_learns_as_the_folder(&out, "wds", 3..=3, (55.0, 8.0), ("shards", "its shards"));

    // kiln validate reads the validation shards as the run's eval did (2 loader workers, batch
    // 128) at the training size (the eval transform of train.py): the last epoch's top-1 again.
    let ck = out.join("wds/last.safetensors");
    let extra = [
        "--dataset",
        "wds/fmnist",
        "--checkpoint",
        ck.to_str().unwrap(),
        "-j",
        "2",
        "-b",
        "128",
        "--use-train-size",
    ];
    validate_as_the_run(&root.join("shards"), &extra, b);

    // 20 batches an epoch (2 loader workers of 320 samples: one reads 352 and stops, the other
    // 288 and starts its shards over): the newest recovery checkpoint (update 77) lies inside
    // epoch 3.
    let recovery = (std::fs::read_dir(out.join("wds")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("recovery-"))
        .max()
        .expect("a recovery checkpoint");
    assert!(
        recovery.to_string_lossy().ends_with("-77.safetensors"),
        "{}",
        recovery.display()
    );
    let resumed = [&wds[..], &["--resume", recovery.to_str().unwrap()]].concat();
    let stdout = train(&root.join("shards"), &out, "resumed", &resumed);
    assert!(stdout.contains("Resumed from"), "{stdout}");
    assert_same_bits(
        &out.join("wds/last.safetensors"),
        &out.join("resumed/last.safetensors"),
        "after resuming a streamed epoch mid-way",
    );

    // 2 ranks of 2 loader workers, each rank reading its own shards of the 7 (timm's split by
    // rank, then by worker): the epoch is still the 640 images, and the run learns as the
    // one-rank run did (the global batch is twice as large: half the updates).
    let mut launch = Command::new(env!("CARGO_BIN_EXE_kiln"));
    launch.env("RAYON_NUM_THREADS", "1");
    let port = free_port().to_string();
    let ranks = [
        "launch",
        "--nproc-per-node",
        "2",
        "--master-port",
        &port,
        "--",
    ];
    let two = train_args(&root.join("shards"), &out, "two-ranks", &wds);
    let stdout = kiln_ok_in(
        launch,
        &[
            &ranks[..],
            &two.iter().map(String::as_str).collect::<Vec<_>>(),
        ]
        .concat(),
    );
    assert_trains_ten_classes(&stdout, 640);
    let two_ranks = summary_rows(&out.join("two-ranks"))[3][3];
    assert!(
        two_ranks > 55.0 && (two_ranks - b).abs() <= 10.0,
        "top-1 on 2 ranks {two_ranks}, on one {b}"
    );

    // 7 train shards cannot each give one to 8 loader workers: refused before training.
    let many = ["--dataset", "wds/fmnist", "-j", "8"];
    let stderr = train_fails(&root.join("shards"), &out, "many", &many);
    assert!(
        stderr.contains("7 shards cannot feed 8 loader workers"),
        "{stderr}"
    );
}
