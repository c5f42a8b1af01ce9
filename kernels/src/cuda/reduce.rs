//! Launchers for `reduce.cu`: sum / max / min and argmax over the rows of a dense `[rows, len]`
//! view. Twin of [`crate::cpu::reduce`].

use super::{DevPtr, Kernels};
use crate::cpu::reduce::ReduceOp;
use crate::Result;
use cudarc::driver::LaunchConfig;

const FILE: &str = "reduce.cu";

/// Rows shorter than this get a warp each; longer rows a 256-thread block.
const WARP_ROW_MAX: usize = 1024;

/// The launch for a row kernel over `rows` rows of `len`, and whether a warp serves each row
/// (the kernels' `warp` flag). Row kernels loop grid-stride, so the grid is capped.
pub(crate) fn rows_config(rows: usize, len: usize) -> (LaunchConfig, i32) {
    let warp = len < WARP_ROW_MAX;
    let blocks = if warp { rows.div_ceil(8) } else { rows };
    let cfg = LaunchConfig {
        grid_dim: (blocks.clamp(1, 65535 * 4) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    (cfg, warp as i32)
}

/// out\[r\] = op(x\[r, ..len\]) for `rows` rows of dtype `ty` (f32 f64 f16 bf16); out has `rows`.
pub fn reduce_rows(
    k: &Kernels,
    ty: &str,
    op: ReduceOp,
    x: DevPtr,
    out: DevPtr,
    rows: usize,
    len: usize,
) -> Result<()> {
    let (cfg, warp) = rows_config(rows, len);
    let (rows64, len64, code) = (rows as i64, len as i64, op as i32);
    // SAFETY: x holds rows·len and out rows elements of `ty`; the list matches
    // `reduce_rows_<ty>(const T*, T*, i64, i64, int, int)`.
    unsafe {
        k.launch(
            FILE,
            &format!("reduce_rows_{ty}"),
            cfg,
            &[&x, &out, &rows64, &len64, &code, &warp],
        )
    }
}

/// out_i64\[r\] = the first index of the max of row r (the first NaN, if any), as the twin.
pub fn argmax_rows(
    k: &Kernels,
    ty: &str,
    x: DevPtr,
    out_i64: DevPtr,
    rows: usize,
    len: usize,
) -> Result<()> {
    let (cfg, warp) = rows_config(rows, len);
    let (rows64, len64) = (rows as i64, len as i64);
    // SAFETY: x holds rows·len elements of `ty`, out_i64 rows i64s; the list matches
    // `argmax_rows_<ty>(const T*, i64*, i64, i64, int)`.
    unsafe {
        k.launch(
            FILE,
            &format!("argmax_rows_{ty}"),
            cfg,
            &[&x, &out_i64, &rows64, &len64, &warp],
        )
    }
}
