//! Launchers for `bn_relu.cu`: per-channel batch statistics, and BatchNorm fused with a residual
//! add and ReLU, forward and backward, NCHW or NHWC. Twin of [`crate::cpu::bn_relu`].
//! Activations are f32, f64, f16 or bf16; per-channel vectors are in the accumulation type (f64
//! for f64 data, f32 otherwise), so f16/bf16 activations keep f32 statistics.

use super::{grid_1d, pack_len, DevPtr, Kernels};
use crate::cpu::bn_relu::ChannelDims;
use crate::Result;
use cudarc::driver::{DeviceRepr, LaunchConfig};

const FILE: &str = "bn_relu.cu";

/// Aim for about this many blocks in a reduction pass (a few waves on a large GPU).
const TARGET_BLOCKS: usize = 1024;
/// NCHW: a block sums at least this many elements of its channel (4 per thread).
const NCHW_MIN_PER_BLOCK: usize = 1024;
/// NHWC: a block sums at least this many pixels for its 32 channels (8 per thread).
const NHWC_MIN_ROWS: usize = 64;
/// The packed NHWC kernels' block (bn_relu.cu's shared arrays assume it).
const PACKED_BLOCK: usize = 256;
/// The packed elementwise kernels: fewest pixels a thread handles (its factors load once for them).
const PACKED_PIXELS_PER_THREAD: usize = 4;

/// The (element count, C, H·W, channels-last flag) arguments of a kernel with one thread per
/// element of an `[N, C, H·W]` tensor.
pub(super) fn elementwise_args(d: &ChannelDims) -> (i64, i64, i64, i32) {
    (
        (d.n * d.c * d.hw) as i64,
        d.c as i64,
        d.hw as i64,
        d.channels_last as i32,
    )
}

/// Channels a 16-byte pack of `ty` holds where the packed NHWC kernels apply (channels-last, C a
/// multiple of the pack, at most 256 packs a pixel, every buffer 16-byte aligned); None otherwise.
fn pack_lanes(ty: &str, d: &ChannelDims, ptrs: &[DevPtr]) -> Option<usize> {
    let lanes = pack_len(ty);
    let fits = d.channels_last && d.c.is_multiple_of(lanes) && d.c / lanes <= PACKED_BLOCK;
    (fits && ptrs.iter().all(|p| p % 16 == 0)).then_some(lanes)
}

/// The packed elementwise kernels' (packs, packs a pixel), 32-bit indexed; None where they do not
/// apply.
fn elementwise_packs(ty: &str, d: &ChannelDims, ptrs: &[DevPtr]) -> Option<(u32, u32)> {
    let total = d.n * d.c * d.hw;
    let lanes = pack_lanes(ty, d, ptrs).filter(|_| total <= u32::MAX as usize)?;
    Some(((total / lanes) as u32, (d.c / lanes) as u32))
}

/// The packed elementwise kernels' grid: 256-thread blocks of whole pixels (`PackedLane` in
/// bn_relu.cu), each thread at least `PACKED_PIXELS_PER_THREAD` pixels of its channel pack so its
/// per-channel factors load once for several, at most `4·TARGET_BLOCKS` blocks.
fn packed_elementwise_config(packs: u32, cp: u32) -> LaunchConfig {
    let rows = PACKED_BLOCK / cp as usize;
    let pixels = (packs / cp) as usize;
    let blocks = pixels
        .div_ceil(rows * PACKED_PIXELS_PER_THREAD)
        .clamp(1, 4 * TARGET_BLOCKS);
    LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (PACKED_BLOCK as u32, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The packed reduction's grid: one 256-thread block spans all channels of `rows` pixels, and
/// the pixels split over blocks so that each thread sums at least 8 of them.
fn packed_partials_config(d: &ChannelDims, lanes: usize) -> (LaunchConfig, usize) {
    let rows = PACKED_BLOCK / (d.c / lanes);
    let splits = TARGET_BLOCKS
        .min(d.per_channel().div_ceil(rows * 8))
        .clamp(1, 65535);
    let cfg = LaunchConfig {
        grid_dim: (1, splits as u32, 1),
        block_dim: (PACKED_BLOCK as u32, 1, 1),
        shared_mem_bytes: 0,
    };
    (cfg, splits)
}

/// The reduction pass's grid: (channel tiles, splits of each channel's N·H·W) and block shape.
fn partials_config(d: &ChannelDims) -> (LaunchConfig, usize) {
    let m = d.per_channel();
    let (tiles, block, min_per_block) = if d.channels_last {
        (d.c.div_ceil(32), (32, 8, 1), NHWC_MIN_ROWS)
    } else {
        (d.c, (256, 1, 1), NCHW_MIN_PER_BLOCK)
    };
    let splits = TARGET_BLOCKS
        .div_ceil(tiles.max(1))
        .min(m.div_ceil(min_per_block))
        .clamp(1, 65535);
    let cfg = LaunchConfig {
        grid_dim: (tiles.max(1) as u32, splits as u32, 1),
        block_dim: block,
        shared_mem_bytes: 0,
    };
    (cfg, splits)
}

/// The finalize pass's grid: a warp per channel, 8 warps a block.
fn warp_per_channel(c: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (c.div_ceil(8).max(1) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The running buffers a training BN's statistics pass updates in place: device pointers (0 for
/// none), the mean and variance in the accumulation type, the batch count an i64.
#[derive(Debug, Clone, Copy, Default)]
pub struct BnRunning {
    /// Running mean \[C\].
    pub mean: DevPtr,
    /// Running (unbiased) variance \[C\].
    pub var: DevPtr,
    /// num_batches_tracked, one i64.
    pub batches: DevPtr,
    /// Running-average factor.
    pub momentum: f64,
}

/// What the statistics pass derives for the forward, device pointers in the accumulation type
/// (0 for none): invstd = 1/√(var + eps), scale = γ·invstd, shift = β - mean·scale from γ and β
/// (0: ones and zeros). All of invstd, scale, shift are written, or none (`invstd` 0).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct BnAffine {
    /// γ \[C\] read.
    pub gamma: DevPtr,
    /// β \[C\] read.
    pub beta: DevPtr,
    /// 1/√(var + eps) \[C\] written.
    pub invstd: DevPtr,
    /// γ·invstd \[C\] written.
    pub scale: DevPtr,
    /// β - mean·scale \[C\] written.
    pub shift: DevPtr,
    /// Added to the variance.
    pub eps: f64,
}

// SAFETY: plain-old-data with the C layout of `BnAffine<A>` in bn_relu.cu (five pointers, a
// double).
unsafe impl DeviceRepr for BnAffine {}

/// What [`channel_sums`] reduces per channel.
#[derive(Debug, Clone, Copy)]
enum Sums {
    /// The statistics Σ(x - K), Σ(x - K)² of the forward.
    Statistics,
    /// The backward's Σg, Σg·(x - mean); a null y has the ReLU mask (when `relu`) recomputed
    /// from x, `scale` and `shift`.
    Gradients {
        scale: DevPtr,
        shift: DevPtr,
        relu: bool,
    },
}

/// The two reduction kernels: per-block sums into a workspace, then a warp per channel combines
/// them into `out1`, `out2` (and, for the statistics, updates `run`): the sums `sums` names.
fn channel_sums(
    k: &Kernels,
    ty: &str,
    d: &ChannelDims,
    (x, dy, y, mean, invstd): (DevPtr, DevPtr, DevPtr, DevPtr, DevPtr),
    sums: Sums,
    (out1, out2): (DevPtr, DevPtr),
    (run, aff): (&BnRunning, &BnAffine),
) -> Result<()> {
    if d.c == 0 {
        return Ok(());
    }
    let packed = pack_lanes(ty, d, &[x, dy, y]);
    let (cfg, splits) = match packed {
        Some(lanes) => packed_partials_config(d, lanes),
        None => partials_config(d),
    };
    let work = k.scratch_zeroed(splits * d.c * 2 * std::mem::size_of::<f64>())?;
    let wp = work.ptr();
    let (n, c, hw) = (d.n as i64, d.c as i64, d.hw as i64);
    let (bwd, (scale, shift, relu)) = match sums {
        Sums::Statistics => (0, (0, 0, false)),
        Sums::Gradients { scale, shift, relu } => (1, (scale, shift, relu)),
    };
    let (relu, cl, splits64) = (relu as i32, d.channels_last as i32, splits as i64);
    if packed.is_some() {
        // SAFETY: as below; x, dy and y are 16-byte aligned and C is a multiple of the pack with
        // at most 256 packs, as `bn_partials_packed_<ty>` needs; its list is `bn_partials_<ty>`'s
        // without the layout flag.
        unsafe {
            k.launch(
                FILE,
                &format!("bn_partials_packed_{ty}"),
                cfg,
                &[
                    &x, &dy, &y, &scale, &shift, &mean, &relu, &bwd, &n, &c, &hw, &wp,
                ],
            )?;
        }
    } else {
        // SAFETY: x (and dy, y in the backward) hold n·c·hw elements of `ty`, mean (and scale,
        // shift where y is null in a ReLU backward) c of the accumulation type; the grid covers
        // exactly `splits` × c partial pairs of `work`; the list matches `bn_partials_<ty>(const T*,
        // const T*, const T*, const A*, const A*, const A*, int, int, i64, i64, i64, int, double*)`.
        // Pointers a mode does not read may be null.
        unsafe {
            k.launch(
                FILE,
                &format!("bn_partials_{ty}"),
                cfg,
                &[
                    &x, &dy, &y, &scale, &shift, &mean, &relu, &bwd, &n, &c, &hw, &cl, &wp,
                ],
            )?;
        }
    }
    let (rm, rv, rb, momentum) = (run.mean, run.var, run.batches, run.momentum);
    // SAFETY: `work` holds the partials just written on this stream; out1, out2 (and invstd in
    // the backward, the non-null running mean/var and pointers of `aff`) hold c elements of the
    // accumulation type, a non-null `batches` one i64; the list matches `bn_finalize_<ty>(const
    // T*, const A*, int, i64, i64, i64, int, const double*, i64, A*, A*, A*, A*, i64*, double,
    // BnAffine<A>)`. `work` is freed in stream order after this launch.
    unsafe {
        k.launch(
            FILE,
            &format!("bn_finalize_{ty}"),
            warp_per_channel(d.c),
            &[
                &x, &invstd, &bwd, &n, &c, &hw, &cl, &wp, &splits64, &out1, &out2, &rm, &rv, &rb,
                &momentum, aff,
            ],
        )
    }
}

/// Batch mean and biased variance per channel of x (dtype `ty`), into `mean`, `var` (accumulation
/// type); the running buffers of `run` are updated and the forward's `aff` vectors written by the
/// same launch.
pub fn bn_stats(
    k: &Kernels,
    ty: &str,
    x: DevPtr,
    d: ChannelDims,
    (mean, var): (DevPtr, DevPtr),
    run: &BnRunning,
    aff: &BnAffine,
) -> Result<()> {
    channel_sums(
        k,
        ty,
        &d,
        (x, 0, 0, 0, 0),
        Sums::Statistics,
        (mean, var),
        (run, aff),
    )
}

/// Per-channel partial statistics of an `[N, C, H·W]` tensor that the kernel which wrote it
/// produced (f32 on the device): the N·H·W values of each channel split into `tiles` runs of
/// `rows` (the last holds the rest); run t of channel c has its sum at element (t·C + c)·stride
/// and its second quantity `second` elements further: Σ(v - run mean)² when `centered`, else Σv².
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePartials {
    /// The f32 buffer.
    pub ptr: DevPtr,
    /// Offset of the second quantity from the sum, in elements.
    pub second: usize,
    /// Elements between consecutive (run, channel) sums.
    pub stride: usize,
    /// Runs per channel.
    pub tiles: usize,
    /// Values per run.
    pub rows: usize,
    /// Whether the second quantity is centered on the run's mean (else a raw Σv²).
    pub centered: bool,
}

/// [`bn_stats`] from partials instead of a read of x: mean and biased variance into `mean`,
/// `var` (f32), the running buffers of `run` and the vectors of `aff`, in one launch
/// (`bn_finalize_tiles`; statistics of f16/bf16/f32 activations only, which keep f32 vectors).
pub fn bn_stats_from_tiles(
    k: &Kernels,
    parts: &TilePartials,
    d: ChannelDims,
    (mean, var): (DevPtr, DevPtr),
    run: &BnRunning,
    aff: &BnAffine,
) -> Result<()> {
    if d.c == 0 {
        return Ok(());
    }
    let m = d.per_channel();
    if parts.rows == 0 || parts.tiles != m.div_ceil(parts.rows) {
        return Err(crate::error::Error::Launch(format!(
            "bn_finalize_tiles: {} runs of {} do not cover {m} values a channel",
            parts.tiles, parts.rows
        )));
    }
    let (second, stride, tiles, rows) = (
        parts.second as i64,
        parts.stride as i64,
        parts.tiles as i64,
        parts.rows as i64,
    );
    let (centered, c, m) = (parts.centered as i32, d.c as i64, m as i64);
    let (rm, rv, rb, momentum) = (run.mean, run.var, run.batches, run.momentum);
    // SAFETY: `parts.ptr` holds tiles·C runs' sums and second quantities at the offsets it
    // describes (the producer's contract), written earlier on this stream; mean, var (and the
    // non-null running buffers and pointers of `aff`) hold C f32, a non-null `batches` one i64;
    // the list matches `bn_finalize_tiles_f32(const float*, i64, i64, i64, i64, int, i64, i64,
    // float*, float*, float*, float*, i64*, double, BnAffine<float>)`.
    unsafe {
        k.launch(
            FILE,
            "bn_finalize_tiles_f32",
            warp_per_channel(d.c),
            &[
                &parts.ptr, &second, &stride, &tiles, &rows, &centered, &c, &m, &mean, &var, &rm,
                &rv, &rb, &momentum, aff,
            ],
        )
    }
}

/// y = act(x·scale\[c\] + shift\[c\] + residual), act = ReLU when `relu`; y written once.
pub fn bn_act_fwd(
    k: &Kernels,
    ty: &str,
    (x, residual): (DevPtr, Option<DevPtr>),
    (scale, shift): (DevPtr, DevPtr),
    relu: bool,
    d: ChannelDims,
    y: DevPtr,
) -> Result<()> {
    let total = d.n * d.c * d.hw;
    let (res, relu) = (residual.unwrap_or(0), relu as i32);
    if let Some((packs, cp)) = elementwise_packs(ty, &d, &[x, res, y]) {
        // SAFETY: as below, with x, y and the residual 16-byte aligned and C a multiple of the
        // pack; the list matches `bn_act_fwd_packed_<ty>(const T*, const T*, const A*, const A*,
        // int, unsigned, unsigned, T*)`.
        return unsafe {
            k.launch(
                FILE,
                &format!("bn_act_fwd_packed_{ty}"),
                packed_elementwise_config(packs, cp),
                &[&x, &res, &scale, &shift, &relu, &packs, &cp, &y],
            )
        };
    }
    let (total64, c, hw, cl) = elementwise_args(&d);
    // SAFETY: x, y (and residual) hold n·c·hw elements of `ty`, scale and shift c of the
    // accumulation type; a null residual is not read; the list matches `bn_act_fwd_<ty>(const T*,
    // const T*, const A*, const A*, int, i64, i64, i64, int, T*)`.
    unsafe {
        k.launch(
            FILE,
            &format!("bn_act_fwd_{ty}"),
            grid_1d(total),
            &[&x, &res, &scale, &shift, &relu, &total64, &c, &hw, &cl, &y],
        )
    }
}

/// What the fused BN backward reads besides dy (x and y in the data's dtype, per-channel vectors
/// in the accumulation type).
#[derive(Debug, Clone, Copy)]
pub struct BnBwd {
    /// The BN input.
    pub x: DevPtr,
    /// The forward output (post-activation): y > 0 is the ReLU mask. Null (0) where the output
    /// was never stored: the mask is then recomputed from x, `scale` and `shift`.
    pub y: DevPtr,
    /// Per-channel scale = γ·invstd of the forward (read only where y is null).
    pub scale: DevPtr,
    /// Per-channel shift = β - mean·scale of the forward (read only where y is null).
    pub shift: DevPtr,
    /// The per-channel mean the forward normalized with (batch or running).
    pub mean: DevPtr,
    /// Per-channel 1/√(var + eps) the forward normalized with.
    pub invstd: DevPtr,
    /// Per-channel γ (ones when the BN has no affine weight).
    pub gamma: DevPtr,
    /// Whether a ReLU followed the BN.
    pub relu: bool,
    /// Whether batch statistics were used (gradients flow through mean and variance).
    pub training: bool,
}

/// dx (and `dres`, the residual's gradient), dγ and dβ of the fused BN: one pass reduces Σg and
/// Σg·(x - mean) per channel, a second writes dx and dres.
pub fn bn_act_bwd(
    k: &Kernels,
    ty: &str,
    dy: DevPtr,
    s: &BnBwd,
    d: ChannelDims,
    (dx, dres): (DevPtr, Option<DevPtr>),
    (dgamma, dbeta): (DevPtr, DevPtr),
) -> Result<()> {
    let ptrs = (s.x, dy, s.y, s.mean, s.invstd);
    let (none, no_affine) = (BnRunning::default(), BnAffine::default());
    channel_sums(
        k,
        ty,
        &d,
        ptrs,
        Sums::Gradients {
            scale: s.scale,
            shift: s.shift,
            relu: s.relu,
        },
        (dgamma, dbeta),
        (&none, &no_affine),
    )?;
    let total = d.n * d.c * d.hw;
    let (relu, training, dres) = (s.relu as i32, s.training as i32, dres.unwrap_or(0));
    if let Some((packs, cp)) = elementwise_packs(ty, &d, &[dy, s.y, s.x, dx, dres]) {
        // SAFETY: as below, with the activations 16-byte aligned and C a multiple of the pack;
        // the list matches `bn_act_bwd_dx_packed_<ty>(const T* ×3, const A* ×7, int, int,
        // unsigned, unsigned, T*, T*)`.
        return unsafe {
            k.launch(
                FILE,
                &format!("bn_act_bwd_dx_packed_{ty}"),
                packed_elementwise_config(packs, cp),
                &[
                    &dy, &s.y, &s.x, &s.scale, &s.shift, &s.mean, &s.invstd, &s.gamma, &dgamma,
                    &dbeta, &relu, &training, &packs, &cp, &dx, &dres,
                ],
            )
        };
    }
    let (total64, c, hw, cl) = elementwise_args(&d);
    // SAFETY: dy, y, x, dx (and dres) hold n·c·hw elements of `ty`; mean, invstd, gamma, dgamma
    // and dbeta (and scale, shift where y is null) hold c of the accumulation type (dgamma, dbeta
    // written by the launch above, on this stream); a null dres is not written; the list matches
    // `bn_act_bwd_dx_<ty>(const T* ×3, const A* ×7, int, int, i64, i64, i64, int, T*, T*)`.
    unsafe {
        k.launch(
            FILE,
            &format!("bn_act_bwd_dx_{ty}"),
            grid_1d(total),
            &[
                &dy, &s.y, &s.x, &s.scale, &s.shift, &s.mean, &s.invstd, &s.gamma, &dgamma, &dbeta,
                &relu, &training, &total64, &c, &hw, &cl, &dx, &dres,
            ],
        )
    }
}
