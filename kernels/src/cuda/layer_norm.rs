//! Launchers for `layer_norm.cu`: LayerNorm over the last dim of dense rows, forward, dx, and
//! dγ/dβ as band partials summed in order. Twin of [`crate::cpu::layer_norm`]. μ, rstd and the
//! partials are in the statistics dtype: f32, or f64 for f64 rows; γ, β, dγ and dβ in the
//! parameters' dtype, the rows' own or f32 for f16/bf16 rows. Each launcher's `ty` is the kernel
//! suffix [`suffix`] gives.

use super::reduce::rows_config;
use super::{grid_1d, DevPtr, Kernels, RowDims};
use crate::Result;
use cudarc::driver::LaunchConfig;

const FILE: &str = "layer_norm.cu";

/// Rows one block of the dγ/dβ kernel sums, at least; more when the rows would need more than
/// the grid's 65535 bands.
const BAND_ROWS: usize = 64;

/// Rows per band and the number of bands for `rows` rows.
fn banding(rows: usize) -> (usize, usize) {
    let band = BAND_ROWS.max(rows.div_ceil(65535));
    (band, rows.div_ceil(band).max(1))
}

/// Elements of each of the two partial buffers [`layer_norm_bwd_params`] needs for `rows` rows
/// of `len` (in the statistics dtype).
pub fn params_scratch_len(rows: usize, len: usize) -> usize {
    banding(rows).1 * len
}

/// The kernels' suffix for rows of dtype `ty` with parameters of dtype `pty`: `ty` alone when
/// they agree, else both (`f16_f32`, `bf16_f32`, the only mixed pairs compiled).
pub fn suffix(ty: &str, pty: &str) -> String {
    if ty == pty {
        ty.to_owned()
    } else {
        format!("{ty}_{pty}")
    }
}

/// The device buffers of a LayerNorm's rows: x, and γ, β (0 where absent).
#[derive(Debug, Clone, Copy)]
pub struct LnInputs {
    /// `rows`×`len` inputs of the rows' dtype.
    pub x: DevPtr,
    /// `len` scales of the parameters' dtype, or 0 for none.
    pub gamma: DevPtr,
    /// `len` shifts of the parameters' dtype, or 0 for none.
    pub beta: DevPtr,
}

/// y = (x − μ)·rstd·γ + β per row; writes μ and rstd (`rows` each, f32; f64 for f64 rows).
pub fn layer_norm_fwd(
    k: &Kernels,
    ty: &str,
    inp: LnInputs,
    y: DevPtr,
    (mean, rstd): (DevPtr, DevPtr),
    d: RowDims,
    eps: f64,
) -> Result<()> {
    let (cfg, warp) = rows_config(d.rows, d.len);
    let (rows64, len64) = (d.rows as i64, d.len as i64);
    let (x, g, b) = (inp.x, inp.gamma, inp.beta);
    // SAFETY: x and y hold rows·len elements of the rows' dtype, γ and β len of the parameters'
    // (or are null), mean and rstd rows of the accumulation type (f32, f64 for f64); the list
    // matches `layer_norm_fwd_<ty>`.
    unsafe {
        k.launch(
            FILE,
            &format!("layer_norm_fwd_{ty}"),
            cfg,
            &[&x, &g, &b, &y, &mean, &rstd, &rows64, &len64, &eps, &warp],
        )
    }
}

/// dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·γ, from the forward's μ and rstd.
pub fn layer_norm_bwd_dx(
    k: &Kernels,
    ty: &str,
    (x, gamma): (DevPtr, DevPtr),
    dy: DevPtr,
    (mean, rstd): (DevPtr, DevPtr),
    dx: DevPtr,
    d: RowDims,
) -> Result<()> {
    let (cfg, warp) = rows_config(d.rows, d.len);
    let (rows64, len64) = (d.rows as i64, d.len as i64);
    // SAFETY: x, dy and dx hold rows·len elements of the rows' dtype, γ len of the parameters'
    // (or is null), mean and rstd rows of the statistics type; the list matches
    // `layer_norm_bwd_dx_<ty>`.
    unsafe {
        k.launch(
            FILE,
            &format!("layer_norm_bwd_dx_{ty}"),
            cfg,
            &[&x, &dy, &gamma, &mean, &rstd, &dx, &rows64, &len64, &warp],
        )
    }
}

/// dγ = Σ_rows dy·x̂ and dβ = Σ_rows dy (`len` each, the parameters' dtype), through `scratch`:
/// two buffers of [`params_scratch_len`] elements of the statistics dtype.
pub fn layer_norm_bwd_params(
    k: &Kernels,
    ty: &str,
    (x, dy): (DevPtr, DevPtr),
    (mean, rstd): (DevPtr, DevPtr),
    scratch: (DevPtr, DevPtr),
    (dgamma, dbeta): (DevPtr, DevPtr),
    RowDims { rows, len }: RowDims,
) -> Result<()> {
    let (band, bands) = banding(rows);
    let (rows64, len64, band64, bands64) = (rows as i64, len as i64, band as i64, bands as i64);
    let (pg, pb) = scratch;
    let cfg = LaunchConfig {
        grid_dim: (len.div_ceil(32).max(1) as u32, bands as u32, 1),
        block_dim: (32, 8, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: x and dy hold rows·len elements of the rows' dtype, mean and rstd rows, the
    // scratch buffers bands·len of the statistics type; the list matches
    // `layer_norm_bwd_params_<ty>`.
    unsafe {
        k.launch(
            FILE,
            &format!("layer_norm_bwd_params_{ty}"),
            cfg,
            &[&x, &dy, &mean, &rstd, &pg, &pb, &rows64, &len64, &band64],
        )?;
    }
    // SAFETY: the partials hold bands·len values of the statistics type, dγ and dβ len of the
    // parameters'; the list matches `layer_norm_sum_bands_<ty>`.
    unsafe {
        k.launch(
            FILE,
            &format!("layer_norm_sum_bands_{ty}"),
            grid_1d(len),
            &[&pg, &pb, &dgamma, &dbeta, &bands64, &len64],
        )
    }
}
