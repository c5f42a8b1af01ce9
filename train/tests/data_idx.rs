//! The IDX reader on the Fashion-MNIST subset in `data/`.
use kiln_train::data::{Dataset, IdxDataset};
use std::path::Path;

fn fashion() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/fashion-mnist"
    ))
}

#[test]
fn idx_reads_fashion_subset() {
    let train = IdxDataset::open(fashion(), "train", 1).unwrap();
    let test = IdxDataset::open(fashion(), "t10k", 1).unwrap();
    assert_eq!((train.len(), test.len()), (10_000, 2_000));
    assert_eq!(train.num_classes(), 10);
    let s = train.load(0).unwrap();
    assert_eq!((s.image.w, s.image.h, s.image.c), (28, 28, 1));
    assert_eq!(s.label, train.label(0));
    assert!(
        s.filename.ends_with("train-images-idx3-ubyte.gz#0"),
        "{}",
        s.filename
    );
    assert!(s.image.data.iter().any(|&v| v > 0));
}

#[test]
fn idx_gray_to_rgb_repeats_channel() {
    let ds = IdxDataset::open(fashion(), "t10k", 3).unwrap();
    let img = ds.load(5).unwrap().image;
    assert_eq!(img.c, 3);
    assert!(img.data.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
}

#[test]
fn idx_missing_dir_names_it() {
    let err = IdxDataset::open(Path::new("/no/such/dir"), "train", 1).unwrap_err();
    assert!(err.to_string().contains("/no/such/dir"), "{err}");
}
