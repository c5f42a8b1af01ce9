//! Elementwise unary, binary, comparison and select ops. Twin of `cuda/elementwise.cu`.
//!
//! Unary ops are written once as `f(x)` and `df(x, y)` (y = f(x)); binary ops take each operand's
//! strides so broadcasts need no copy. Outputs are always written densely, row-major over `shape`.

use super::fast_math::{exp, normal_cdf};
use super::{c, Real, PAR_GRAIN};
use rayon::prelude::*;

/// A unary op, with its scalar parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    /// -x
    Neg,
    /// e^x
    Exp,
    /// ln x
    Log,
    /// √x
    Sqrt,
    /// 1/√x
    Rsqrt,
    /// |x|
    Abs,
    /// max(x, 0)
    Relu,
    /// 1/(1+e^-x)
    Sigmoid,
    /// tanh x
    Tanh,
    /// x·sigmoid(x)
    Silu,
    /// x·Φ(x), the exact (erf) GELU
    Gelu,
    /// x·relu6(x+3)/6
    HardSwish,
    /// relu6(x+3)/6
    HardSigmoid,
    /// 1/x
    Recip,
    /// x²
    Square,
    /// x^e
    Powf(f64),
    /// min(max(x, lo), hi)
    Clamp(f64, f64),
    /// a·x + b
    Affine(f64, f64),
    /// x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))/2, torch's GELU with `approximate='tanh'`
    GeluTanh,
}

impl UnaryOp {
    /// The op's name, as errors and kernel symbols use it.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Abs => "abs",
            UnaryOp::Relu => "relu",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Silu => "silu",
            UnaryOp::Gelu => "gelu",
            UnaryOp::HardSwish => "hardswish",
            UnaryOp::HardSigmoid => "hardsigmoid",
            UnaryOp::Recip => "recip",
            UnaryOp::Square => "square",
            UnaryOp::Powf(_) => "powf",
            UnaryOp::Clamp(..) => "clamp",
            UnaryOp::Affine(..) => "affine",
            UnaryOp::GeluTanh => "gelu_tanh",
        }
    }

    /// f(x).
    #[inline(always)]
    pub fn f<T: Real>(self, x: T) -> T {
        let (zero, one) = (T::zero(), T::one());
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Rsqrt => one / x.sqrt(),
            UnaryOp::Abs => x.abs(),
            UnaryOp::Relu => x.max(zero),
            UnaryOp::Sigmoid => sigmoid(x),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Silu => x * sigmoid(x),
            UnaryOp::Gelu => x * normal_cdf(x),
            UnaryOp::HardSwish => x * relu6(x + c(3.0)) / c(6.0),
            UnaryOp::HardSigmoid => relu6(x + c(3.0)) / c(6.0),
            UnaryOp::Recip => one / x,
            UnaryOp::Square => x * x,
            UnaryOp::Powf(e) => x.powf(c(e)),
            UnaryOp::Clamp(lo, hi) => x.max(c(lo)).min(c(hi)),
            UnaryOp::Affine(a, b) => x * c(a) + c(b),
            UnaryOp::GeluTanh => c::<T>(0.5) * x * (one + gelu_tanh_arg(x).tanh()),
        }
    }

    /// df/dx at x, given y = f(x).
    #[inline(always)]
    pub fn df<T: Real>(self, x: T, y: T) -> T {
        let (zero, one) = (T::zero(), T::one());
        let step = |cond: bool| if cond { one } else { zero };
        match self {
            UnaryOp::Neg => -one,
            UnaryOp::Exp => y,
            UnaryOp::Log => one / x,
            UnaryOp::Sqrt => c::<T>(0.5) / y,
            UnaryOp::Rsqrt => c::<T>(-0.5) * y * y * y,
            UnaryOp::Abs => x.signum() * step(x != zero),
            UnaryOp::Relu => step(x > zero),
            UnaryOp::Sigmoid => y * (one - y),
            UnaryOp::Tanh => one - y * y,
            UnaryOp::Silu => {
                let s = sigmoid(x);
                s + x * s * (one - s)
            }
            UnaryOp::Gelu => normal_cdf(x) + x * exp(-x * x * c(0.5)) * c(FRAC_1_SQRT_2PI),
            UnaryOp::HardSwish if x < c(-3.0) => zero,
            UnaryOp::HardSwish if x > c(3.0) => one,
            UnaryOp::HardSwish => (x + x + c(3.0)) / c(6.0),
            UnaryOp::HardSigmoid => step(x > c(-3.0) && x < c(3.0)) / c(6.0),
            UnaryOp::Recip => -y * y,
            UnaryOp::Square => x + x,
            UnaryOp::Powf(e) => c::<T>(e) * x.powf(c(e - 1.0)),
            UnaryOp::Clamp(lo, hi) => step(x >= c(lo) && x <= c(hi)),
            UnaryOp::Affine(a, _) => c(a),
            UnaryOp::GeluTanh => {
                // d/dx of x·(1 + t)/2 with t = tanh(u), u' = √(2/π)·(1 + 3·0.044715·x²).
                let t = gelu_tanh_arg(x).tanh();
                let du = c::<T>(GELU_TANH_K) * (one + c::<T>(3.0 * GELU_TANH_CUBIC) * x * x);
                c::<T>(0.5) * (one + t) + c::<T>(0.5) * x * (one - t * t) * du
            }
        }
    }
}

/// 1/√(2π), the standard normal density at 0 (a product: a division by √(2π) took a divide per
/// element).
const FRAC_1_SQRT_2PI: f64 = 0.3989422804014327;

/// √(2/π), the tanh GELU's scale.
const GELU_TANH_K: f64 = 0.7978845608028654;
/// The cubic coefficient of the tanh GELU.
const GELU_TANH_CUBIC: f64 = 0.044715;

/// √(2/π)·(x + 0.044715·x³), the argument of the tanh GELU's tanh.
#[inline(always)]
fn gelu_tanh_arg<T: Real>(x: T) -> T {
    c::<T>(GELU_TANH_K) * (x + c::<T>(GELU_TANH_CUBIC) * x * x * x)
}

#[inline(always)]
fn sigmoid<T: Real>(x: T) -> T {
    T::one() / (T::one() + exp(-x))
}

#[inline(always)]
fn relu6<T: Real>(x: T) -> T {
    x.max(T::zero()).min(c(6.0))
}

/// y = f(x) over dense slices.
pub fn unary_fwd<T: Real>(op: UnaryOp, x: &[T], y: &mut [T]) {
    // The transcendental activations get a loop each with the op a constant, so the op's match
    // folds away and the loop vectorizes; a loop over a runtime `op` stays scalar.
    match op {
        UnaryOp::Gelu => map_fwd(x, y, |v| UnaryOp::Gelu.f(v)),
        UnaryOp::Silu => map_fwd(x, y, |v| UnaryOp::Silu.f(v)),
        UnaryOp::Sigmoid => map_fwd(x, y, |v| UnaryOp::Sigmoid.f(v)),
        UnaryOp::HardSwish => map_fwd(x, y, |v| UnaryOp::HardSwish.f(v)),
        UnaryOp::HardSigmoid => map_fwd(x, y, |v| UnaryOp::HardSigmoid.f(v)),
        _ => map_fwd(x, y, |v| op.f(v)),
    }
}

/// y = f(x) elementwise, in parallel blocks of [`PAR_GRAIN`].
#[inline(always)]
fn map_fwd<T: Real>(x: &[T], y: &mut [T], f: impl Fn(T) -> T + Sync) {
    y.par_chunks_mut(PAR_GRAIN)
        .zip(x.par_chunks(PAR_GRAIN))
        .for_each(|(y, x)| {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = f(x);
            }
        });
}

/// dx = dy · f'(x) over dense slices.
pub fn unary_bwd<T: Real>(op: UnaryOp, x: &[T], y: &[T], dy: &[T], dx: &mut [T]) {
    // One loop per hot op, as in `unary_fwd`.
    let xy = (x, y);
    match op {
        UnaryOp::Gelu => map_bwd(xy, dy, dx, |x, y| UnaryOp::Gelu.df(x, y)),
        UnaryOp::Silu => map_bwd(xy, dy, dx, |x, y| UnaryOp::Silu.df(x, y)),
        UnaryOp::Sigmoid => map_bwd(xy, dy, dx, |x, y| UnaryOp::Sigmoid.df(x, y)),
        UnaryOp::HardSwish => map_bwd(xy, dy, dx, |x, y| UnaryOp::HardSwish.df(x, y)),
        UnaryOp::HardSigmoid => map_bwd(xy, dy, dx, |x, y| UnaryOp::HardSigmoid.df(x, y)),
        _ => map_bwd(xy, dy, dx, |x, y| op.df(x, y)),
    }
}

/// dx = dy · df(x, y) elementwise, in parallel blocks of [`PAR_GRAIN`].
#[inline(always)]
fn map_bwd<T: Real>((x, y): (&[T], &[T]), dy: &[T], dx: &mut [T], df: impl Fn(T, T) -> T + Sync) {
    dx.par_chunks_mut(PAR_GRAIN)
        .zip(x.par_chunks(PAR_GRAIN))
        .zip(y.par_chunks(PAR_GRAIN).zip(dy.par_chunks(PAR_GRAIN)))
        .for_each(|((dx, x), (y, dy))| {
            let inputs = x.iter().zip(y).zip(dy);
            for (dx, ((&x, &y), &dy)) in dx.iter_mut().zip(inputs) {
                *dx = dy * df(x, y);
            }
        });
}

/// A binary arithmetic op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// a + b
    Add,
    /// a - b
    Sub,
    /// a · b
    Mul,
    /// a / b
    Div,
    /// max(a, b)
    Maximum,
    /// min(a, b)
    Minimum,
}

impl BinaryOp {
    /// The op's name.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
        }
    }

    /// a ⊙ b; maximum and minimum propagate NaN, as `torch.maximum`.
    #[inline(always)]
    pub fn f<T: Real>(self, a: T, b: T) -> T {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Maximum if a.is_nan() || b.is_nan() => a + b,
            BinaryOp::Minimum if a.is_nan() || b.is_nan() => a + b,
            BinaryOp::Maximum => a.max(b),
            BinaryOp::Minimum => a.min(b),
        }
    }
}

/// A comparison producing 0/1 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// a == b
    Eq,
    /// a != b
    Ne,
    /// a < b
    Lt,
    /// a <= b
    Le,
    /// a > b
    Gt,
    /// a >= b
    Ge,
}

impl CmpOp {
    #[inline(always)]
    fn f<T: PartialOrd>(self, a: T, b: T) -> u8 {
        (match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }) as u8
    }
}

/// A strided operand: storage, strides per output dim (0 where broadcast) and offset.
#[derive(Clone, Copy)]
pub struct Strided<'a, T> {
    /// The storage.
    pub data: &'a [T],
    /// Strides per dimension of the output shape.
    pub strides: &'a [usize],
    /// Offset of element 0.
    pub offset: usize,
}

impl<T: Copy> Strided<'_, T> {
    /// Offset of the first element of output row `row` (rows run over the last dim).
    #[inline]
    fn row_start(&self, shape: &[usize], mut row: usize) -> usize {
        let mut off = self.offset;
        for d in (0..shape.len().saturating_sub(1)).rev() {
            off += (row % shape[d]) * self.strides[d];
            row /= shape[d];
        }
        off
    }

    #[inline(always)]
    fn inner_stride(&self) -> usize {
        self.strides.last().copied().unwrap_or(0)
    }
}

/// Runs `f(out_row, row_index, a_row_start, a_step, b_row_start, b_step)` over each output row, in parallel.
fn for_each_row2<T: Copy + Sync, O: Send>(
    shape: &[usize],
    a: Strided<T>,
    b: Strided<T>,
    out: &mut [O],
    f: impl Fn(&mut [O], usize, usize, usize, usize, usize) + Sync,
) {
    let inner = shape.last().copied().unwrap_or(1).max(1);
    let rows_per_task = (PAR_GRAIN / inner).max(1);
    out.par_chunks_mut(inner * rows_per_task)
        .enumerate()
        .for_each(|(task, chunk)| {
            for (i, row) in chunk.chunks_mut(inner).enumerate() {
                let r = task * rows_per_task + i;
                f(
                    row,
                    r,
                    a.row_start(shape, r),
                    a.inner_stride(),
                    b.row_start(shape, r),
                    b.inner_stride(),
                );
            }
        });
}

/// out = a ⊙ b, broadcasting through strides; `out` is dense row-major over `shape`.
pub fn binary<T: Real>(op: BinaryOp, shape: &[usize], a: Strided<T>, b: Strided<T>, out: &mut [T]) {
    // One loop per op, each with the op a constant, so every loop vectorizes.
    use BinaryOp::*;
    match op {
        Add => binary_with(shape, a, b, out, |x, y| Add.f(x, y)),
        Sub => binary_with(shape, a, b, out, |x, y| Sub.f(x, y)),
        Mul => binary_with(shape, a, b, out, |x, y| Mul.f(x, y)),
        Div => binary_with(shape, a, b, out, |x, y| Div.f(x, y)),
        Maximum => binary_with(shape, a, b, out, |x, y| Maximum.f(x, y)),
        Minimum => binary_with(shape, a, b, out, |x, y| Minimum.f(x, y)),
    }
}

fn binary_with<T: Real>(
    shape: &[usize],
    a: Strided<T>,
    b: Strided<T>,
    out: &mut [T],
    f: impl Fn(T, T) -> T + Sync,
) {
    for_each_row2(shape, a, b, out, |row, _, ia, sa, ib, sb| {
        let n = row.len();
        match (sa, sb) {
            (1, 1) => {
                let (a, b) = (&a.data[ia..ia + n], &b.data[ib..ib + n]);
                for ((o, &x), &y) in row.iter_mut().zip(a).zip(b) {
                    *o = f(x, y);
                }
            }
            (1, 0) => {
                let y = b.data[ib];
                for (o, &x) in row.iter_mut().zip(&a.data[ia..ia + n]) {
                    *o = f(x, y);
                }
            }
            (0, 1) => {
                let x = a.data[ia];
                for (o, &y) in row.iter_mut().zip(&b.data[ib..ib + n]) {
                    *o = f(x, y);
                }
            }
            _ => {
                for (j, o) in row.iter_mut().enumerate() {
                    *o = f(a.data[ia + j * sa], b.data[ib + j * sb]);
                }
            }
        }
    });
}

/// out = (a cmp b) as 0/1 bytes, broadcasting through strides.
pub fn compare<T: Copy + PartialOrd + Sync>(
    op: CmpOp,
    shape: &[usize],
    a: Strided<T>,
    b: Strided<T>,
    out: &mut [u8],
) {
    for_each_row2(shape, a, b, out, |row, _, ia, sa, ib, sb| {
        for (j, o) in row.iter_mut().enumerate() {
            *o = op.f(a.data[ia + j * sa], b.data[ib + j * sb]);
        }
    });
}

/// out = cond ? a : b, with `cond` dense over `shape` and a, b strided.
pub fn select<T: Copy + Send + Sync>(
    shape: &[usize],
    cond: &[u8],
    a: Strided<T>,
    b: Strided<T>,
    out: &mut [T],
) {
    let inner = shape.last().copied().unwrap_or(1).max(1);
    for_each_row2(shape, a, b, out, |row, r, ia, sa, ib, sb| {
        let cond = &cond[r * inner..(r + 1) * inner];
        for (j, (o, &k)) in row.iter_mut().zip(cond).enumerate() {
            *o = if k != 0 {
                a.data[ia + j * sa]
            } else {
                b.data[ib + j * sb]
            };
        }
    });
}
