//! The end-to-end check that another image source (a datasets cache, webdataset shards, image
//! tars) trains as the ImageFolder of the same Fashion-MNIST images does: the images written as
//! PNGs, the small run both take, and the comparisons of their logs and scores.

use super::{summary_rows, validate_row};
use kiln::train::data::Image;
use kiln::train::loader::{grid_png, Batch};
use std::path::Path;
use std::process::Command;

/// A one-channel dataset image encoded as PNG bytes.
pub fn gray_png(image: &Image) -> Vec<u8> {
    let one = Batch {
        images: image.data.clone(),
        n: 1,
        h: image.h,
        w: image.w,
        c: 1,
        ..Batch::default()
    };
    grid_png(&one, 1).unwrap().bytes
}

/// `kiln train` flags of the small run: `epochs` epochs at 32×32 without augmentation, batch 16,
/// 2 loader workers.
pub fn small_run_flags(epochs: &str) -> [&str; 9] {
    [
        "--epochs",
        epochs,
        "--img-size",
        "32",
        "--no-aug",
        "-b",
        "16",
        "-j",
        "2",
    ]
}

/// Asserts that a `kiln train` log announces `images` training images of 10 classes.
pub fn assert_trains_ten_classes(stdout: &str, images: usize) {
    assert!(
        stdout.contains(&format!("Training {images} images (10 classes")),
        "{stdout}"
    );
}

/// The top-1 of epoch `epoch` (counted from 0) of the runs `out/folder` and `out/other`, after
/// asserting that both beat `floor` and lie within `tolerance` of each other; `label` and `source`
/// name the other run in the messages.
pub fn assert_learns_as_the_folder(
    out: &Path,
    other: &str,
    epoch: usize,
    (floor, tolerance): (f64, f64),
    (label, source): (&str, &str),
) -> (f64, f64) {
    let (folder, others) = (
        summary_rows(&out.join("folder")),
        summary_rows(&out.join(other)),
    );
    let (a, b) = (folder[epoch][3], others[epoch][3]);
    let epochs = epoch + 1;
    assert!(
        a > floor && b > floor,
        "top-1 after {epochs} epochs (chance 10%): folder {a}, {label} {b}"
    );
    assert!(
        (a - b).abs() <= tolerance,
        "top-1 from the folder {a} and from {source} {b}"
    );
    (a, b)
}

/// `kiln validate` of the validation split of `data` with `extra` (see `validate_row`): its
/// row, after asserting that its top-1 is the run's last eval top-1 `top1`.
pub fn validate_as_the_run(data: &Path, extra: &[&str], top1: f64) -> serde_json::Value {
    let row = validate_row(Command::new(env!("CARGO_BIN_EXE_kiln")), data, extra);
    let got = row["top1"].as_f64().unwrap();
    assert!(
        (got - top1).abs() < 1e-3,
        "kiln validate {row} against the run's last eval top-1 {top1}"
    );
    row
}
