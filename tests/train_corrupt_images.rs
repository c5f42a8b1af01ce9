//! `kiln train` on an image folder with a corrupt file, batch size 2: the batch that holds it is
//! refilled from the next sample instead of shrinking to one image (which BatchNorm in training
//! cannot normalize at resnet18's 1×1 last stage, the abort this once ended in).

mod common;

use common::kiln_ok_streams;
use kiln::train::loader::{grid_png, Batch};
use std::path::Path;

/// A 40×40 RGB PNG (44×44 with the grid's border), a bright band whose place depends on `class`.
fn write_png(path: &Path, class: usize, k: usize) {
    let images: Vec<u8> = (0..40 * 40 * 3)
        .map(|i| {
            let col = (i / 3) % 40;
            if (20 * class..20 * class + 8).contains(&col) {
                220
            } else {
                ((i * 7 + k * 13) % 40) as u8
            }
        })
        .collect();
    let one = Batch {
        images,
        n: 1,
        h: 40,
        w: 40,
        c: 3,
        ..Batch::default()
    };
    std::fs::write(path, grid_png(&one, 1).unwrap().bytes).unwrap();
}

/// root/{train,validation}/{a,b}/ with four images a class; one train image is corrupt.
fn make_folder(root: &Path) {
    for split in ["train", "validation"] {
        for (c, class) in ["a", "b"].iter().enumerate() {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for k in 0..4 {
                write_png(&dir.join(format!("{k}.png")), c, k);
            }
        }
    }
    std::fs::write(root.join("train/b/2.png"), b"\x89PNG\r\n\x1a\ncut short").unwrap();
}

#[test]
fn a_corrupt_image_in_a_batch_of_two_is_replaced_and_the_run_finishes() {
    let tmp = tempfile::Builder::new()
        .prefix("kiln-corrupt-")
        .tempdir()
        .unwrap();
    let root = tmp.path();
    make_folder(root);
    let out = root.join("runs");
    let args = [
        "train",
        root.to_str().unwrap(),
        "--model",
        "resnet18",
        "-b",
        "2",
        "--img-size",
        "32",
        "--epochs",
        "1",
        "--lr",
        "0.01",
        "-j",
        "1",
        "--output",
        out.to_str().unwrap(),
        "--experiment",
        "corrupt",
    ];
    let (stdout, stderr) = kiln_ok_streams(&args);
    assert!(
        format!("{stdout}{stderr}").contains("2.png"),
        "the corrupt file is named in the log:\n{stdout}\n{stderr}"
    );
    assert!(out.join("corrupt/summary.csv").is_file());
}
