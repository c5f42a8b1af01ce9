//! `WdsSample`: one webdataset sample as the stream hands it to the loader: where its image
//! bytes lie in its shard, and its label. Workers read and decode the image.
use crate::data::{decode, Sample};
use crate::{Error, Result};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

/// A streamed sample: its image member's byte range in its shard, and its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WdsSample {
    /// The shard file.
    pub shard: Arc<PathBuf>,
    /// The sample's key (its member names without their extensions).
    pub key: String,
    /// The image member's extension (`jpg`, `png`, ...).
    pub ext: String,
    /// Byte offset of the image member's data in the shard.
    pub offset: u64,
    /// The image member's size in bytes.
    pub size: usize,
    /// Class index.
    pub label: usize,
}

impl WdsSample {
    /// `shard:key.ext`, the name errors and warnings give.
    pub fn filename(&self) -> String {
        format!("{}:{}.{}", self.shard.display(), self.key, self.ext)
    }

    /// Reads the image member and decodes it to `chans` (1 or 3) channels.
    pub fn load(&self, chans: usize) -> Result<Sample> {
        let path = self.shard.as_path();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut bytes = vec![0; self.size];
        file.read_exact_at(&mut bytes, self.offset)
            .map_err(|e| Error::io(path, e))?;
        let filename = self.filename();
        Ok(Sample {
            image: decode(&bytes, chans, &filename)?,
            label: self.label,
            filename,
        })
    }
}
