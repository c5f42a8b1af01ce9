//! Launcher for `gemm_tc.cu`: C = A·B on tensor cores (mma.sync, ldmatrix, a 3-stage cp.async
//! pipeline) for row-major f16/bf16 A \[m, k\] and B \[k, n\] into f32 C \[m, n\].

use super::gemm::{dim, int};
use super::{DevPtr, Kernels};
use crate::error::{Error, Result};
use cudarc::driver::LaunchConfig;

const FILE: &str = "gemm_tc.cu";
/// The output tile of one block.
const TILE: usize = 64;

/// Operands of `C = A·B`, all dense row-major.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcArgs {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of B and C (a multiple of 8).
    pub n: usize,
    /// Columns of A, rows of B (a multiple of 8).
    pub k: usize,
    /// A\[m, k\], f16 or bf16.
    pub a: DevPtr,
    /// B\[k, n\], same dtype.
    pub b: DevPtr,
    /// C\[m, n\], f32, written (never read).
    pub c: DevPtr,
}

/// C = A·B for `ty` in f16, bf16; needs compute capability 8.0+ and 16-byte rows (k and n
/// multiples of 8), else an error saying which.
pub fn gemm_tc(kern: &Kernels, ty: &str, g: &TcArgs) -> Result<()> {
    if ty != "f16" && ty != "bf16" {
        return Err(Error::Launch(format!(
            "gemm_tc: no {ty} kernel (f16, bf16)"
        )));
    }
    if kern.arch() < 80 {
        let arch = kern.arch();
        return Err(Error::Launch(format!(
            "gemm_tc: sm_{arch} has no mma.sync m16n8k16"
        )));
    }
    if !g.k.is_multiple_of(8) || !g.n.is_multiple_of(8) {
        let (k, n) = (g.k, g.n);
        return Err(Error::Launch(format!(
            "gemm_tc: k = {k} and n = {n} must be multiples of 8 (16-byte rows)"
        )));
    }
    if g.m == 0 || g.n == 0 {
        return Ok(());
    }
    let tiles = int(
        "gemm_tc output tiles",
        g.m.div_ceil(TILE) * g.n.div_ceil(TILE),
    )?;
    let (m, n, k) = (
        dim("gemm_tc m", g.m)?,
        dim("gemm_tc n", g.n)?,
        dim("gemm_tc k", g.k)?,
    );
    let cfg = LaunchConfig {
        grid_dim: (tiles as u32, 1, 1),
        block_dim: (128, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: A, B and C hold m·k, k·n and m·n elements (the caller's guarantee); the kernel
    // bounds-checks every row and 16-byte chunk against m, n and k; the arguments match
    // `gemm_tc_<ty>(const T*, const T*, float*, int, int, int)`.
    unsafe {
        kern.launch(
            FILE,
            &format!("gemm_tc_{ty}"),
            cfg,
            &[&g.a, &g.b, &g.c, &m, &n, &k],
        )
    }
}
