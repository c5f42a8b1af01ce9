//! Launchers for `layout.cu`: the prefetcher's uint8 NHWC batch to normalized channels-last
//! floats. Twin of [`crate::cpu::layout`].

use super::{grid_1d, DevPtr, Kernels};
use crate::{Error, Result};
use cudarc::driver::DeviceRepr;

const FILE: &str = "layout.cu";

/// The most channels a batch may have (the kernel's `NORM_MAX_CHANNELS`).
pub const MAX_CHANNELS: usize = 8;

/// The kernel's `Norm`: per-channel mean and std by value.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Norm {
    mean: [f32; MAX_CHANNELS],
    std: [f32; MAX_CHANNELS],
}

// SAFETY: plain-old-data with the C layout `Norm` has in layout.cu.
unsafe impl DeviceRepr for Norm {}

/// dst = (src/255 - mean\[ch\]) / std\[ch\] for a u8 NHWC batch of `pixels` pixels (n·h·w)
/// with c ≤ 8 channels; dst is NHWC of `out_ty` (f32 f16 bf16).
pub fn normalize_u8_nhwc(
    k: &Kernels,
    out_ty: &str,
    src: DevPtr,
    (pixels, c): (usize, usize),
    (mean, std): (&[f32], &[f32]),
    dst: DevPtr,
) -> Result<()> {
    if c == 0 || c > MAX_CHANNELS || mean.len() != c || std.len() != c {
        return Err(Error::Launch(format!(
            "normalize_u8_nhwc: {c} channels with {} means and {} stds (1 to {MAX_CHANNELS} channels, one of each per channel)",
            mean.len(),
            std.len()
        )));
    }
    let mut norm = Norm {
        mean: [0.0; MAX_CHANNELS],
        std: [1.0; MAX_CHANNELS],
    };
    norm.mean[..c].copy_from_slice(mean);
    norm.std[..c].copy_from_slice(std);
    let total = pixels * c;
    let (total64, c32, aligned) = (total as i64, c as i32, src.is_multiple_of(4) as i32);
    // SAFETY: src holds pixels·c bytes and dst as many `out_ty` elements; 32-bit loads are used
    // only when src is 4-aligned; the list matches `normalize_u8_nhwc_<ty>(const u8*, i64, int,
    // Norm, int, T*)`.
    unsafe {
        k.launch(
            FILE,
            &format!("normalize_u8_nhwc_{out_ty}"),
            grid_1d(total.div_ceil(4)),
            &[&src, &total64, &c32, &norm, &aligned, &dst],
        )
    }
}
