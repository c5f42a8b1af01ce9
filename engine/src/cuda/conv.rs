//! 2-d convolutions on the device over packed NCHW or NHWC tensors, weights OIHW or OHWI to
//! match: cuDNN when it is loaded and enabled (its graph API first when switched on, then its
//! legacy API), else the built-in kernels: `depthwise.cu` for
//! depthwise forward and input gradient, the implicit-GEMM and direct kernels of `conv.cu` for
//! the rest, the implicit GEMMs on tensor cores (`conv_tc.cu`) for f16/bf16 on sm_80+ unless
//! switched off (`KILN_TENSOR_CORES=0`).

use super::cudnn_key::Op;
use super::elementwise::float_ty;
use super::{cudnn, cudnn_graph, switch, CudaStorage};
use crate::conv_shape::ConvShape;
use crate::saved::ChannelPartials;
use crate::{DType, Error, Result, Storage};
use kiln_kernels::cpu::depthwise::Depthwise;
use kiln_kernels::cuda::conv::{self as k, ConvDims, ConvPass};
use kiln_kernels::cuda::gemm::sm_count;
use kiln_kernels::cuda::{depthwise as dw, gemm_tc, DevPtr};

fn dims(s: &ConvShape, kernel: [usize; 2]) -> ConvDims {
    let g = &s.geom;
    ConvDims {
        n: s.n,
        c: s.c,
        h: g.hw[0],
        w: g.hw[1],
        oc: s.oc,
        kh: kernel[0],
        kw: kernel[1],
        oh: g.out[0],
        ow: g.out[1],
        stride: g.stride,
        padding: g.pad,
        dilation: g.dil,
        groups: s.groups,
        channels_last: s.channels_last,
    }
}

/// The depthwise kernels' view of `s`, when it is depthwise and they take it.
fn depthwise(s: &ConvShape) -> Option<Depthwise> {
    s.depthwise().filter(dw::supports)
}

fn conv_ty(a: &CudaStorage, b: &CudaStorage) -> Result<&'static str> {
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch {
            op: "conv2d",
            lhs: a.dtype(),
            rhs: b.dtype(),
        });
    }
    float_ty("conv2d", a.dtype())
}

/// Runs `pass` on the built-in kernels with the plan [`ConvDims::plan`] picks, tensor cores
/// where supported and switched on; the operands are the kernels' launcher order.
fn builtin(
    s: &CudaStorage,
    ty: &str,
    d: &ConvDims,
    pass: ConvPass,
    (a, b, out): (DevPtr, DevPtr, DevPtr),
) -> Result<()> {
    let kern = s.device().kernels();
    let tc = switch::tensor_cores_enabled() && gemm_tc::supported(kern, ty);
    let plan = d.plan(ty, pass, sm_count(kern), tc);
    k::conv2d_planned(kern, ty, d, (pass, &plan), (a, b, out))?;
    Ok(())
}

/// y = conv2d(x, w).
pub fn conv2d_fwd(x: &CudaStorage, w: &CudaStorage, s: &ConvShape) -> Result<CudaStorage> {
    Ok(forward(x, w, s, false)?.0)
}

/// y = conv2d(x, w) and, with `KILN_CONV_BN_STATS` on, the per-channel partial statistics of y
/// for the training BatchNorm that reads y next: from cuDNN's conv+genstats graph with the graph
/// API on (f16/bf16 NHWC), else from kiln's tensor-core forward's epilogue where that kernel
/// serves (cuDNN declined or is off, f16/bf16 on sm_80+, wide groups).
pub fn conv2d_fwd_stats(
    x: &CudaStorage,
    w: &CudaStorage,
    s: &ConvShape,
) -> Result<(CudaStorage, Option<ChannelPartials>)> {
    forward(x, w, s, switch::conv_bn_stats_enabled())
}

/// The forward on the first implementation that serves it; with `stats`, the tensor-core
/// kernel with the statistics epilogue where it is the one.
fn forward(
    x: &CudaStorage,
    w: &CudaStorage,
    s: &ConvShape,
    stats: bool,
) -> Result<(CudaStorage, Option<ChannelPartials>)> {
    let ty = conv_ty(x, w)?;
    let y = CudaStorage::alloc(x.device(), x.dtype(), s.out_shape().iter().product())?;
    if stats {
        if let Some(p) = cudnn_graph::genstats::forward_stats(x, w, &y, s)? {
            return Ok((y, Some(p)));
        }
    }
    if cudnn::convolve(Op::Forward, [x, w, &y], s)? {
        return Ok((y, None));
    }
    let ptrs = (x.ptr(), w.ptr(), y.ptr());
    if let Some(d) = depthwise(s) {
        dw::forward(x.device().kernels(), ty, &d, s.channels_last, ptrs)?;
        return Ok((y, None));
    }
    let d = dims(s, s.geom.k);
    let kern = x.device().kernels();
    if stats && switch::tensor_cores_enabled() && k::fwd_stats_supported(kern, ty, &d) {
        let buf = CudaStorage::alloc(x.device(), DType::F32, k::fwd_stats_len(&d))?;
        k::conv2d_fwd_stats(kern, ty, &d, ptrs, buf.ptr())?;
        let parts = k::fwd_stats_partials(&d, buf.ptr());
        let partials = ChannelPartials {
            buf: Storage::Cuda(buf),
            parts,
        };
        return Ok((y, Some(partials)));
    }
    builtin(x, ty, &d, ConvPass::Fwd, ptrs)?;
    Ok((y, None))
}

/// Whether [`conv2d_fwd_bn_act`] serves `s` over x (and weights of its dtype): the prologue
/// switch on, cuDNN not the one that would run, not depthwise, and kiln's tensor-core forward the
/// plan (f16/bf16 on sm_80+, wide groups; the filter gradient's plan follows the forward's).
pub fn bn_prologue_serves(x: &CudaStorage, s: &ConvShape) -> bool {
    let Ok(ty) = float_ty("conv2d", x.dtype()) else {
        return false;
    };
    let kern = x.device().kernels();
    switch::conv_bn_prologue_enabled()
        && switch::tensor_cores_enabled()
        && !cudnn::may_serve(x.device(), x.dtype(), s)
        && depthwise(s).is_none()
        && k::fwd_stats_supported(kern, ty, &dims(s, s.geom.k))
}

/// The f32 per-channel vectors of a prologue as the kernels take them.
fn prologue([scale, shift]: [&CudaStorage; 2], relu: bool) -> Result<k::BnPrologue> {
    if scale.dtype() != DType::F32 || shift.dtype() != DType::F32 {
        return Err(Error::UnsupportedDType {
            op: "conv2d_bn_act",
            dtype: scale.dtype(),
        });
    }
    Ok(k::BnPrologue {
        scale: scale.ptr(),
        shift: shift.ptr(),
        relu,
    })
}

/// y = conv2d(act(x·scale + shift), w) where [`bn_prologue_serves`], h never stored; with
/// `stats` (and `KILN_CONV_BN_STATS` on), y's partial statistics from the same kernel.
pub fn conv2d_fwd_bn_act(
    x: &CudaStorage,
    w: &CudaStorage,
    s: &ConvShape,
    affine: [&CudaStorage; 2],
    relu: bool,
    stats: bool,
) -> Result<(CudaStorage, Option<ChannelPartials>)> {
    let ty = conv_ty(x, w)?;
    let pro = prologue(affine, relu)?;
    let y = CudaStorage::alloc(x.device(), x.dtype(), s.out_shape().iter().product())?;
    let d = dims(s, s.geom.k);
    let kern = x.device().kernels();
    let ptrs = (x.ptr(), w.ptr(), y.ptr());
    if stats && switch::conv_bn_stats_enabled() {
        let buf = CudaStorage::alloc(x.device(), DType::F32, k::fwd_stats_len(&d))?;
        k::conv2d_fwd_bn_act(kern, ty, &d, ptrs, &pro, Some(buf.ptr()))?;
        let parts = k::fwd_stats_partials(&d, buf.ptr());
        let partials = ChannelPartials {
            buf: Storage::Cuda(buf),
            parts,
        };
        return Ok((y, Some(partials)));
    }
    k::conv2d_fwd_bn_act(kern, ty, &d, ptrs, &pro, None)?;
    Ok((y, None))
}

/// dw of [`conv2d_fwd_bn_act`]'s convolution from x and dy, the prologue recomputing h from x.
pub fn conv2d_bwd_filter_bn_act(
    x: &CudaStorage,
    dy: &CudaStorage,
    s: &ConvShape,
    affine: [&CudaStorage; 2],
    relu: bool,
) -> Result<CudaStorage> {
    let ty = conv_ty(x, dy)?;
    let pro = prologue(affine, relu)?;
    let g = &s.geom;
    let dw = CudaStorage::alloc(x.device(), x.dtype(), s.oc * g.c * g.k[0] * g.k[1])?;
    let ptrs = (x.ptr(), dy.ptr(), dw.ptr());
    k::conv2d_bwd_filter_bn_act(x.device().kernels(), ty, &dims(s, g.k), ptrs, &pro)?;
    Ok(dw)
}

/// dx from dy and w.
pub fn conv2d_bwd_data(dy: &CudaStorage, w: &CudaStorage, s: &ConvShape) -> Result<CudaStorage> {
    let ty = conv_ty(dy, w)?;
    let g = &s.geom;
    let dx = CudaStorage::alloc(dy.device(), dy.dtype(), s.n * s.c * g.hw[0] * g.hw[1])?;
    if cudnn::convolve(Op::BackwardData, [&dx, w, dy], s)? {
        return Ok(dx);
    }
    if let Some(d) = depthwise(s) {
        let ptrs = (dy.ptr(), w.ptr(), dx.ptr());
        dw::backward_data(dy.device().kernels(), ty, &d, s.channels_last, ptrs)?;
        return Ok(dx);
    }
    let ptrs = (dy.ptr(), w.ptr(), dx.ptr());
    builtin(dy, ty, &dims(s, g.k), ConvPass::BwdData, ptrs)?;
    Ok(dx)
}

/// dw from x and dy.
pub fn conv2d_bwd_filter(x: &CudaStorage, dy: &CudaStorage, s: &ConvShape) -> Result<CudaStorage> {
    let ty = conv_ty(x, dy)?;
    let g = &s.geom;
    let dw = CudaStorage::alloc(x.device(), x.dtype(), s.oc * g.c * g.k[0] * g.k[1])?;
    if cudnn::convolve(Op::BackwardFilter, [x, &dw, dy], s)? {
        return Ok(dw);
    }
    let ptrs = (x.ptr(), dy.ptr(), dw.ptr());
    builtin(x, ty, &dims(s, g.k), ConvPass::BwdFilter, ptrs)?;
    Ok(dw)
}
