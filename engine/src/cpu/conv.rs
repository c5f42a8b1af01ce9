//! 2-d convolution as im2col + GEMM, forward, backward-data and backward-filter, NCHW or NHWC.
//!
//! Images run in parallel (one single-threaded GEMM each) when the batch can feed every core;
//! small batches use one multi-threaded GEMM per image instead. 1×1 stride-1 convolutions skip
//! im2col: the input already is the column matrix. NHWC shapes go first to Winograd's minimal
//! filtering (`winograd`, 3×3 stride-1 convolutions where enough 4×4 tiles share the weights),
//! the small-image products (`small_image_conv`, large batches of tiny images), the direct
//! kernels (`direct_conv`) or the implicit GEMM (`implicit_gemm`) where those serve them.

use super::alloc;
use super::depthwise;
use super::direct_conv::DirectConv;
use super::elementwise::add_assign;
use super::float_map2;
use super::grouped_conv::GroupedConv;
use super::implicit_gemm::{flip_weights, Taps};
use super::matmul::{gemm, mat};
use super::scratch::with_scratch;
use super::small_image_conv::SmallImageConv;
use super::transpose::transpose;
use super::winograd::Winograd;
use crate::conv_shape::ConvShape;
use crate::{CpuStorage, Result};
use kiln_kernels::cpu::im2col::{col2im_nchw, col2im_nhwc, im2col_nchw, im2col_nhwc};
use kiln_kernels::cpu::sum_in_ranges;
use kiln_kernels::cpu::Real;
use rayon::prelude::*;

/// The sizes the im2col + GEMM path works in.
impl ConvShape {
    fn in_image(&self) -> usize {
        self.c * self.geom.hw[0] * self.geom.hw[1]
    }

    fn out_image(&self) -> usize {
        self.oc * self.geom.p_len()
    }

    fn ocg(&self) -> usize {
        self.oc / self.groups
    }

    fn is_pointwise(&self) -> bool {
        let g = &self.geom;
        g.k == [1, 1] && g.stride == [1, 1] && g.pad == [0, 0]
    }

    fn batch_parallel(&self) -> bool {
        self.n >= rayon::current_num_threads()
    }
}

/// Runs `f(image, out_image, col_buffer, parallel_gemm)` for every image, in parallel when the batch
/// allows; `col_buffer` is scratch of `col_len` elements.
fn per_image<T: Real>(
    out: &mut [T],
    s: &ConvShape,
    col_len: usize,
    f: impl Fn(usize, &mut [T], &mut [T], bool) + Sync,
) {
    let img = out.len() / s.n.max(1);
    if s.batch_parallel() {
        out.par_chunks_mut(img.max(1))
            .enumerate()
            .for_each(|(n, o)| with_scratch(col_len, |col| f(n, o, col, false)));
    } else {
        with_scratch(col_len, |col| {
            for (n, o) in out.chunks_mut(img.max(1)).enumerate() {
                f(n, o, col, true);
            }
        });
    }
}

/// y = conv2d(x, w); x and w in the memory format of `s` (w is OIHW, or OHWI for NHWC).
pub fn conv2d_fwd(x: &CpuStorage, w: &CpuStorage, s: &ConvShape) -> Result<CpuStorage> {
    if let Some(d) = s.depthwise() {
        return depthwise::forward(x, w, s, &d);
    }
    if let (Some(split), CpuStorage::F32(xv), CpuStorage::F32(wv)) = (GroupedConv::new(s), x, w) {
        return Ok(CpuStorage::F32(split.forward(xv, wv, conv2d_fwd)?));
    }
    if let (Some(wino), CpuStorage::F32(xv), CpuStorage::F32(wv)) = (Winograd::new(s), x, w) {
        return Ok(CpuStorage::F32(wino.forward(xv, wv)));
    }
    if let Some(small) = SmallImageConv::new(s) {
        return Ok(float_map2!("conv2d", x, w, |xv, wv: T| small.forward(xv, wv)));
    }
    if let (Some(direct), CpuStorage::F32(xv), CpuStorage::F32(wv)) = (DirectConv::new(s), x, w) {
        return Ok(CpuStorage::F32(direct.forward(xv, wv)));
    }
    if let (true, CpuStorage::F32(xv), CpuStorage::F32(wv)) = (takes_transposed_weights(s), x, w) {
        return Ok(CpuStorage::F32(fwd_pointwise_transposed(xv, wv, s)));
    }
    Ok(float_map2!("conv2d", x, w, |xv, wv: T| {
        let mut y = alloc::zeroed(s.n * s.out_image());
        if s.channels_last {
            fwd_nhwc(xv, wv, s, &mut y)
        } else {
            fwd_nchw(xv, wv, s, &mut y)
        }
        y
    }))
}

/// The NCHW column matrix \[C·KH·KW, OH·OW\] of image `n`, group `grp`: the input itself for a
/// pointwise conv, else im2col into `col`.
fn nchw_columns<'a, T: Real>(
    x: &'a [T],
    s: &ConvShape,
    n: usize,
    grp: usize,
    col: &'a mut [T],
) -> &'a [T] {
    let g = &s.geom;
    let xg = &x[n * s.in_image() + grp * g.c * g.hw[0] * g.hw[1]..];
    if s.is_pointwise() {
        return xg;
    }
    im2col_nchw(xg, g, col);
    col
}

fn fwd_nchw<T: Real>(x: &[T], w: &[T], s: &ConvShape, y: &mut [T]) {
    let (kl, pl, ocg) = (s.geom.k_len(), s.geom.p_len(), s.ocg());
    let col_len = if s.is_pointwise() { 0 } else { kl * pl };
    per_image(y, s, col_len, |n, y, col, par| {
        for grp in 0..s.groups {
            let cols = nchw_columns(x, s, n, grp, col);
            let lhs = mat(w, grp * ocg * kl, kl, 1);
            gemm(
                [ocg, pl, kl],
                &mut y[grp * ocg * pl..],
                pl,
                lhs,
                mat(cols, 0, pl, 1),
                false,
                par,
            );
        }
    });
}

fn fwd_nhwc<T: Real>(x: &[T], w: &[T], s: &ConvShape, y: &mut [T]) {
    if let Some(taps) = Taps::forward(s) {
        return taps.run_forward(x, w, y);
    }
    let (kl, pl, ocg) = (s.geom.k_len(), s.geom.p_len(), s.ocg());
    if s.is_pointwise() && s.groups == 1 {
        let rows = s.n * pl;
        return gemm(
            [rows, s.oc, s.c],
            y,
            s.oc,
            mat(x, 0, s.c, 1),
            mat(w, 0, 1, s.c),
            false,
            true,
        );
    }
    for_each_chunk(s, |n0, nb, col| {
        for grp in 0..s.groups {
            im2col_chunk(x, s, n0, nb, grp, col);
            let dst = &mut y[n0 * s.out_image() + grp * ocg..];
            gemm(
                [nb * pl, ocg, kl],
                dst,
                s.oc,
                mat(col, 0, kl, 1),
                mat(w, grp * ocg * kl, 1, kl),
                false,
                true,
            );
        }
    });
}

/// Output pixels of the batch up to which a pointwise NHWC forward transposes its weights before
/// the product. The product reads the OHWI weights `[oc][c]` as a K×N matrix with K contiguous,
/// which `gemm` packs slowly; with few rows to share that packing, ResNet-50's last stages at 64²
/// (batch 32) ran at 40–55 % of the FMA peak. Transposed first (16×16 register blocks), 1024→256
/// on 4² took 1.94–2.00 → 1.38 ms, 2048→512 on 2² 2.7–3.1 → 1.8 ms, 1024→512 on 4² 3.9–4.0 →
/// 2.8 ms; with 8192 rows the two ran alike.
const TRANSPOSED_WEIGHT_ROWS: usize = 2048;

/// Input channels per thread's share of [`fwd_pointwise_transposed`]'s weight transpose.
const TRANSPOSE_COLUMNS: usize = 64;

/// Whether `s` is a pointwise NHWC forward with few enough rows for [`fwd_pointwise_transposed`]
/// (f32 only: the transpose is AVX-512's).
fn takes_transposed_weights(s: &ConvShape) -> bool {
    s.channels_last
        && s.is_pointwise()
        && s.groups == 1
        && s.oc.is_multiple_of(16)
        && s.n * s.geom.p_len() <= TRANSPOSED_WEIGHT_ROWS
        && super::conv_tile::available()
}

/// y = x · wᵀ for a pointwise NHWC convolution, with wᵀ `[c][oc]` written out first.
fn fwd_pointwise_transposed(x: &[f32], w: &[f32], s: &ConvShape) -> Vec<f32> {
    let rows = s.n * s.geom.p_len();
    let mut y = alloc::zeroed(rows * s.oc);
    with_scratch(w.len(), |wt: &mut [f32]| {
        // Column blocks of w are rows of wᵀ: each thread writes its own rows. ResNet-50's 2048×512
        // weights took a quarter of their 2²-image forward transposed on one thread.
        let block = TRANSPOSE_COLUMNS * s.oc;
        wt.par_chunks_mut(block).enumerate().for_each(|(i, rows)| {
            let cols = rows.len() / s.oc;
            let first = i * TRANSPOSE_COLUMNS;
            transpose(&w[first..], s.c, [s.oc, cols], rows, s.oc);
        });
        let (lhs, rhs) = (mat(x, 0, s.c, 1), mat(wt, 0, s.oc, 1));
        gemm([rows, s.oc, s.c], &mut y, s.oc, lhs, rhs, false, true)
    });
    y
}

/// dx = conv2d's input gradient from dy and w (both in the memory format of `s`).
pub fn conv2d_bwd_data(dy: &CpuStorage, w: &CpuStorage, s: &ConvShape) -> Result<CpuStorage> {
    if let Some(d) = s.depthwise() {
        return depthwise::backward_data(dy, w, s, &d);
    }
    if let (Some(split), CpuStorage::F32(dyv), CpuStorage::F32(wv)) = (GroupedConv::new(s), dy, w) {
        return Ok(CpuStorage::F32(split.backward_data(
            dyv,
            wv,
            conv2d_bwd_data,
        )?));
    }
    if let (Some(wino), CpuStorage::F32(dyv), CpuStorage::F32(wv)) = (Winograd::new(s), dy, w) {
        return Ok(CpuStorage::F32(wino.backward_data(dyv, wv)));
    }
    if let Some(small) = SmallImageConv::new(s) {
        return Ok(float_map2!("conv2d_bwd_data", dy, w, |dyv, wv: T| {
            small.backward_data(dyv, wv)
        }));
    }
    if let (Some(direct), CpuStorage::F32(dyv), CpuStorage::F32(wv)) = (DirectConv::new(s), dy, w) {
        if let Some(dx) = direct.backward_data(dyv, wv) {
            return Ok(CpuStorage::F32(dx));
        }
    }
    Ok(float_map2!("conv2d_bwd_data", dy, w, |dyv, wv: T| {
        let mut dx = alloc::zeroed(s.n * s.in_image());
        if s.channels_last {
            bwd_data_nhwc(dyv, wv, s, &mut dx)
        } else {
            bwd_data_nchw(dyv, wv, s, &mut dx)
        }
        dx
    }))
}

fn bwd_data_nchw<T: Real>(dy: &[T], w: &[T], s: &ConvShape, dx: &mut [T]) {
    let (g, kl, pl, ocg) = (&s.geom, s.geom.k_len(), s.geom.p_len(), s.ocg());
    let plane = g.c * g.hw[0] * g.hw[1];
    per_image(dx, s, kl * pl, |n, dx, col, par| {
        for grp in 0..s.groups {
            let dyg = mat(dy, n * s.out_image() + grp * ocg * pl, pl, 1);
            let wt = mat(w, grp * ocg * kl, 1, kl);
            if s.is_pointwise() {
                gemm(
                    [kl, pl, ocg],
                    &mut dx[grp * plane..],
                    pl,
                    wt,
                    dyg,
                    false,
                    par,
                );
            } else {
                gemm([kl, pl, ocg], col, pl, wt, dyg, false, par);
                col2im_nchw(col, g, &mut dx[grp * plane..]);
            }
        }
    });
}

fn bwd_data_nhwc<T: Real>(dy: &[T], w: &[T], s: &ConvShape, dx: &mut [T]) {
    if let Some(taps) = Taps::forward(s) {
        let flipped = flip_weights(w, &taps);
        return taps.backward_data().run_forward(dy, &flipped, dx);
    }
    let (g, kl, pl, ocg) = (&s.geom, s.geom.k_len(), s.geom.p_len(), s.ocg());
    if s.is_pointwise() && s.groups == 1 {
        let rows = s.n * pl;
        return gemm(
            [rows, s.c, s.oc],
            dx,
            s.c,
            mat(dy, 0, s.oc, 1),
            mat(w, 0, s.c, 1),
            false,
            true,
        );
    }
    for_each_chunk(s, |n0, nb, col| {
        for grp in 0..s.groups {
            let dyg = mat(dy, n0 * s.out_image() + grp * ocg, s.oc, 1);
            gemm(
                [nb * pl, kl, ocg],
                col,
                kl,
                dyg,
                mat(w, grp * ocg * kl, kl, 1),
                false,
                true,
            );
            let images = &mut dx[n0 * s.in_image()..(n0 + nb) * s.in_image()];
            images
                .par_chunks_mut(s.in_image())
                .zip(col.par_chunks(pl * kl))
                .for_each(|(dxi, c)| col2im_nhwc(c, s.c, grp * g.c, g, dxi));
        }
    });
}

/// dw = conv2d's weight gradient (OIHW, or OHWI for NHWC) from x and dy.
pub fn conv2d_bwd_filter(x: &CpuStorage, dy: &CpuStorage, s: &ConvShape) -> Result<CpuStorage> {
    if let Some(d) = s.depthwise() {
        return depthwise::backward_filter(x, dy, s, &d);
    }
    if let (Some(split), CpuStorage::F32(xv), CpuStorage::F32(dyv)) = (GroupedConv::new(s), x, dy) {
        return Ok(CpuStorage::F32(split.backward_filter(
            xv,
            dyv,
            conv2d_bwd_filter,
        )?));
    }
    if let (Some(wino), CpuStorage::F32(xv), CpuStorage::F32(dyv)) = (Winograd::new(s), x, dy) {
        return Ok(CpuStorage::F32(wino.backward_filter(xv, dyv)));
    }
    if let Some(small) = SmallImageConv::new(s) {
        return Ok(float_map2!("conv2d_bwd_filter", x, dy, |xv, dyv: T| {
            small.backward_filter(xv, dyv)
        }));
    }
    if let (Some(direct), CpuStorage::F32(xv), CpuStorage::F32(dyv)) = (DirectConv::new(s), x, dy) {
        if let Some(dw) = direct.backward_filter(xv, dyv) {
            return Ok(CpuStorage::F32(dw));
        }
    }
    Ok(float_map2!("conv2d_bwd_filter", x, dy, |xv, dyv: T| {
        if s.channels_last {
            bwd_filter_nhwc(xv, dyv, s)
        } else {
            bwd_filter_nchw(xv, dyv, s)
        }
    }))
}

/// Sums `f(image, dw_accumulator, col_buffer, parallel_gemm)` over the batch into one dw;
/// `col_buffer` is scratch of `col_len` elements.
fn sum_over_images<T: Real>(
    s: &ConvShape,
    col_len: usize,
    f: impl Fn(usize, &mut [T], &mut [T], bool) + Sync + Send,
) -> Vec<T> {
    let wlen = s.oc * s.geom.k_len();
    if !s.batch_parallel() {
        let mut dw = alloc::filled(wlen, T::zero());
        with_scratch(col_len, |col| {
            (0..s.n).for_each(|n| f(n, &mut dw, col, true))
        });
        return dw;
    }
    sum_in_ranges(
        s.n,
        || vec![T::zero(); wlen],
        |dw, n| with_scratch(col_len, |col| f(n, dw, col, false)),
        |a, b| add_assign(a, &b),
    )
}

fn bwd_filter_nchw<T: Real>(x: &[T], dy: &[T], s: &ConvShape) -> Vec<T> {
    let (kl, pl, ocg) = (s.geom.k_len(), s.geom.p_len(), s.ocg());
    let col_len = if s.is_pointwise() { 0 } else { kl * pl };
    sum_over_images(s, col_len, |n, dw, col, par| {
        for grp in 0..s.groups {
            let cols = nchw_columns(x, s, n, grp, col);
            let dyg = mat(dy, n * s.out_image() + grp * ocg * pl, pl, 1);
            gemm(
                [ocg, kl, pl],
                &mut dw[grp * ocg * kl..],
                kl,
                dyg,
                mat(cols, 0, 1, pl),
                true,
                par,
            );
        }
    })
}

fn bwd_filter_nhwc<T: Real>(x: &[T], dy: &[T], s: &ConvShape) -> Vec<T> {
    if let Some(taps) = Taps::forward(s) {
        return taps.run_backward_filter(x, dy);
    }
    let (kl, pl, ocg) = (s.geom.k_len(), s.geom.p_len(), s.ocg());
    let mut dw = alloc::filled(s.oc * kl, T::zero());
    if s.is_pointwise() && s.groups == 1 {
        let rows = s.n * pl;
        gemm(
            [s.oc, s.c, rows],
            &mut dw,
            s.c,
            mat(dy, 0, 1, s.oc),
            mat(x, 0, s.c, 1),
            false,
            true,
        );
        return dw;
    }
    for_each_chunk(s, |n0, nb, col| {
        for grp in 0..s.groups {
            im2col_chunk(x, s, n0, nb, grp, col);
            let dyg = mat(dy, n0 * s.out_image() + grp * ocg, 1, s.oc);
            gemm(
                [ocg, kl, nb * pl],
                &mut dw[grp * ocg * kl..],
                kl,
                dyg,
                mat(col, 0, kl, 1),
                true,
                true,
            );
        }
    });
    dw
}

/// Column-matrix elements per chunk of images (32 MB of f32): big enough for one efficient GEMM,
/// small enough to stay cache- and memory-friendly.
const COL_BUDGET: usize = 1 << 23;

/// Runs `f(first_image, images, col_buffer)` over the batch in chunks whose NHWC column matrix
/// ([images·OH·OW, KH·KW·C/groups]) fits [`COL_BUDGET`]; one GEMM then covers a whole chunk.
fn for_each_chunk<T: Real>(s: &ConvShape, mut f: impl FnMut(usize, usize, &mut [T])) {
    let per_image = (s.geom.p_len() * s.geom.k_len()).max(1);
    let chunk = (COL_BUDGET / per_image).clamp(1, s.n.max(1));
    with_scratch(chunk * per_image, |col| {
        for n0 in (0..s.n).step_by(chunk) {
            let nb = chunk.min(s.n - n0);
            f(n0, nb, &mut col[..nb * per_image]);
        }
    });
}

/// im2col of images `n0..n0 + nb`, group `grp`, into `col` ([nb·P, K]), images in parallel.
fn im2col_chunk<T: Real>(x: &[T], s: &ConvShape, n0: usize, nb: usize, grp: usize, col: &mut [T]) {
    let per_image = s.geom.p_len() * s.geom.k_len();
    col[..nb * per_image]
        .par_chunks_mut(per_image)
        .enumerate()
        .for_each(|(i, c)| {
            im2col_nhwc(
                &x[(n0 + i) * s.in_image()..],
                s.c,
                grp * s.geom.c,
                &s.geom,
                c,
            )
        });
}
