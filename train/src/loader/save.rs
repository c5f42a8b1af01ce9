//! `save_images`: a PNG grid of a uint8 batch, to look at what the augmentation produced.
use super::Batch;
use crate::{Error, Result};
use std::path::Path;

/// Gap between grid cells, in pixels (filled with black).
const GAP: usize = 2;

/// Writes the images of `batch` as a grid of `cols` columns to the PNG file `path`.
pub fn save_images(batch: &Batch, path: &Path, cols: usize) -> Result<()> {
    let grid = grid_png(batch, cols).map_err(|msg| Error::Encode {
        path: path.to_path_buf(),
        msg,
    })?;
    std::fs::write(path, grid.bytes).map_err(|e| Error::write(path, e))
}

/// An encoded PNG image and its size.
#[derive(Debug, Clone)]
pub struct Png {
    /// The PNG file's bytes.
    pub bytes: Vec<u8>,
    /// Rows.
    pub height: u32,
    /// Columns.
    pub width: u32,
    /// 1 (gray) or 3 (RGB).
    pub channels: u32,
}

/// The images of `batch` as a PNG grid of `cols` columns (the error is the encoder's message).
pub fn grid_png(batch: &Batch, cols: usize) -> std::result::Result<Png, String> {
    let (cols, c) = (cols.clamp(1, batch.n.max(1)), batch.c);
    let rows = batch.n.div_ceil(cols);
    let (gw, gh) = (cols * (batch.w + GAP) + GAP, rows * (batch.h + GAP) + GAP);
    let mut grid = vec![0u8; gw * gh * c];
    for i in 0..batch.n {
        let (x0, y0) = (
            GAP + (i % cols) * (batch.w + GAP),
            GAP + (i / cols) * (batch.h + GAP),
        );
        for (y, row) in batch.image(i).chunks_exact(batch.w * c).enumerate() {
            grid[((y0 + y) * gw + x0) * c..][..row.len()].copy_from_slice(row);
        }
    }
    let mut png = Vec::new();
    let mut enc = png::Encoder::new(&mut png, gw as u32, gh as u32);
    enc.set_color(if c == 1 {
        png::ColorType::Grayscale
    } else {
        png::ColorType::Rgb
    });
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&grid).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(Png {
        bytes: png,
        height: gh as u32,
        width: gw as u32,
        channels: c as u32,
    })
}
