//! What several of kiln-train's test files share.

use kiln_train::data::{Dataset, Image, Sample};

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
