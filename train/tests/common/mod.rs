//! What several of kiln-train's test files share.
#![allow(dead_code)] // each test binary uses its own subset

use kiln_train::data::{decode, Dataset, Image, Sample};
use std::path::Path;

/// `len` RGB `side`×`side` images of 4 classes, each with its own pattern.
#[derive(Debug)]
pub struct Patterns {
    /// Images.
    pub len: usize,
    /// Their side in pixels.
    pub side: usize,
}

impl Dataset for Patterns {
    fn len(&self) -> usize {
        self.len
    }
    fn label(&self, i: usize) -> usize {
        i % 4
    }
    fn filename(&self, i: usize) -> String {
        format!("{i}")
    }
    fn load(&self, i: usize) -> kiln_train::Result<Sample> {
        let s = self.side;
        let data = (0..s * s * 3).map(|p| ((p * (i % 4 + 3) + i * 11) % 256) as u8);
        Ok(Sample {
            image: Image::new(s, s, 3, data.collect()),
            label: i % 4,
            filename: self.filename(i),
        })
    }
    fn num_classes(&self) -> usize {
        4
    }
}

/// The fixture image file `dir/name`, decoded to 1 channel when `gray`, else to 3.
pub fn fixture_image(dir: &Path, name: &str, gray: bool) -> Image {
    let bytes = std::fs::read(dir.join(name)).unwrap();
    decode(&bytes, if gray { 1 } else { 3 }, name).unwrap()
}

/// |got - want| for each channel value, after asserting that the shapes agree (`what` names the
/// case in the message).
pub fn pixel_diffs(got: &Image, want: &Image, what: &str) -> Vec<u8> {
    assert_eq!(
        (got.w, got.h, got.c),
        (want.w, want.h, want.c),
        "{what}: shape"
    );
    (got.data.iter().zip(&want.data))
        .map(|(a, b)| a.abs_diff(*b))
        .collect()
}
