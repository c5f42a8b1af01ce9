//! IDX files (MNIST): an images file and a labels file, headers and bodies, read by
//! `IdxDataset::open`, then every sample loaded in both channel counts.
use kiln_train::data::{Dataset, IdxDataset};

/// Reads `data` (split in two by [`crate::split_two`]) as an images and a labels IDX file.
pub fn run(data: &[u8]) {
    let (images, labels) = crate::split_two(data);
    crate::scratch::write("fuzz-images-idx3-ubyte", images);
    crate::scratch::write("fuzz-labels-idx1-ubyte", labels);
    for chans in [1, 3] {
        if let Ok(ds) = IdxDataset::open(crate::scratch::dir(), "fuzz", chans) {
            use_dataset(&ds);
        }
    }
}

/// Loads up to 64 samples of `ds` and asks it what a loader asks.
pub fn use_dataset(ds: &dyn Dataset) {
    let _ = ds.num_classes();
    for i in 0..ds.len().min(64) {
        let _ = (ds.label(i), ds.filename(i));
        if let Ok(s) = ds.load(i) {
            assert_eq!(s.image.data.len(), s.image.w * s.image.h * s.image.c);
        }
    }
}
