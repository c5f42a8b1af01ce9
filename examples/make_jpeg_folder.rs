//! Writes an IDX dataset (MNIST's format: the embedded Fashion-MNIST subset by default) as an
//! ImageFolder of JPEG files at an ImageNet-like size: `OUT/train/<class>/*.jpg` and
//! `OUT/validation/<class>/*.jpg`, the layout both `kiln train` and timm's train.py read. The
//! images are resized bilinearly to `--side` pixels and written in colour; past the dataset's
//! length they repeat mirrored. It is the data of the end-to-end GPU run (`kiln train` against
//! timm's train.py from JPEG files, where the loader decides the speed), made on the machine
//! itself, so that no image is committed or downloaded.
//!
//! ```sh
//! cargo run --release --example make_jpeg_folder -- OUT [--from data/fashion-mnist]
//!     [--side 224] [--train 20000] [--val 2000] [--quality 90]
//! ```

use kiln_train::data::{write_jpeg_folder, IdxDataset, JpegFolder};
use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn Error>> {
    let mut out = None;
    let mut from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist");
    let (mut side, mut train, mut val, mut quality) = (224, 20_000, 2_000, 90);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if !arg.starts_with("--") {
            out = Some(PathBuf::from(arg));
            continue;
        }
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        let count = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{arg} {value}: not a count"))
        };
        match arg.as_str() {
            "--from" => from = PathBuf::from(&value),
            "--side" => side = count()?,
            "--train" => train = count()?,
            "--val" => val = count()?,
            "--quality" => {
                quality = value
                    .parse()
                    .map_err(|_| format!("--quality {value}: not 1-100"))?
            }
            _ => return Err(format!("unknown flag {arg}").into()),
        }
    }
    let out = out.ok_or("usage: make_jpeg_folder OUT [--from IDX_DIR] [--side N] [--train N] [--val N] [--quality Q]")?;
    let start = Instant::now();
    for (prefix, split, count) in [("train", "train", train), ("t10k", "validation", val)] {
        let dataset = IdxDataset::open(&from, prefix, 3)?;
        let spec = JpegFolder {
            count,
            side,
            quality,
        };
        write_jpeg_folder(&dataset, &out.join(split), spec, |c| c.to_string())?;
    }
    println!(
        "{} + {} JPEG files of {side}x{side} in {} ({:.1} s)",
        train,
        val,
        out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
