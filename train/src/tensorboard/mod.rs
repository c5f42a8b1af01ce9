//! TensorBoard event files written without TensorFlow: TFRecord framing with masked CRC-32C
//! (`record.rs`) around hand-encoded `Event` protocol buffers (`proto.rs`), which
//! `tensorboard --logdir` reads.

mod proto;
mod record;

pub use record::{crc32c, masked_crc32c};

use crate::loader::Png;
use crate::{Error, Result};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Appends events to `events.out.tfevents.<time>.<host>` in a run folder.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl EventWriter {
    /// Creates a new event file in `dir` and writes its version record.
    pub fn create(dir: &Path) -> Result<EventWriter> {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "kiln".into());
        let time = now();
        let path = dir.join(format!("events.out.tfevents.{}.{host}", time as u64));
        let file = std::fs::File::create(&path).map_err(|e| Error::write(&path, e))?;
        let mut w = EventWriter {
            path,
            out: BufWriter::new(file),
        };
        w.write(&proto::file_version_event(time))?;
        Ok(w)
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A scalar `value` under `tag` at `step`.
    pub fn scalar(&mut self, tag: &str, value: f64, step: u64) -> Result<()> {
        self.write(&proto::scalar_event(now(), step, tag, value as f32))
    }

    /// A PNG image under `tag` at `step`.
    pub fn image(&mut self, tag: &str, png: &Png, step: u64) -> Result<()> {
        self.write(&proto::image_event(now(), step, tag, png))
    }

    /// Pushes buffered events to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }

    fn write(&mut self, event: &[u8]) -> Result<()> {
        record::write_record(&mut self.out, event).map_err(|e| Error::write(&self.path, e))
    }
}
