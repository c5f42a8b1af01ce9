//! Random horizontal and vertical flips (torchvision's RandomHorizontalFlip / RandomVerticalFlip).
use super::{AugRng, Transform};
use crate::data::Image;
use rand::Rng;

/// Mirrors left-right with probability `p` (timm `hflip`, default 0.5).
#[derive(Debug, Clone)]
pub struct HFlip(pub f64);

/// Mirrors top-bottom with probability `p` (timm `vflip`, default 0).
#[derive(Debug, Clone)]
pub struct VFlip(pub f64);

impl Transform for HFlip {
    fn apply(&self, img: Image, rng: &mut AugRng) -> Image {
        if rng.gen::<f64>() < self.0 {
            hflip(img)
        } else {
            img
        }
    }
}

impl Transform for VFlip {
    fn apply(&self, img: Image, rng: &mut AugRng) -> Image {
        if rng.gen::<f64>() < self.0 {
            vflip(img)
        } else {
            img
        }
    }
}

/// Mirrors `img` left-right.
pub fn hflip(mut img: Image) -> Image {
    let c = img.c;
    for row in img.data.chunks_exact_mut(img.w * c) {
        let w = row.len() / c;
        for x in 0..w / 2 {
            for k in 0..c {
                row.swap(x * c + k, (w - 1 - x) * c + k);
            }
        }
    }
    img
}

/// Mirrors `img` top-bottom.
pub fn vflip(img: Image) -> Image {
    let rows: Vec<u8> = img
        .data
        .chunks_exact(img.w * img.c)
        .rev()
        .flatten()
        .copied()
        .collect();
    Image { data: rows, ..img }
}
