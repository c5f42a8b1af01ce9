//! The data prefetcher's device step on the CPU: a uint8 NHWC image batch to normalized floats,
//! still channels-last. Twin of `cuda/layout.cu`.

use super::PAR_GRAIN;
use rayon::prelude::*;

/// dst = (src/255 - mean\[ch\]) / std\[ch\] over interleaved pixels of `c` channels (NHWC, so the
/// channel is the index mod c); `mean` and `std` hold `c` values.
pub fn normalize_u8_nhwc(src: &[u8], c: usize, mean: &[f32], std: &[f32], dst: &mut [f32]) {
    let run = c.max(1) * (PAR_GRAIN / c.max(1)).max(1);
    dst.par_chunks_mut(run)
        .zip(src.par_chunks(run))
        .for_each(|(dst, src)| {
            for (i, (o, &v)) in dst.iter_mut().zip(src).enumerate() {
                let ch = i % c;
                *o = (v as f32 / 255.0 - mean[ch]) / std[ch];
            }
        });
}
