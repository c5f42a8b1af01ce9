//! Launcher for `gemm_tc.cu`: batched strided C = alpha·A·B + beta·C on tensor cores (mma.sync,
//! ldmatrix, a cp.async pipeline) for f16/bf16, f32 accumulation, C in the input dtype, in 64×64
//! or 128×128 block tiles ([`choose_tile`], shared with `conv_tc.cu`'s launchers).
//! Takes the same [`GemmArgs`] as the SIMT [`gemm`](super::gemm::gemm): transposed and
//! broadcast operands are read through their strides. Each operand comes through 16-byte
//! `cp.async` copies when its layout allows (unit stride along the index it is staged by, the
//! other strides multiples of 8 elements, a 16-byte aligned base), else through a gather staged
//! in registers: any shape, stride or alignment runs.

use super::gemm::{int, GemmArgs, Params, Tile};
use super::{DevPtr, Kernels};
use crate::error::{Error, Result};
use cudarc::driver::LaunchConfig;
use std::sync::atomic::{AtomicU8, Ordering};

const FILE: &str = "gemm_tc.cu";

/// The environment variable that forces one tensor-core tile: `64`, `128`, or `auto` (unset).
pub const TILE_VAR: &str = "KILN_TC_TILE";

/// `KILN_TC_TILE` as read on first use, or as [`set_forced_tile`] set it: 0 not yet read, 1 auto,
/// 2 64, 3 128, 4 an invalid value.
static FORCED: AtomicU8 = AtomicU8::new(0);

fn encode(t: Option<Tile>) -> u8 {
    match t {
        None => 1,
        Some(Tile::T64) => 2,
        Some(Tile::T128) => 3,
    }
}

/// The tile `KILN_TC_TILE` forces (None: chosen per launch); an error naming the variable when
/// its value is not `64`, `128` or `auto`.
pub fn forced_tile() -> Result<Option<Tile>> {
    if FORCED.load(Ordering::Relaxed) == 0 {
        let value = std::env::var(TILE_VAR).ok();
        let code = match value.as_deref().map(str::trim) {
            None | Some("" | "auto") => 1,
            Some("64") => 2,
            Some("128") => 3,
            Some(_) => 4,
        };
        // A concurrent `set_forced_tile` wins over the environment.
        let _ = FORCED.compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
    }
    match FORCED.load(Ordering::Relaxed) {
        2 => Ok(Some(Tile::T64)),
        3 => Ok(Some(Tile::T128)),
        4 => Err(Error::Launch(format!(
            "{TILE_VAR}={:?}: expected 64, 128 or auto",
            std::env::var(TILE_VAR).unwrap_or_default()
        ))),
        _ => Ok(None),
    }
}

/// Forces every tensor-core GEMM and convolution onto `tile` (None: back to the per-launch
/// choice); overrides `KILN_TC_TILE`.
pub fn set_forced_tile(tile: Option<Tile>) {
    FORCED.store(encode(tile), Ordering::Relaxed);
}

/// The tensor-core tile for `count` independent m×n outputs on a GPU with `sms`
/// multiprocessors: the forced one ([`forced_tile`]; an invalid setting counts as none here and
/// fails at launch), else 128×128 where both sides have 128 and its tiles still fill every
/// multiprocessor, else 64×64.
pub fn choose_tile(m: usize, n: usize, count: usize, sms: usize) -> Tile {
    if let Ok(Some(t)) = forced_tile() {
        return t;
    }
    let big = m.div_ceil(128) * n.div_ceil(128) * count;
    if m >= 128 && n >= 128 && big >= sms {
        Tile::T128
    } else {
        Tile::T64
    }
}

/// The kernel-name infix of `tile`'s tensor-core kernels: "" (64×64, the original names) or
/// "_t128".
pub fn tile_tag(tile: Tile) -> &'static str {
    match tile {
        Tile::T64 => "",
        Tile::T128 => "_t128",
    }
}

/// A launch of `tile`'s kernels (tc_tile.cuh's Tc64: 128 threads, 3 stages; Tc128: 256
/// threads, 4 stages) over `tiles` output tiles, `z` deep: its threads and dynamic shared memory
/// (two operands' stages of `edge` rows by 32 + 8 halves).
pub fn tile_launch(tile: Tile, tiles: u32, z: usize) -> LaunchConfig {
    let (threads, stages) = match tile {
        Tile::T64 => (128, 3),
        Tile::T128 => (256, 4),
    };
    LaunchConfig {
        grid_dim: (tiles, 1, z.clamp(1, 65535) as u32),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: (stages * 2 * tile.edge() * 40 * 2) as u32,
    }
}

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
/// saying why), in the tile [`choose_tile`] picks.
pub fn gemm_tc(kern: &Kernels, ty: &str, g: &GemmArgs) -> Result<()> {
    forced_tile()?;
    let tile = choose_tile(g.m, g.n, g.batch, super::gemm::sm_count(kern));
    gemm_tc_tiled(kern, ty, g, tile)
}

/// [`gemm_tc`] in block tiles of `tile`.
pub fn gemm_tc_tiled(kern: &Kernels, ty: &str, g: &GemmArgs, tile: Tile) -> Result<()> {
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
        g.m.div_ceil(tile.edge()) * g.n.div_ceil(tile.edge()),
    )?;
    let [sa, sb] = stagings(g);
    let p = Params::new("gemm_tc", g, sa.copies, sb.copies)?;
    // BLAS letters: A "t" is m-adjacent, B "t" is k-adjacent (B's rows are n).
    let name = format!(
        "gemm_tc{}_{}{}_{ty}",
        tile_tag(tile),
        if sa.row_fast { "t" } else { "n" },
        if sb.row_fast { "n" } else { "t" }
    );
    let cfg = tile_launch(tile, tiles as u32, g.batch);
    // SAFETY: the caller's strides keep every (b, m, k), (b, k, n) and (b, m, n) access inside
    // its buffers; the kernel bounds-checks rows and k (copies read only the in-range part of a
    // chunk); copies are asked for only where their 16-byte alignment holds (`Staging`);
    // `Params` matches `gemm_tc_<layouts>_<ty>(GemmParams)`.
    unsafe { kern.launch(FILE, &name, cfg, &[&p]) }
}
