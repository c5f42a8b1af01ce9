//! Launchers for `pool.cu`: max, average and adaptive pooling, forward and backward, f32, f64,
//! f16 and bf16 (f32 arithmetic inside), NCHW or NHWC through the twin's [`Dims4`]. Each computes exactly what its namesake in
//! [`crate::cpu::pool`] computes, except that gradients overwrite dx instead of adding to it.

use super::gemm::int;
use super::{grid_1d, pack_len, Arg, DevPtr, Kernels};
use crate::cpu::pool::{Dims4, Window};
use crate::error::{Error, Result};
use cudarc::driver::{DeviceRepr, LaunchConfig};

const FILE: &str = "pool.cu";

/// `PoolDims` of pool.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Dims {
    size: [i64; 4],
    stride: [i64; 4],
}

// SAFETY: plain-old-data with the C layout pool.cu declares.
unsafe impl DeviceRepr for Dims {}

impl Dims {
    fn new(d: Dims4) -> Dims {
        Dims {
            size: d.size.map(|v| v as i64),
            stride: d.stride.map(|v| v as i64),
        }
    }
}

/// `PoolWin` of pool.cu.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Win {
    k: [i32; 2],
    s: [i32; 2],
    p: [i32; 2],
    d: [i32; 2],
}

// SAFETY: as for `Dims`.
unsafe impl DeviceRepr for Win {}

impl Win {
    /// The window of adaptive pooling (kernel 0: pool.cu derives the ranges from the sizes).
    const ADAPTIVE: Win = Win {
        k: [0; 2],
        s: [1; 2],
        p: [0; 2],
        d: [1; 2],
    };

    fn new(w: &Window) -> Result<Win> {
        if w.kernel.contains(&0) || w.stride.contains(&0) || w.dilation.contains(&0) {
            return Err(Error::Launch(format!(
                "pooling {w:?}: kernel, stride and dilation must be positive"
            )));
        }
        let pair = |what: &str, v: [usize; 2]| -> Result<[i32; 2]> {
            Ok([int(what, v[0])?, int(what, v[1])?])
        };
        Ok(Win {
            k: pair("pool kernel", w.kernel)?,
            s: pair("pool stride", w.stride)?,
            p: pair("pool padding", w.padding)?,
            d: pair("pool dilation", w.dilation)?,
        })
    }
}

fn numel(d: &Dims4) -> usize {
    d.size.iter().product()
}

/// Whether threads should walk channels fastest (the tensor is channels-last).
fn channels_last(d: &Dims4) -> i32 {
    (d.stride[1] < d.stride[3]) as i32
}

/// Launches pool.cu's `<kernel>_<ty>` with one thread per element of `out` (nothing when `out` is
/// empty): `args`, then whether `out` is channels-last, which every pooling kernel takes last.
///
/// # Safety
/// As [`Kernels::launch`]: `args` must match the kernel's parameters before that flag, and every
/// pointer must hold the elements its dims address.
unsafe fn launch(
    k: &Kernels,
    kernel: &str,
    ty: &str,
    out: &Dims4,
    args: &[&dyn Arg],
) -> Result<()> {
    let n = numel(out);
    if n == 0 {
        return Ok(());
    }
    let cl = channels_last(out);
    let args: Vec<&dyn Arg> = args.iter().copied().chain([&cl as &dyn Arg]).collect();
    // SAFETY: the caller guarantees the arguments match the kernel.
    unsafe { k.launch(FILE, &format!("{kernel}_{ty}"), grid_1d(n), &args) }
}

/// Max pooling: y and the argmax `idx` (i64, h·W + w within the plane) of each output.
pub fn max_pool_fwd(
    k: &Kernels,
    ty: &str,
    (x, xd): (DevPtr, Dims4),
    (y, yd): (DevPtr, Dims4),
    win: &Window,
    idx: DevPtr,
) -> Result<()> {
    let (xs, w, ys) = (Dims::new(xd), Win::new(win)?, Dims::new(yd));
    if channels_last(&yd) == 1 && numel(&yd) > 0 {
        let (name, cfg) = pixel_kernel("max_pool_fwd_cl", ty, &[(&xd, x), (&yd, y)], idx, &yd);
        // SAFETY: as below; a `_pack` kernel gets the channel stride, lane multiples and
        // alignments `pixel_kernel` checked; both match `max_pool_fwd_cl[_pack]_<ty>(const T*,
        // PoolDims, T*, PoolDims, PoolWin, i64*)`.
        return unsafe { k.launch(FILE, &name, cfg, &[&x, &xs, &y, &ys, &w, &idx]) };
    }
    // SAFETY: x, y and idx hold the elements their Dims4 address (idx laid out as y); matches
    // `max_pool_fwd_<ty>(const T*, PoolDims, T*, PoolDims, PoolWin, i64*, int)`.
    unsafe { launch(k, "max_pool_fwd", ty, &yd, &[&x, &xs, &y, &ys, &w, &idx]) }
}

/// Max pooling backward: each dx element gathers dy of the outputs whose argmax it is, among
/// those `win` covers (adaptive ranges when `win` is None); dx fully overwritten, no atomics.
pub fn max_pool_bwd(
    k: &Kernels,
    ty: &str,
    (dy, yd): (DevPtr, Dims4),
    idx: DevPtr,
    (dx, xd): (DevPtr, Dims4),
    win: Option<&Window>,
) -> Result<()> {
    let (ys, xs) = (Dims::new(yd), Dims::new(xd));
    // An empty dx launches nothing, with its window unchecked.
    let w = match win {
        Some(w) if numel(&xd) > 0 => Win::new(w)?,
        _ => Win::ADAPTIVE,
    };
    if channels_last(&xd) == 1 && numel(&xd) > 0 {
        let (name, cfg) = pixel_kernel("max_pool_bwd_cl", ty, &[(&yd, dy), (&xd, dx)], idx, &xd);
        // SAFETY: as below, with a `_pack` kernel's layout checked by `pixel_kernel`; matches
        // `max_pool_bwd_cl[_pack]_<ty>(const T*, PoolDims, const i64*, T*, PoolDims, PoolWin)`.
        return unsafe { k.launch(FILE, &name, cfg, &[&dy, &ys, &idx, &dx, &xs, &w]) };
    }
    // SAFETY: dy and idx (laid out as dy) hold yd's elements, dx those xd addresses; every idx
    // is -1 or inside the plane of xd (as the forward wrote it); matches `max_pool_bwd_<ty>(const
    // T*, PoolDims, const i64*, T*, PoolDims, PoolWin, int)`.
    unsafe { launch(k, "max_pool_bwd", ty, &xd, &[&dy, &ys, &idx, &dx, &xs, &w]) }
}

/// The channels-last max-pooling kernel (`<kernel>_<ty>`, or `<kernel>_pack_<ty>` moving 16 bytes
/// of channels a thread) and its grid over the pixels of `walk`. The pack applies where every
/// tensor has channel stride 1, its other strides and C are multiples of the pack, and every
/// buffer (the i64 `idx` laid out as the last tensor) is aligned to the pack's loads.
fn pixel_kernel(
    kernel: &str,
    ty: &str,
    tensors: &[(&Dims4, DevPtr)],
    idx: DevPtr,
    walk: &Dims4,
) -> (String, LaunchConfig) {
    let lanes = pack_len(ty);
    let packs = |d: &Dims4, p: DevPtr| {
        d.stride[1] == 1
            && [d.size[1], d.stride[0], d.stride[2], d.stride[3]]
                .iter()
                .all(|v| v.is_multiple_of(lanes))
            && p.is_multiple_of(16)
    };
    let packed = tensors.iter().all(|&(d, p)| packs(d, p)) && idx.is_multiple_of(16);
    let (name, lanes) = match packed {
        true => (format!("{kernel}_pack_{ty}"), lanes),
        false => (format!("{kernel}_{ty}"), 1),
    };
    (name, pixel_rows(walk, lanes))
}

/// The channels-last kernels' grid: 256-thread blocks, a row of up to 32 threads over one
/// pixel's channel groups of `lanes` (grid-stride beyond 2^18 blocks).
fn pixel_rows(d: &Dims4, lanes: usize) -> LaunchConfig {
    let row = d.size[1].div_ceil(lanes).next_power_of_two().clamp(1, 32);
    let pixels_a_block = 256 / row;
    let pixels = d.size[0] * d.size[2] * d.size[3];
    LaunchConfig {
        grid_dim: (
            pixels.div_ceil(pixels_a_block).clamp(1, 65535 * 4) as u32,
            1,
            1,
        ),
        block_dim: (row as u32, pixels_a_block as u32, 1),
        shared_mem_bytes: 0,
    }
}

/// Average pooling forward (divisor per `count_include_pad`, as PyTorch).
pub fn avg_pool_fwd(
    k: &Kernels,
    ty: &str,
    (x, xd): (DevPtr, Dims4),
    (y, yd): (DevPtr, Dims4),
    win: &Window,
    count_include_pad: bool,
) -> Result<()> {
    let (xs, w, ys) = (Dims::new(xd), Win::new(win)?, Dims::new(yd));
    let cip = count_include_pad as i32;
    // SAFETY: x and y hold the elements their Dims4 address; matches `avg_pool_fwd_<ty>(const
    // T*, PoolDims, T*, PoolDims, PoolWin, int, int)`.
    unsafe { launch(k, "avg_pool_fwd", ty, &yd, &[&x, &xs, &y, &ys, &w, &cip]) }
}

/// Average pooling backward: each dx element gathers dy/count over its windows (overwritten).
pub fn avg_pool_bwd(
    k: &Kernels,
    ty: &str,
    (dy, yd): (DevPtr, Dims4),
    (dx, xd): (DevPtr, Dims4),
    win: &Window,
    count_include_pad: bool,
) -> Result<()> {
    let (ys, xs, w) = (Dims::new(yd), Dims::new(xd), Win::new(win)?);
    let cip = count_include_pad as i32;
    // SAFETY: dy and dx hold the elements their Dims4 address; the kernel reads only outputs
    // inside yd; matches `avg_pool_bwd_<ty>(const T*, PoolDims, T*, PoolDims, PoolWin, int, int)`.
    unsafe { launch(k, "avg_pool_bwd", ty, &xd, &[&dy, &ys, &dx, &xs, &w, &cip]) }
}

/// Adaptive pooling forward, average or max; `idx` (as y) gets the argmax, or -1 for average.
pub fn adaptive_pool_fwd(
    k: &Kernels,
    ty: &str,
    (x, xd): (DevPtr, Dims4),
    (y, yd): (DevPtr, Dims4),
    max: bool,
    idx: Option<DevPtr>,
) -> Result<()> {
    let (xs, ys) = (Dims::new(xd), Dims::new(yd));
    let (is_max, idx) = (max as i32, idx.unwrap_or(0));
    // SAFETY: x, y and idx (when not null) hold the elements their Dims4 address; matches
    // `adaptive_pool_fwd_<ty>(const T*, PoolDims, T*, PoolDims, int, i64*, int)`.
    unsafe {
        launch(
            k,
            "adaptive_pool_fwd",
            ty,
            &yd,
            &[&x, &xs, &y, &ys, &is_max, &idx],
        )
    }
}

/// Adaptive average pooling backward: each dx element gathers dy/size over its windows.
pub fn adaptive_avg_pool_bwd(
    k: &Kernels,
    ty: &str,
    (dy, yd): (DevPtr, Dims4),
    (dx, xd): (DevPtr, Dims4),
) -> Result<()> {
    let (ys, xs) = (Dims::new(yd), Dims::new(xd));
    // SAFETY: dy and dx hold the elements their Dims4 address; matches
    // `adaptive_avg_pool_bwd_<ty>(const T*, PoolDims, T*, PoolDims, int)`.
    unsafe { launch(k, "adaptive_avg_pool_bwd", ty, &xd, &[&dy, &ys, &dx, &xs]) }
}
