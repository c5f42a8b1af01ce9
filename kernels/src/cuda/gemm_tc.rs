//! Launcher for `gemm_tc.cu`: batched strided C = alpha·A·B + beta·C on tensor cores (mma.sync,
//! ldmatrix, a 3-stage cp.async pipeline) for f16/bf16, f32 accumulation, C in the input dtype.
//! Takes the same [`GemmArgs`] as the SIMT [`gemm`](super::gemm::gemm): transposed and
//! broadcast operands are read through their strides. Each operand comes through 16-byte
//! `cp.async` copies when its layout allows (unit stride along the index it is staged by, the
//! other strides multiples of 8 elements, a 16-byte aligned base), else through a gather staged
//! in registers: any shape, stride or alignment runs.

use super::gemm::{int, GemmArgs, Params};
use super::{DevPtr, Kernels};
use crate::error::{Error, Result};
use cudarc::driver::LaunchConfig;

const FILE: &str = "gemm_tc.cu";
/// The output tile of one block.
pub const TILE: usize = 64;

/// Whether the tensor-core kernels serve `ty` on this device: f16 or bf16, compute capability
/// 8.0 or newer (mma.sync m16n8k16 with bf16, cp.async).
pub fn supported(k: &Kernels, ty: &str) -> bool {
    matches!(ty, "f16" | "bf16") && k.arch() >= 80
}

/// How one operand is staged: along its rows (else along k), and whether by 16-byte copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Staging {
    /// Shared memory holds the operand rows-adjacent (A: m, B: n), else k-adjacent.
    pub row_fast: bool,
    /// 16-byte `cp.async` chunks serve (else a register-staged gather).
    pub copies: bool,
}

impl Staging {
    /// The staging of an operand with `rows` and `k` as (length, element stride), `batch`
    /// matrices `batch_stride` apart from `ptr`; `row_fast` when both or neither index is
    /// adjacent in memory is `prefer_rows`.
    pub fn new(
        rows: (usize, usize),
        k: (usize, usize),
        batch: (usize, usize),
        ptr: DevPtr,
        prefer_rows: bool,
    ) -> Staging {
        let adjacent = |(len, stride): (usize, usize)| stride == 1 || len <= 1;
        let aligned = |(len, stride): (usize, usize)| stride.is_multiple_of(8) || len <= 1;
        let row_fast = if adjacent(rows) != adjacent(k) {
            adjacent(rows)
        } else {
            prefer_rows
        };
        let (fast, other) = if row_fast { (rows, k) } else { (k, rows) };
        Staging {
            row_fast,
            copies: ptr.is_multiple_of(16) && adjacent(fast) && aligned(other) && aligned(batch),
        }
    }
}

/// The stagings of A (rows m) and B (rows n) of `g`.
pub fn stagings(g: &GemmArgs) -> [Staging; 2] {
    let [ab, am, ak] = g.a_strides;
    let [bb, bk, bn] = g.b_strides;
    [
        Staging::new((g.m, am), (g.k, ak), (g.batch, ab), g.a, false),
        Staging::new((g.n, bn), (g.k, bk), (g.batch, bb), g.b, true),
    ]
}

/// C = alpha·A·B + beta·C for `ty` in f16, bf16 (see [`supported`]; anything else is an error
/// saying why).
pub fn gemm_tc(kern: &Kernels, ty: &str, g: &GemmArgs) -> Result<()> {
    if ty != "f16" && ty != "bf16" {
        return Err(Error::Launch(format!(
            "gemm_tc: no {ty} kernel (f16, bf16)"
        )));
    }
    if !supported(kern, ty) {
        let arch = kern.arch();
        return Err(Error::Launch(format!(
            "gemm_tc: sm_{arch} has no mma.sync m16n8k16"
        )));
    }
    if g.batch == 0 || g.m == 0 || g.n == 0 {
        return Ok(());
    }
    let tiles = int(
        "gemm_tc output tiles",
        g.m.div_ceil(TILE) * g.n.div_ceil(TILE),
    )?;
    let [sa, sb] = stagings(g);
    let p = Params::new("gemm_tc", g, sa.copies, sb.copies)?;
    // BLAS letters: A "t" is m-adjacent, B "t" is k-adjacent (B's rows are n).
    let name = format!(
        "gemm_tc_{}{}_{ty}",
        if sa.row_fast { "t" } else { "n" },
        if sb.row_fast { "n" } else { "t" }
    );
    let cfg = LaunchConfig {
        grid_dim: (tiles as u32, 1, g.batch.min(65535) as u32),
        block_dim: (128, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: the caller's strides keep every (b, m, k), (b, k, n) and (b, m, n) access inside
    // its buffers; the kernel bounds-checks rows and k (copies read only the in-range part of a
    // chunk); copies are asked for only where their 16-byte alignment holds (`Staging`);
    // `Params` matches `gemm_tc_<layouts>_<ty>(GemmParams)`.
    unsafe { kern.launch(FILE, &name, cfg, &[&p]) }
}
