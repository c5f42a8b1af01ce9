//! The backend boundary: every op the tensor layer needs from a device, dispatched on the storage.
//! Each method has one arm per backend (`cpu::*`, `cuda::*`); operands on different devices are
//! an error naming the op. Fused ops (BN+ReLU, softmax cross-entropy) are entries of their own,
//! and so are the multi-tensor updates over lists of buffers ([`multi_tensor`]). What each device
//! fuses natively, ops ask through [`Device::supports`].

use crate::conv_shape::ConvShape;
use crate::cpu;
use crate::cpu::pool::PoolKind;
use crate::cuda::{self, CudaStorage};
use crate::saved::{
    AttnSaved, BnGrads, BnRunning, BnSaved, BnStats, ChannelPartials, LnGrads, LnSaved,
};
use crate::{CpuStorage, DType, Device, Error, Layout, Result, Storage};
use kiln_kernels::cpu::attention::AttnDims;
use kiln_kernels::cpu::bce::BceOpts;
use kiln_kernels::cpu::bn_relu::ChannelDims;
use kiln_kernels::cpu::elementwise::{BinaryOp, CmpOp, UnaryOp};
use kiln_kernels::cpu::pool::Dims4;
use kiln_kernels::cpu::reduce::ReduceOp;

pub mod multi_tensor;
pub use multi_tensor::Flat;

/// A storage and the layout it is read through.
pub type View<'a> = (&'a Storage, &'a Layout);

/// Cross-entropy targets: I64 class indices with smoothing, or soft rows in the logits' dtype.
#[derive(Clone, Copy)]
pub enum Targets<'a> {
    /// Class indices and the smoothing factor.
    Hard(&'a Storage, f64),
    /// Target distributions.
    Soft(&'a Storage),
}

impl<'a> Targets<'a> {
    /// The storage holding the indices or the rows.
    pub fn storage(self) -> &'a Storage {
        match self {
            Targets::Hard(s, _) | Targets::Soft(s) => s,
        }
    }
}

fn mismatch(op: &'static str, a: &Storage, b: &Storage) -> Error {
    Error::DeviceMismatch {
        op,
        lhs: a.device(),
        rhs: b.device(),
    }
}

/// Wraps a backend result back into `Storage`.
trait Wrap {
    type Out;
    fn wrap(self) -> Self::Out;
}
impl Wrap for CpuStorage {
    type Out = Storage;
    fn wrap(self) -> Storage {
        Storage::Cpu(self)
    }
}
impl Wrap for CudaStorage {
    type Out = Storage;
    fn wrap(self) -> Storage {
        Storage::Cuda(self)
    }
}
impl<S: Wrap<Out = Storage>> Wrap for (S, Layout) {
    type Out = (Storage, Layout);
    fn wrap(self) -> (Storage, Layout) {
        (self.0.wrap(), self.1)
    }
}
impl<S: Wrap<Out = Storage>> Wrap for (S, S) {
    type Out = (Storage, Storage);
    fn wrap(self) -> (Storage, Storage) {
        (self.0.wrap(), self.1.wrap())
    }
}

/// Dispatches on one storage: `on!(s, |x| cpu_expr, |x| cuda_expr)`.
macro_rules! on {
    ($s:expr, |$c:ident| $cpu:expr, |$g:ident| $gpu:expr) => {
        match $s {
            Storage::Cpu($c) => $cpu.map(Wrap::wrap),
            Storage::Cuda($g) => $gpu.map(Wrap::wrap),
        }
    };
}

/// Dispatches on two storages that must share a device.
macro_rules! on2 {
    ($op:expr, $a:expr, $b:expr, |$ca:ident, $cb:ident| $cpu:expr, |$ga:ident, $gb:ident| $gpu:expr) => {
        match ($a, $b) {
            (Storage::Cpu($ca), Storage::Cpu($cb)) => $cpu.map(Wrap::wrap),
            (Storage::Cuda($ga), Storage::Cuda($gb)) => $gpu.map(Wrap::wrap),
            (a, b) => Err(mismatch($op, a, b)),
        }
    };
}

fn cpu_f64s(s: &Storage, op: &'static str) -> Result<Vec<f64>> {
    let host = s.to_cpu()?;
    let (v, _) = cpu::elementwise::cast(&host, &Layout::contiguous(&[host.len()]), DType::F64)?;
    Ok(v.as_slice::<f64>(op)?.to_vec())
}

fn cpu_vec_as(v: Vec<f64>, dtype: DType) -> Result<Storage> {
    let n = v.len();
    let (s, _) = cpu::elementwise::cast(&CpuStorage::F64(v), &Layout::contiguous(&[n]), dtype)?;
    Ok(Storage::Cpu(s))
}

impl Storage {
    /// The device holding this buffer.
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Cuda(s) => Device::Cuda(s.device().ordinal()),
        }
    }

    /// `numel` elements of `dtype` on `device`, all `value`.
    pub fn full(device: Device, dtype: DType, numel: usize, value: f64) -> Result<Storage> {
        match device {
            Device::Cpu => Ok(Storage::Cpu(cpu::elementwise::full(dtype, numel, value))),
            Device::Cuda(n) => {
                cuda::elementwise::full(&cuda::device(n)?, dtype, numel, value).map(Storage::Cuda)
            }
        }
    }

    /// A dropout keep-mask of `n` elements (see [`cpu::random::dropout_mask`]).
    pub fn dropout_mask(
        device: Device,
        dtype: DType,
        seed: u64,
        offset: u64,
        p: f64,
        n: usize,
    ) -> Result<Storage> {
        match device {
            Device::Cpu => cpu::random::dropout_mask(dtype, seed, offset, p, n).map(Storage::Cpu),
            Device::Cuda(k) => {
                cuda::random::dropout_mask(&cuda::device(k)?, dtype, seed, offset, p, n)
                    .map(Storage::Cuda)
            }
        }
    }

    /// `bytes` as a U8 buffer on `device` (on CUDA through the device's page-locked staging, on
    /// its copy stream).
    pub fn upload_u8(device: Device, bytes: &[u8]) -> Result<Storage> {
        match device {
            Device::Cpu => Ok(Storage::Cpu(CpuStorage::U8(bytes.to_vec()))),
            Device::Cuda(k) => {
                cuda::upload::upload(&cuda::device(k)?, bytes, DType::U8).map(Storage::Cuda)
            }
        }
    }

    /// A uint8 NHWC batch (this buffer, dense) normalized to `dtype`, still NHWC:
    /// (v/255 - mean\[ch\]) / std\[ch\] for `mean.len()` channels (the prefetcher's device step).
    pub fn normalize_u8_nhwc(&self, mean: &[f32], std: &[f32], dtype: DType) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => {
                let src = s.as_slice::<u8>("normalize")?;
                let mut out = vec![0f32; src.len()];
                let c = mean.len();
                kiln_kernels::cpu::layout::normalize_u8_nhwc(src, c, mean, std, &mut out);
                let n = out.len();
                let (s, _) = cpu::elementwise::cast(
                    &CpuStorage::F32(out),
                    &Layout::contiguous(&[n]),
                    dtype,
                )?;
                Ok(Storage::Cpu(s))
            }
            Storage::Cuda(s) => {
                cuda::elementwise::normalize_u8_nhwc(s, mean, std, dtype).map(Storage::Cuda)
            }
        }
    }

    /// A host copy (borrowing nothing; waits for the device).
    pub fn to_cpu(&self) -> Result<CpuStorage> {
        match self {
            Storage::Cpu(s) => Ok(s.clone()),
            Storage::Cuda(s) => s.to_cpu(),
        }
    }

    /// A copy of the whole buffer on `device`.
    pub fn to_device(&self, device: Device) -> Result<Storage> {
        match (self, device) {
            (Storage::Cpu(s), Device::Cpu) => Ok(Storage::Cpu(s.clone())),
            (s, Device::Cpu) => s.to_cpu().map(Storage::Cpu),
            (Storage::Cpu(s), Device::Cuda(n)) => {
                CudaStorage::from_cpu(&cuda::device(n)?, s).map(Storage::Cuda)
            }
            (Storage::Cuda(s), Device::Cuda(n)) => {
                s.to_device(&cuda::device(n)?).map(Storage::Cuda)
            }
        }
    }

    /// y = op(x), keeping x's memory order when dense.
    pub fn unary(&self, l: &Layout, op: UnaryOp) -> Result<(Storage, Layout)> {
        on!(self, |s| cpu::elementwise::unary(s, l, op), |s| {
            cuda::elementwise::unary(s, l, op)
        })
    }

    /// dx = dy · op'(x) given x and y = op(x).
    pub fn unary_bwd(x: View, y: View, dy: View, op: UnaryOp) -> Result<(Storage, Layout)> {
        match (x.0, y.0, dy.0) {
            (Storage::Cpu(a), Storage::Cpu(b), Storage::Cpu(c)) => {
                cpu::elementwise::unary_bwd((a, x.1), (b, y.1), (c, dy.1), op).map(Wrap::wrap)
            }
            (Storage::Cuda(a), Storage::Cuda(b), Storage::Cuda(c)) => {
                cuda::elementwise::unary_bwd((a, x.1), (b, y.1), (c, dy.1), op).map(Wrap::wrap)
            }
            (a, _, c) => Err(mismatch(op.name(), a, c)),
        }
    }

    /// out = a ⊙ b with broadcasting to `shape`.
    pub fn binary(a: View, b: View, shape: &[usize], op: BinaryOp) -> Result<(Storage, Layout)> {
        on2!(
            op.name(),
            a.0,
            b.0,
            |x, y| cpu::elementwise::binary((x, a.1), (y, b.1), shape, op),
            |x, y| cuda::elementwise::binary((x, a.1), (y, b.1), shape, op)
        )
    }

    /// out = (a cmp b) as Bool with broadcasting.
    pub fn compare(a: View, b: View, shape: &[usize], op: CmpOp) -> Result<(Storage, Layout)> {
        on2!(
            "compare",
            a.0,
            b.0,
            |x, y| cpu::elementwise::compare((x, a.1), (y, b.1), shape, op),
            |x, y| cuda::elementwise::compare((x, a.1), (y, b.1), shape, op)
        )
    }

    /// out = cond ? a : b with broadcasting.
    pub fn select(cond: View, a: View, b: View, shape: &[usize]) -> Result<(Storage, Layout)> {
        match (cond.0, a.0, b.0) {
            (Storage::Cpu(c), Storage::Cpu(x), Storage::Cpu(y)) => {
                cpu::elementwise::select((c, cond.1), (x, a.1), (y, b.1), shape).map(Wrap::wrap)
            }
            (Storage::Cuda(c), Storage::Cuda(x), Storage::Cuda(y)) => {
                cuda::elementwise::select((c, cond.1), (x, a.1), (y, b.1), shape).map(Wrap::wrap)
            }
            (c, x, y) => Err(mismatch(
                "where",
                if c.device() != x.device() { c } else { y },
                x,
            )),
        }
    }

    /// Every element converted to `dtype`, keeping a dense memory order.
    pub fn cast(&self, l: &Layout, dtype: DType) -> Result<(Storage, Layout)> {
        on!(self, |s| cpu::elementwise::cast(s, l, dtype), |s| {
            cuda::elementwise::cast(s, l, dtype)
        })
    }

    /// A copy of the elements under `l` laid out as the dense `out`.
    pub fn copy_to_layout(&self, l: &Layout, out: &Layout) -> Result<Storage> {
        on!(
            self,
            |s| Ok::<_, Error>(cpu::copy_to_layout(s, l, out)),
            |s| { cuda::copy::copy_to_layout(s, l, out) }
        )
    }

    /// Writes `src` under `ls` into this buffer under `ld` (same shape and dtype).
    pub fn copy_from(&mut self, ld: &Layout, src: View) -> Result<()> {
        let dst_device = self.device();
        match (self, src.0) {
            (Storage::Cpu(d), Storage::Cpu(s)) => cpu::elementwise::copy_into((s, src.1), (d, ld)),
            (Storage::Cuda(d), Storage::Cuda(s)) => {
                if d.dtype() != s.dtype() {
                    return Err(Error::DTypeMismatch {
                        op: "copy_",
                        lhs: d.dtype(),
                        rhs: s.dtype(),
                    });
                }
                cuda::copy::copy_between(s, src.1, d, ld)
            }
            (_, s) => Err(Error::DeviceMismatch {
                op: "copy_",
                lhs: dst_device,
                rhs: s.device(),
            }),
        }
    }

    /// Reduces `dims` away (kept as size 1 in the result's row-major layout).
    pub fn reduce(&self, l: &Layout, dims: &[usize], op: ReduceOp) -> Result<Storage> {
        on!(self, |s| cpu::reduce::reduce(s, l, dims, op), |s| {
            cuda::reduce::reduce(s, l, dims, op)
        })
    }

    /// Index of the maximum along `dim` (I64, dim removed).
    pub fn argmax(&self, l: &Layout, dim: usize) -> Result<Storage> {
        on!(self, |s| cpu::reduce::argmax(s, l, dim), |s| {
            cuda::reduce::argmax(s, l, dim)
        })
    }

    /// Batched matrix product of two rank-3 views.
    pub fn bmm(a: View, b: View) -> Result<Storage> {
        on2!(
            "matmul",
            a.0,
            b.0,
            |x, y| cpu::matmul::bmm((x, a.1), (y, b.1)),
            |x, y| cuda::matmul::bmm((x, a.1), (y, b.1))
        )
    }

    /// Convolution forward of packed x and w.
    pub fn conv2d_fwd(x: &Storage, w: &Storage, s: &ConvShape) -> Result<Storage> {
        on2!(
            "conv2d",
            x,
            w,
            |a, b| cpu::conv::conv2d_fwd(a, b, s),
            |a, b| cuda::conv::conv2d_fwd(a, b, s)
        )
    }

    /// Convolution forward of packed x and w, with the partial statistics of y for a training
    /// BN when the backend's kernel produced them (CUDA's tensor-core forward; never the CPU).
    pub fn conv2d_fwd_stats(
        x: &Storage,
        w: &Storage,
        s: &ConvShape,
    ) -> Result<(Storage, Option<ChannelPartials>)> {
        match (x, w) {
            (Storage::Cpu(a), Storage::Cpu(b)) => {
                Ok((Storage::Cpu(cpu::conv::conv2d_fwd(a, b, s)?), None))
            }
            (Storage::Cuda(a), Storage::Cuda(b)) => {
                let (y, p) = cuda::conv::conv2d_fwd_stats(a, b, s)?;
                Ok((Storage::Cuda(y), p))
            }
            (a, b) => Err(mismatch("conv2d", a, b)),
        }
    }

    /// Whether [`Storage::conv2d_fwd_bn_act`] serves a convolution of shape `s` over x with
    /// weights of x's dtype (kiln's tensor-core kernels on CUDA, f16/bf16, where cuDNN would not
    /// serve and `KILN_CONV_BN_PROLOGUE` is on); false on the CPU.
    pub fn conv_bn_prologue_serves(x: &Storage, s: &ConvShape) -> bool {
        match x {
            Storage::Cuda(x) => cuda::conv::bn_prologue_serves(x, s),
            Storage::Cpu(_) => false,
        }
    }

    /// y = conv2d(act(x·scale + shift), w) with h = act(…) computed as the kernel loads x, and
    /// with y's partial statistics when `stats` (per-channel f32 `scale`, `shift`). Only where
    /// [`Storage::conv_bn_prologue_serves`].
    pub fn conv2d_fwd_bn_act(
        x: &Storage,
        w: &Storage,
        s: &ConvShape,
        [scale, shift]: [&Storage; 2],
        relu: bool,
        stats: bool,
    ) -> Result<(Storage, Option<ChannelPartials>)> {
        let op = "conv2d_bn_act";
        let (x, w) = (x.cuda(op)?, w.cuda(op)?);
        let pro = [scale.cuda(op)?, shift.cuda(op)?];
        let (y, p) = cuda::conv::conv2d_fwd_bn_act(x, w, s, pro, relu, stats)?;
        Ok((Storage::Cuda(y), p))
    }

    /// dw of [`Storage::conv2d_fwd_bn_act`]'s convolution from x and dy, h recomputed from x.
    pub fn conv2d_bwd_filter_bn_act(
        x: &Storage,
        dy: &Storage,
        s: &ConvShape,
        [scale, shift]: [&Storage; 2],
        relu: bool,
    ) -> Result<Storage> {
        let op = "conv2d_bn_act_backward";
        let (x, dy) = (x.cuda(op)?, dy.cuda(op)?);
        let pro = [scale.cuda(op)?, shift.cuda(op)?];
        cuda::conv::conv2d_bwd_filter_bn_act(x, dy, s, pro, relu).map(Storage::Cuda)
    }

    /// Convolution input gradient.
    pub fn conv2d_bwd_data(dy: &Storage, w: &Storage, s: &ConvShape) -> Result<Storage> {
        on2!(
            "conv2d_backward",
            dy,
            w,
            |a, b| cpu::conv::conv2d_bwd_data(a, b, s),
            |a, b| cuda::conv::conv2d_bwd_data(a, b, s)
        )
    }

    /// Convolution weight gradient.
    pub fn conv2d_bwd_filter(x: &Storage, dy: &Storage, s: &ConvShape) -> Result<Storage> {
        on2!(
            "conv2d_backward",
            x,
            dy,
            |a, b| cpu::conv::conv2d_bwd_filter(a, b, s),
            |a, b| cuda::conv::conv2d_bwd_filter(a, b, s)
        )
    }

    /// Pools packed x; returns y and the argmax indices (I64) for max kinds.
    pub fn pool_fwd(&self, xd: Dims4, yd: Dims4, kind: PoolKind) -> Result<(Storage, Storage)> {
        on!(
            self,
            |s| cpu::pool::pool_fwd(s, xd, yd, kind).map(|(y, i)| (y, CpuStorage::I64(i))),
            |s| cuda::pool::pool_fwd(s, xd, yd, kind)
        )
    }

    /// Pooling input gradient.
    pub fn pool_bwd(
        dy: &Storage,
        yd: Dims4,
        xd: Dims4,
        kind: PoolKind,
        idx: &Storage,
    ) -> Result<Storage> {
        on2!(
            "pool2d_backward",
            dy,
            idx,
            |g, i| cpu::pool::pool_bwd(g, yd, xd, kind, i.as_slice::<i64>("pool2d_backward")?),
            |g, i| cuda::pool::pool_bwd(g, yd, xd, kind, i)
        )
    }

    /// Softmax (or log-softmax) over dense rows of `len`.
    pub fn softmax(&self, len: usize, log: bool) -> Result<Storage> {
        on!(self, |s| cpu::softmax::softmax(s, len, log), |s| {
            cuda::softmax::softmax(s, len, log)
        })
    }

    /// Softmax backward from y and dy.
    pub fn softmax_bwd(y: &Storage, dy: &Storage, len: usize, log: bool) -> Result<Storage> {
        on2!(
            "softmax_backward",
            y,
            dy,
            |a, b| cpu::softmax::softmax_bwd(a, b, len, log),
            |a, b| cuda::softmax::softmax_bwd(a, b, len, log)
        )
    }

    /// Per-row cross-entropy losses and log-sum-exps of dense logits \[rows, len\].
    pub fn xent_fwd(&self, len: usize, t: Targets) -> Result<(Storage, Storage)> {
        let target = t.storage();
        on2!(
            "cross_entropy",
            self,
            target,
            |x, ts| cpu::softmax::xent_fwd(x, len, &cpu_targets(t, ts)?),
            |x, ts| cuda::softmax::xent_fwd(x, len, cuda_targets(t, ts))
        )
    }

    /// dlogits = scale\[r\]·(softmax(x)·Σq - q), from the saved log-sum-exps.
    pub fn xent_bwd(
        &self,
        len: usize,
        t: Targets,
        lse: &Storage,
        scale: &Storage,
    ) -> Result<Storage> {
        let target = t.storage();
        match (self, target, lse, scale) {
            (Storage::Cpu(x), Storage::Cpu(ts), Storage::Cpu(l), Storage::Cpu(s)) => {
                cpu::softmax::xent_bwd(x, len, &cpu_targets(t, ts)?, l, s).map(Storage::Cpu)
            }
            (Storage::Cuda(x), Storage::Cuda(ts), Storage::Cuda(l), Storage::Cuda(s)) => {
                cuda::softmax::xent_bwd(x, len, cuda_targets(t, ts), l, s).map(Storage::Cuda)
            }
            (x, ts, ..) => Err(mismatch("cross_entropy_backward", x, ts)),
        }
    }

    /// Per-row sums of the binary cross-entropy with logits of dense \[rows, len\] (timm's
    /// `BinaryCrossEntropy` targets: smoothed one-hot or soft, thresholded, weighted by `o`).
    pub fn bce_fwd(&self, len: usize, t: Targets, o: BceOpts) -> Result<Storage> {
        on2!(
            "binary_cross_entropy",
            self,
            t.storage(),
            |x, ts| cpu::bce::bce_fwd(x, len, &cpu_targets(t, ts)?, o),
            |x, ts| cuda::bce::bce_fwd(x, len, cuda_targets(t, ts), o)
        )
    }

    /// dlogits = scale\[r\]·((1 - y) - lw·σ(-x)) of the binary cross-entropy.
    pub fn bce_bwd(&self, len: usize, t: Targets, o: BceOpts, scale: &Storage) -> Result<Storage> {
        match (self, t.storage(), scale) {
            (Storage::Cpu(x), Storage::Cpu(ts), Storage::Cpu(s)) => {
                cpu::bce::bce_bwd(x, len, &cpu_targets(t, ts)?, o, s).map(Storage::Cpu)
            }
            (Storage::Cuda(x), Storage::Cuda(ts), Storage::Cuda(s)) => {
                cuda::bce::bce_bwd(x, len, cuda_targets(t, ts), o, s).map(Storage::Cuda)
            }
            (x, ts, ..) => Err(mismatch("binary_cross_entropy_backward", x, ts)),
        }
    }

    /// LayerNorm over dense rows of `len`: (y, μ, rstd), γ and β in x's dtype when given.
    pub fn layer_norm_fwd(
        &self,
        len: usize,
        gamma: Option<&Storage>,
        beta: Option<&Storage>,
        eps: f64,
    ) -> Result<(Storage, Storage, Storage)> {
        const OP: &str = "layer_norm";
        match self {
            Storage::Cpu(x) => {
                let (g, b) = (opt(gamma, |s| s.cpu(OP))?, opt(beta, |s| s.cpu(OP))?);
                cpu::layer_norm::layer_norm_fwd(x, len, g, b, eps)
                    .map(|(y, m, r)| (Storage::Cpu(y), Storage::Cpu(m), Storage::Cpu(r)))
            }
            Storage::Cuda(x) => {
                let (g, b) = (opt(gamma, |s| s.cuda(OP))?, opt(beta, |s| s.cuda(OP))?);
                cuda::layer_norm::layer_norm_fwd(x, len, g, b, eps)
                    .map(|(y, m, r)| (Storage::Cuda(y), Storage::Cuda(m), Storage::Cuda(r)))
            }
        }
    }

    /// LayerNorm's backward from dy (this storage) and what the forward saved.
    pub fn layer_norm_bwd(&self, s: &LnSaved<&Storage>, len: usize) -> Result<LnGrads<Storage>> {
        const OP: &str = "layer_norm_backward";
        match self {
            Storage::Cpu(dy) => {
                let g = cpu::layer_norm::layer_norm_bwd(dy, &s.on(|t| t.cpu(OP))?, len)?;
                Ok(LnGrads {
                    dx: Storage::Cpu(g.dx),
                    dparams: g.dparams.map(|(a, b)| (Storage::Cpu(a), Storage::Cpu(b))),
                })
            }
            Storage::Cuda(dy) => {
                let g = cuda::layer_norm::layer_norm_bwd(dy, &s.on(|t| t.cuda(OP))?, len)?;
                Ok(LnGrads {
                    dx: Storage::Cuda(g.dx),
                    dparams: g.dparams.map(|(a, b)| (Storage::Cuda(a), Storage::Cuda(b))),
                })
            }
        }
    }

    /// Squeeze-excite's per-(image, channel) sums `scale · Σ_hw a·b` of packed a (b = 1 when
    /// absent), dense `[N·C]` in the statistics dtype.
    pub fn se_channel_sum(
        &self,
        b: Option<&Storage>,
        d: ChannelDims,
        scale: f64,
    ) -> Result<Storage> {
        const OP: &str = "squeeze_excite";
        on!(
            self,
            |a| cpu::squeeze_excite::channel_sum(a, opt(b, |s| s.cpu(OP))?, d, scale),
            |a| cuda::squeeze_excite::channel_sum(a, opt(b, |s| s.cuda(OP))?, d, scale)
        )
    }

    /// Squeeze-excite's `a · g[n, c] + add[n, c]` over packed a (no addend when absent); g and
    /// add are dense `[N·C]` in the statistics dtype.
    pub fn se_channel_apply(
        &self,
        g: &Storage,
        add: Option<&Storage>,
        d: ChannelDims,
    ) -> Result<Storage> {
        const OP: &str = "squeeze_excite";
        on!(
            self,
            |a| cpu::squeeze_excite::channel_apply(a, g.cpu(OP)?, opt(add, |s| s.cpu(OP))?, d),
            |a| cuda::squeeze_excite::channel_apply(a, g.cuda(OP)?, opt(add, |s| s.cuda(OP))?, d)
        )
    }

    /// Fused attention's forward over dense Q [bh, lq, d], K and V [bh, lk, d] and the optional
    /// dense bias [count, lq, lk] that `d.bias` maps: (O, lse).
    pub fn attention_fwd(
        q: &Storage,
        k: &Storage,
        v: &Storage,
        bias: Option<&Storage>,
        d: AttnDims,
    ) -> Result<(Storage, Storage)> {
        const OP: &str = "scaled_dot_product_attention";
        match q {
            Storage::Cpu(q) => {
                let b = opt(bias, |s| s.cpu(OP))?;
                cpu::attention::attention_fwd(q, k.cpu(OP)?, v.cpu(OP)?, b, d).map(Wrap::wrap)
            }
            Storage::Cuda(q) => {
                let b = opt(bias, |s| s.cuda(OP))?;
                cuda::attention::attention_fwd(q, k.cuda(OP)?, v.cuda(OP)?, b, d).map(Wrap::wrap)
            }
        }
    }

    /// Fused attention's backward: (dQ, dK, dV) from dO and what the forward saved, and with
    /// `want_dbias` the bias gradient as partials [count, groups, lq, lk] to sum over groups,
    /// with `groups` (f32 on CUDA; Q's dtype and one group on the CPU).
    pub fn attention_bwd(
        s: &AttnSaved<&Storage>,
        d: AttnDims,
        want_dbias: bool,
    ) -> Result<([Storage; 3], Option<AttnBiasGrad>)> {
        const OP: &str = "scaled_dot_product_attention_backward";
        Ok(match s.q {
            Storage::Cpu(_) => {
                let (dq, dk, dv, db) =
                    cpu::attention::attention_bwd(&s.on(|t| t.cpu(OP))?, d, want_dbias)?;
                ([dq.wrap(), dk.wrap(), dv.wrap()], db.map(|b| (b.wrap(), 1)))
            }
            Storage::Cuda(_) => {
                let (dq, dk, dv, db) =
                    cuda::attention::attention_bwd(&s.on(|t| t.cuda(OP))?, d, want_dbias)?;
                (
                    [dq.wrap(), dk.wrap(), dv.wrap()],
                    db.map(|(b, g)| (b.wrap(), g)),
                )
            }
        })
    }

    /// Batch statistics per channel and the forward's invstd, scale, shift from γ, β (dense \[C\]
    /// in the statistics' dtype) and `eps`, updating the buffers of `run` in the same pass.
    pub fn bn_stats(
        &self,
        d: ChannelDims,
        run: BnRunning,
        (gamma, beta, eps): (&Storage, &Storage, f64),
    ) -> Result<BnStats> {
        match (self, gamma, beta) {
            (Storage::Cpu(x), Storage::Cpu(g), Storage::Cpu(b)) => {
                cpu::norm::bn_stats(x, d, run, (g, b, eps))
            }
            (Storage::Cuda(x), Storage::Cuda(g), Storage::Cuda(b)) => {
                cuda::norm::bn_stats(x, d, run, (g, b, eps))
            }
            (x, g, _) => Err(mismatch("batch_norm", x, g)),
        }
    }

    /// [`Storage::bn_stats`] of the tensor `p` describes, from its partials instead of its
    /// values (`self`, the BN input, only names the device).
    pub fn bn_stats_from_partials(
        &self,
        p: &ChannelPartials,
        d: ChannelDims,
        run: BnRunning,
        (gamma, beta, eps): (&Storage, &Storage, f64),
    ) -> Result<BnStats> {
        match (self, &p.buf, gamma, beta) {
            (Storage::Cuda(x), Storage::Cuda(_), Storage::Cuda(g), Storage::Cuda(b)) => {
                cuda::norm::bn_stats_from_partials(x, &p.parts, d, run, (g, b, eps))
            }
            (x, buf, _, _) if x.device() != buf.device() => Err(mismatch("batch_norm", x, buf)),
            (x, g, _, _) if !matches!((x, g), (Storage::Cuda(_), Storage::Cuda(_))) => {
                Err(mismatch("batch_norm", x, g))
            }
            _ => Err(Error::InvalidArgument {
                op: "batch_norm",
                msg: "partial statistics exist on CUDA devices only".into(),
            }),
        }
    }

    /// y = act(x·scale\[c\] + shift\[c\] + residual) over packed x.
    pub fn bn_apply(
        &self,
        residual: Option<&Storage>,
        scale: &Storage,
        shift: &Storage,
        relu: bool,
        d: ChannelDims,
    ) -> Result<Storage> {
        match self {
            Storage::Cpu(x) => {
                let res = match residual {
                    Some(Storage::Cpu(r)) => Some(r),
                    Some(r) => return Err(mismatch("bn_add_relu", self, r)),
                    None => None,
                };
                let (sc, sh) = (
                    cpu_f64s(scale, "batch_norm")?,
                    cpu_f64s(shift, "batch_norm")?,
                );
                cpu::norm::bn_apply(x, res, &sc, &sh, relu, d).map(Storage::Cpu)
            }
            Storage::Cuda(x) => {
                let res = residual.map(|r| r.cuda("bn_add_relu")).transpose()?;
                let (sc, sh) = (scale.cuda("batch_norm")?, shift.cuda("batch_norm")?);
                cuda::norm::bn_apply(x, res, sc, sh, relu, d).map(Storage::Cuda)
            }
        }
    }

    /// The fused BN backward from dy.
    pub fn bn_backward(&self, s: &BnSaved, d: ChannelDims) -> Result<BnGrads> {
        match self {
            Storage::Cpu(dy) => {
                let (mean, invstd, gamma) = (
                    cpu_f64s(s.mean, "batch_norm")?,
                    cpu_f64s(s.invstd, "batch_norm")?,
                    cpu_f64s(s.gamma, "batch_norm")?,
                );
                let saved = cpu::norm::BnSaved {
                    x: s.x.cpu("batch_norm_backward")?,
                    y: s.y
                        .ok_or_else(|| Error::InvalidArgument {
                            op: "batch_norm_backward",
                            msg: "the CPU backward needs the forward output".into(),
                        })?
                        .cpu("batch_norm_backward")?,
                    mean: &mean,
                    invstd: &invstd,
                    gamma: &gamma,
                    relu: s.relu,
                    training: s.training,
                    has_residual: s.has_residual,
                };
                let g = cpu::norm::bn_backward(dy, &saved, d)?;
                Ok(BnGrads {
                    dx: Storage::Cpu(g.dx),
                    dres: g.dres.map(Storage::Cpu),
                    dgamma: cpu_vec_as(g.dgamma, dy.dtype())?,
                    dbeta: cpu_vec_as(g.dbeta, dy.dtype())?,
                })
            }
            Storage::Cuda(dy) => cuda::norm::bn_backward(dy, s, d),
        }
    }
}

/// An error when this thread's work is being recorded for replay (a CUDA graph capture): `what`
/// draws from the host's random stream, whose offset a replay would freeze. The CPU records
/// nothing.
pub fn refuse_host_draw(what: &str) -> Result<()> {
    cuda::capture::refuse_host_draw(what)
}

/// The attention bias gradient's partials [count, groups, lq, lk] and `groups`.
pub type AttnBiasGrad = (Storage, usize);

/// An optional operand on one backend, taken out by `pick`.
fn opt<'a, S>(
    s: Option<&'a Storage>,
    pick: impl Fn(&'a Storage) -> Result<S>,
) -> Result<Option<S>> {
    s.map(pick).transpose()
}

fn cpu_targets<'a>(t: Targets, ts: &'a CpuStorage) -> Result<cpu::softmax::XentTargets<'a>> {
    Ok(match t {
        Targets::Hard(_, smoothing) => {
            cpu::softmax::XentTargets::Hard(ts.as_slice::<i64>("cross_entropy")?, smoothing)
        }
        Targets::Soft(_) => cpu::softmax::XentTargets::Soft(ts),
    })
}

fn cuda_targets<'a>(t: Targets, ts: &'a CudaStorage) -> cuda::softmax::Targets<'a> {
    match t {
        Targets::Hard(_, smoothing) => cuda::softmax::Targets::Hard(ts, smoothing),
        Targets::Soft(_) => cuda::softmax::Targets::Soft(ts),
    }
}
