//! Launcher for `gemm.cu`: batched strided GEMM, C = alpha·A·B + beta·C, f32/f64/f16/bf16 with
//! f32 (f64 for f64) accumulation. Strides make transposes and broadcast batches free.

use super::{DevPtr, Kernels};
use crate::error::{Error, Result};
use cudarc::driver::{sys, DeviceRepr, LaunchConfig};

const FILE: &str = "gemm.cu";

/// Operands and scalars of `C[b] = alpha·A[b]·B[b] + beta·C[b]` over `batch` products.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GemmArgs {
    /// Number of products.
    pub batch: usize,
    /// Rows of A and C.
    pub m: usize,
    /// Columns of B and C.
    pub n: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    /// A\[b, m, k\].
    pub a: DevPtr,
    /// Element strides (batch, row, column) of A; A^T is (bs, 1, m).
    pub a_strides: [usize; 3],
    /// B\[b, k, n\].
    pub b: DevPtr,
    /// Element strides (batch, row, column) of B.
    pub b_strides: [usize; 3],
    /// C\[b, m, n\].
    pub c: DevPtr,
    /// Element strides (batch, row, column) of C.
    pub c_strides: [usize; 3],
    /// Scale of the product.
    pub alpha: f32,
    /// Scale of the old C; 0 means C is write-only (never read, so it may hold NaNs).
    pub beta: f32,
}

/// The output tile one 256-thread block computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tile {
    /// 64×64, 4×4 accumulators a thread: small or skinny problems, and all of f64.
    T64,
    /// 128×128, 8×8 accumulators a thread: large f32/f16/bf16 problems.
    T128,
}

impl Tile {
    /// The tile's edge in elements.
    pub fn edge(self) -> usize {
        match self {
            Tile::T64 => 64,
            Tile::T128 => 128,
        }
    }

    /// The kernel-name infix ("t64", "t128").
    pub fn name(self) -> &'static str {
        match self {
            Tile::T64 => "t64",
            Tile::T128 => "t128",
        }
    }

    /// The tile for `count` independent m×n outputs of `ty` on a GPU with `sms`
    /// multiprocessors: 128×128 when that still makes two blocks per multiprocessor.
    pub fn choose(ty: &str, m: usize, n: usize, count: usize, sms: usize) -> Tile {
        let big = m.div_ceil(128) * n.div_ceil(128) * count;
        if ty != "f64" && m >= 128 && n >= 128 && big >= 2 * sms {
            Tile::T128
        } else {
            Tile::T64
        }
    }
}

/// The device's multiprocessor count (132, an H100's, when the driver cannot say).
pub fn sm_count(k: &Kernels) -> usize {
    let attr = sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT;
    match k.stream().context().attribute(attr) {
        Ok(n) if n > 0 => n as usize,
        _ => 132,
    }
}

/// `GemmParams` of operands.cuh (gemm.cu and gemm_tc.cu): `g` with two per-operand flags each
/// kernel reads its own way (gemm.cu: stage A/B walking k; gemm_tc.cu: A/B come through 16-byte
/// copies).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    a: u64,
    b: u64,
    c: u64,
    sa: [i64; 3],
    sb: [i64; 3],
    sc: [i64; 3],
    batch: i32,
    m: i32,
    n: i32,
    k: i32,
    alpha: f32,
    beta: f32,
    a_flag: i32,
    b_flag: i32,
}

impl Params {
    /// `g` as kernel parameters, checking that its sizes fit the kernels' ints.
    pub(crate) fn new(what: &str, g: &GemmArgs, a_flag: bool, b_flag: bool) -> Result<Params> {
        Ok(Params {
            a: g.a,
            b: g.b,
            c: g.c,
            sa: strides(g.a_strides),
            sb: strides(g.b_strides),
            sc: strides(g.c_strides),
            batch: int(&format!("{what} batch"), g.batch)?,
            m: dim(&format!("{what} m"), g.m)?,
            n: dim(&format!("{what} n"), g.n)?,
            k: dim(&format!("{what} k"), g.k)?,
            alpha: g.alpha,
            beta: g.beta,
            a_flag: a_flag as i32,
            b_flag: b_flag as i32,
        })
    }
}

// SAFETY: plain-old-data with the C layout gemm.cu declares.
unsafe impl DeviceRepr for Params {}

/// `v` as a kernel `int`, or an error naming `what`.
pub(crate) fn int(what: &str, v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::Launch(format!("{what} = {v} exceeds a kernel int")))
}

/// A matrix dimension as a kernel `int`, with room for the tile rows past its end.
pub(crate) fn dim(what: &str, v: usize) -> Result<i32> {
    int(what, v + (1 << 16))?;
    Ok(v as i32)
}

fn strides(s: [usize; 3]) -> [i64; 3] {
    s.map(|v| v as i64)
}

/// C = alpha·A·B + beta·C for `ty` in f32, f64, f16, bf16, with the tile chosen for the device.
pub fn gemm(k: &Kernels, ty: &str, g: &GemmArgs) -> Result<()> {
    gemm_tiled(k, ty, g, Tile::choose(ty, g.m, g.n, g.batch, sm_count(k)))
}

/// [`gemm()`] with the output tile given (for tests and benchmarks).
pub fn gemm_tiled(k: &Kernels, ty: &str, g: &GemmArgs, tile: Tile) -> Result<()> {
    if ty == "f64" && tile == Tile::T128 {
        return Err(Error::Launch("gemm: f64 runs 64×64 tiles only".into()));
    }
    if g.batch == 0 || g.m == 0 || g.n == 0 {
        return Ok(());
    }
    let e = tile.edge();
    let tiles = int("gemm output tiles", g.m.div_ceil(e) * g.n.div_ceil(e))?;
    let [_, am, ak] = g.a_strides;
    let [_, bk, bn] = g.b_strides;
    // Stage along whichever index has unit stride, so a warp's loads coalesce.
    let p = Params::new("gemm", g, ak == 1 || am != 1, bk == 1 && bn != 1)?;
    let cfg = LaunchConfig {
        grid_dim: (tiles as u32, 1, g.batch.min(65535) as u32),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: the caller's strides keep every (b, m, k), (b, k, n) and (b, m, n) access inside
    // its buffers; the kernel bounds-checks m, n and k against the tile; `Params` matches
    // `gemm_<tile>_<ty>(GemmParams)`.
    unsafe { k.launch(FILE, &format!("gemm_{}_{ty}", tile.name()), cfg, &[&p]) }
}
