//! `kiln train` end to end from JPEG files: an ImageFolder written by `write_jpeg_folder` from the
//! embedded Fashion-MNIST subset (what `examples/make_jpeg_folder.rs` writes at 224² for the GPU
//! run against timm's train.py), here small. The files decode as colour images of the asked side
//! in one folder a class, and a short run learns them: top-1 well above chance.

mod common;

use common::{kiln_ok, Scratch};
use kiln::train::data::{write_jpeg_folder, Dataset, IdxDataset, ImageFolder, JpegFolder};
use std::path::Path;

#[test]
fn kiln_trains_on_a_jpeg_folder() {
    let root = Scratch::new("jpeg-folder");
    let fashion = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist");
    for (prefix, split, count) in [("train", "train", 1024), ("t10k", "validation", 256)] {
        let items = IdxDataset::open(&fashion, prefix, 3).unwrap();
        let spec = JpegFolder {
            count,
            side: 48,
            quality: 90,
        };
        let written = write_jpeg_folder(&items, &root.join(split), spec, |c| format!("c{c}"));
        assert_eq!(written.unwrap(), count);
    }
    let train = ImageFolder::open(&root.join("train"), None, 3).unwrap();
    assert_eq!((train.len(), train.num_classes()), (1024, 10));
    let items = IdxDataset::open(&fashion, "train", 3).unwrap();
    for i in [0, 1, 500] {
        let sample = train.load(i).unwrap();
        let (w, h, c) = (sample.image.w, sample.image.h, sample.image.c);
        assert_eq!((w, h, c), (48, 48, 3), "{}", sample.filename);
        // Files are named by their index in the IDX file; their folder is its class.
        let k: usize = (Path::new(&sample.filename).file_stem())
            .and_then(|s| s.to_str()?.parse().ok())
            .unwrap();
        assert_eq!(sample.label, items.label(k), "{}", sample.filename);
    }

    let out = root.join("runs");
    let stdout = kiln_ok(&[
        "train",
        root.to_str().unwrap(),
        "--model",
        "resnet18",
        "--img-size",
        "48",
        "--epochs",
        "2",
        "-b",
        "64",
        "-j",
        "2",
        "--lr",
        "0.1",
        "--warmup-epochs",
        "0",
        "--output",
        out.to_str().unwrap(),
        "--experiment",
        "jpeg",
    ]);
    let summary = std::fs::read_to_string(out.join("jpeg/summary.csv")).unwrap();
    let last: Vec<f64> = (summary.lines().last().unwrap().split(','))
        .map(|v| v.parse().unwrap())
        .collect();
    println!("top-1 after 2 epochs: {} %", last[3]);
    // Ten classes: chance is 10 %; two epochs of 1024 images reach far more.
    assert!(
        last[3] > 30.0,
        "top-1 {} after 2 epochs:\n{stdout}",
        last[3]
    );
}
