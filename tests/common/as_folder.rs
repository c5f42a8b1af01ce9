//! The end-to-end check that another image source (a datasets cache, webdataset shards, image
//! tars) trains as the ImageFolder of the same Fashion-MNIST images does: the images written as
//! PNGs, the small run both take, and the comparisons of their logs and scores.

use super::{summary_rows, validate_row};
use kiln::train::data::Image;
use kiln::train::loader::{grid_png, Batch};
use std::ops::RangeInclusive;
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

/// The mean top-1 over `epochs` (counted from 0) of the runs `out/folder` and `out/other`, after
/// asserting that both beat `floor` and lie within `tolerance` of each other; `label` and `source`
/// name the other run in the messages. The two runs see the same images in another order, so
/// their per-epoch top-1 on a few dozen validation images differ by chance: a mean over several
/// epochs narrows that.
pub fn assert_learns_as_the_folder(
    out: &Path,
    other: &str,
    epochs: RangeInclusive<usize>,
    (floor, tolerance): (f64, f64),
    (label, source): (&str, &str),
) -> (f64, f64) {
    let mean_top1 = |run: &str| {
        let rows = summary_rows(&out.join(run));
        let top1: Vec<f64> = rows[epochs.clone()].iter().map(|r| r[3]).collect();
        top1.iter().sum::<f64>() / top1.len() as f64
    };
    let (a, b) = (mean_top1("folder"), mean_top1(other));
    assert!(
        a > floor && b > floor,
        "top-1 over epochs {epochs:?} (chance 10%): folder {a}, {label} {b}"
    );
    assert!(
        (a - b).abs() <= tolerance,
        "top-1 over epochs {epochs:?} from the folder {a} and from {source} {b}"
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
