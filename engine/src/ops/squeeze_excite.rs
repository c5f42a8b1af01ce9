//! Squeeze-excite as one fused op (timm's `SEModule` and EfficientNet/MobileNetV3
//! `SqueezeExcite`): out = x · gate(W2·act(W1·mean_hw(x) + b1) + b2), NCHW or NHWC.
//!
//! The forward reads x twice (the pool, the scale) and writes out once; the backward reads x
//! once and dout twice (dg = Σ_hw dout·x, then dx = dout·g + ds/HW) and writes dx once. The
//! FC layers act on `[N, C]` vectors in the statistics dtype (f32 for half activations) through
//! ordinary ops inside the one autograd node.

use super::norm::channel_dims;
use super::record_node;
use crate::trace::{self, Op};
use crate::{Capability, DType, Error, Layout, Result, Storage, Tensor};
use kiln_kernels::cpu::elementwise::UnaryOp;

const OP: &str = "squeeze_excite";

/// The parameters of a squeeze-excite, as timm's two biased 1×1 convs, and its activations.
#[derive(Debug, Clone, Copy)]
pub struct SqueezeExcite<'a> {
    /// Reduction weight `[R, C, 1, 1]` (`fc1` / `conv_reduce`).
    pub w1: &'a Tensor,
    /// Reduction bias `[R]`.
    pub b1: &'a Tensor,
    /// Expansion weight `[C, R, 1, 1]` (`fc2` / `conv_expand`).
    pub w2: &'a Tensor,
    /// Expansion bias `[C]`.
    pub b2: &'a Tensor,
    /// Activation between the FC layers (ReLU, SiLU, ...).
    pub act: UnaryOp,
    /// Gate on the expansion (sigmoid, hard sigmoid, ...).
    pub gate: UnaryOp,
}

impl Tensor {
    /// The fused squeeze-excite of x `[N, C, H, W]` (see [`SqueezeExcite`]); the output keeps
    /// x's memory format.
    pub fn squeeze_excite(&self, p: SqueezeExcite) -> Result<Tensor> {
        trace::traced(
            || Op::SqueezeExcite {
                act: p.act,
                gate: p.gate,
            },
            [self, p.w1, p.b1, p.w2, p.b2],
            || {
                check_shapes(self.shape(), &p)?;
                if self.device().supports(Capability::NativeSqueezeExcite) {
                    return se_core(self, &p);
                }
                let inputs = [self, p.w1, p.b1, p.w2, p.b2];
                Tensor::in_compute_precision(&inputs, |t| {
                    let q = SqueezeExcite {
                        w1: &t[1],
                        b1: &t[2],
                        w2: &t[3],
                        b2: &t[4],
                        ..p
                    };
                    se_core(&t[0], &q)
                })
            },
        )
    }
}

fn check_shapes(x: &[usize], p: &SqueezeExcite) -> Result<()> {
    let &[_, c, _, _] = x else {
        return Err(Error::BadShape {
            op: OP,
            shape: x.to_vec(),
            msg: "needs [N, C, H, W]".into(),
        });
    };
    let r = p.b1.numel();
    let expect = [
        (p.w1, vec![r, c, 1, 1]),
        (p.b1, vec![r]),
        (p.w2, vec![c, r, 1, 1]),
        (p.b2, vec![c]),
    ];
    for (t, want) in expect {
        if t.shape() != want {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: want,
                rhs: t.shape().to_vec(),
            });
        }
    }
    Ok(())
}

/// A parameter on x's device as a detached `shape` matrix of `dtype`.
fn param(x: &Tensor, t: &Tensor, shape: &[usize], dtype: DType) -> Result<Tensor> {
    x.on_my_device(OP, t)?
        .detach()
        .to_dtype(dtype)?
        .reshape(shape)?
        .contiguous()
}

/// What the backward reads of the small FC layers (all `[N, ·]` in the statistics dtype).
struct Fc {
    s: Tensor,
    pre: Tensor,
    h: Tensor,
    z: Tensor,
    g: Tensor,
    w1: Tensor,
    w2: Tensor,
}

impl Fc {
    /// s → pre = s·W1ᵀ + b1 → h = act(pre) → z = h·W2ᵀ + b2 → g = gate(z), without a tape,
    /// in s's dtype even under autocast (the apply kernel reads g in the statistics dtype).
    fn forward(x: &Tensor, s: Tensor, p: &SqueezeExcite) -> Result<Fc> {
        let _f32 = crate::amp::suspend_autocast();
        let (c, r, dt) = (s.shape()[1], p.b1.numel(), s.dtype());
        let (w1, w2) = (param(x, p.w1, &[r, c], dt)?, param(x, p.w2, &[c, r], dt)?);
        let pre = s.matmul(&w1.t()?)?.add(&param(x, p.b1, &[1, r], dt)?)?;
        let h = pre.unary(p.act)?;
        let z = h.matmul(&w2.t()?)?.add(&param(x, p.b2, &[1, c], dt)?)?;
        let g = z.unary(p.gate)?;
        Ok(Fc {
            s,
            pre,
            h,
            z,
            g,
            w1,
            w2,
        })
    }

    /// From dg `[N, C]`: ds `[N, C]` and the gradients of W1, b1, W2, b2 (as matrices/vectors).
    fn backward(
        &self,
        dg: &Tensor,
        (act, gate): (UnaryOp, UnaryOp),
    ) -> Result<(Tensor, [Tensor; 4])> {
        let _f32 = crate::amp::suspend_autocast();
        let dz = unary_grad(&self.z, &self.g, dg, gate)?;
        let dw2 = dz.t()?.matmul(&self.h)?;
        let dh = dz.matmul(&self.w2)?;
        let dpre = unary_grad(&self.pre, &self.h, &dh, act)?;
        let dw1 = dpre.t()?.matmul(&self.s)?;
        let ds = dpre.matmul(&self.w1)?;
        let (db1, db2) = (dpre.sum(0, false)?, dz.sum(0, false)?);
        Ok((ds, [dw1, db1, dw2, db2]))
    }
}

/// dy·op'(x) given y = op(x), without a tape.
fn unary_grad(x: &Tensor, y: &Tensor, dy: &Tensor, op: UnaryOp) -> Result<Tensor> {
    let (d, l) = Storage::unary_bwd(
        (&x.storage(), x.layout()),
        (&y.storage(), y.layout()),
        (&dy.contiguous()?.storage(), &Layout::contiguous(dy.shape())),
        op,
    )?;
    Ok(Tensor::plain(d, l))
}

/// The fused op on x's own backend and dtype, recording its backward.
fn se_core(x: &Tensor, p: &SqueezeExcite) -> Result<Tensor> {
    let (d, format) = channel_dims(x);
    let x = x.packed(format)?;
    let nc = Layout::contiguous(&[d.n, d.c]);
    let s = x
        .storage()
        .se_channel_sum(None, d, 1.0 / d.hw.max(1) as f64)?;
    let fc = Fc::forward(&x, Tensor::plain(s, nc.clone()), p)?;
    let out = x.storage().se_channel_apply(&fc.g.storage(), None, d)?;
    let layout = x.layout().clone();
    let (xd, pd) = (x.detach(), [p.w1, p.b1, p.w2, p.b2].map(Tensor::detach));
    let ops = (p.act, p.gate);
    let node = record_node(OP, &[&x, p.w1, p.b1, p.w2, p.b2], move |dout| {
        let dout = dout.to_dtype(xd.dtype())?.packed(format)?;
        let dg = dout.storage().se_channel_sum(Some(&xd.storage()), d, 1.0)?;
        let (ds, dparams) = fc.backward(&Tensor::plain(dg, nc.clone()), ops)?;
        let ds = ds.mul_scalar(1.0 / d.hw.max(1) as f64)?.contiguous()?;
        let dx = dout
            .storage()
            .se_channel_apply(&fc.g.storage(), Some(&ds.storage()), d)?;
        let mut grads = vec![Some(Tensor::plain(dx, xd.layout().clone()))];
        for (g, t) in dparams.into_iter().zip(&pd) {
            grads.push(Some(g.reshape(t.shape())?.to_dtype(t.dtype())?));
        }
        Ok(grads)
    });
    Ok(Tensor::result(out, layout, node))
}
