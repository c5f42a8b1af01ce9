//! `kiln train` on image tars (timm's `ReaderImageInTar`): `--data-dir X.tar` (a tar of class
//! folders, read for both splits as timm's `create_dataset` reads it) trains to the very bits of
//! the same run on the folder the tar was made from, and split folders of per-class tars
//! (ImageNet's train tars) train with the tars' names as classes.

mod common;

use common::as_folder::{assert_trains_ten_classes, gray_png, small_run_flags};
use common::{assert_same_bits, summary_rows, tar_member, train, Scratch};
use kiln::train::data::{Dataset, IdxDataset};
use std::path::Path;

/// The first `n` embedded training images as (label, PNG bytes).
fn images(n: usize) -> Vec<(usize, Vec<u8>)> {
    let embedded = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist");
    let ds = IdxDataset::open(&embedded, "train", 1).unwrap();
    (0..n)
        .map(|i| {
            let s = ds.load(i).unwrap();
            (s.label, gray_png(&s.image))
        })
        .collect()
}

#[test]
fn trains_on_a_tar_as_on_its_folder_and_on_per_class_tars() {
    let root = Scratch::new("tar-e2e");
    let imgs = images(160);
    let mut all = Vec::new();
    let mut per_class: Vec<Vec<u8>> = vec![Vec::new(); 10];
    for (i, (label, png)) in imgs.iter().enumerate() {
        for split in ["train", "validation"] {
            let dir = root.join("folder").join(split).join(format!("c{label}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{i:04}.png")), png).unwrap();
        }
        tar_member(&mut all, &format!("c{label}/{i:04}.png"), png);
        tar_member(&mut per_class[*label], &format!("{i:04}.png"), png);
    }
    all.resize(all.len() + 1024, 0);
    std::fs::write(root.join("all.tar"), &all).unwrap();
    for split in ["train", "validation"] {
        let dir = root.join("per-class").join(split);
        std::fs::create_dir_all(&dir).unwrap();
        for (label, tar) in per_class.iter().enumerate() {
            std::fs::write(dir.join(format!("c{label}.tar")), tar).unwrap();
        }
    }
    let out = root.join("runs");
    let flags = small_run_flags("2");
    train(&root.join("folder"), &out, "folder", &flags);
    let stdout = train(&root.join("all.tar"), &out, "tar", &flags);
    assert_trains_ten_classes(&stdout, 160);
    assert_same_bits(
        &out.join("folder/last.safetensors"),
        &out.join("tar/last.safetensors"),
        "a tar of the folder's class folders",
    );
    let stdout = train(&root.join("per-class"), &out, "per-class", &flags);
    assert_trains_ten_classes(&stdout, 160);
    let rows = summary_rows(&out.join("per-class"));
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|r| r.iter().all(|v| v.is_finite())),
        "{rows:?}"
    );
}
