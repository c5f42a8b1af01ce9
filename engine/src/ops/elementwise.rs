//! Unary, binary, scalar and comparison ops, casts, and the operator overloads.

use super::record_node;
use crate::layout::broadcast_shape;
use crate::trace::{self, Op};
use crate::{DType, Error, Result, Storage, Tensor};
use kiln_kernels::cpu::elementwise::{BinaryOp, CmpOp, UnaryOp};

impl Tensor {
    pub(crate) fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        trace::traced(
            || Op::Unary(op),
            [self],
            || {
                Tensor::in_kernel_precision(&[self], |t| {
                    let x = &t[0];
                    let (s, l) = x.storage().unary(x.layout(), op)?;
                    let y = Tensor::plain(s, l.clone());
                    let (xs, ys) = (x.detach(), y.clone());
                    let node = record_node(op.name(), &[x], move |g| {
                        let (dx, l) = Storage::unary_bwd(
                            (&xs.storage(), xs.layout()),
                            (&ys.storage(), ys.layout()),
                            (&g.storage(), g.layout()),
                            op,
                        )?;
                        Ok(vec![Some(Tensor::plain(dx, l))])
                    });
                    Ok(y.with_layout(l, node))
                })
            },
        )
    }

    /// -x
    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg)
    }
    /// e^x
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp)
    }
    /// ln x
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log)
    }
    /// √x
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt)
    }
    /// 1/√x
    pub fn rsqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Rsqrt)
    }
    /// |x|
    pub fn abs(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Abs)
    }
    /// max(x, 0)
    pub fn relu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu)
    }
    /// 1/(1+e^-x)
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid)
    }
    /// tanh x
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh)
    }
    /// x·sigmoid(x)
    pub fn silu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Silu)
    }
    /// The exact (erf) GELU.
    pub fn gelu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Gelu)
    }

    /// The tanh-approximated GELU (torch's `F.gelu(x, approximate='tanh')`).
    pub fn gelu_tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::GeluTanh)
    }
    /// x·relu6(x+3)/6
    pub fn hardswish(&self) -> Result<Tensor> {
        self.unary(UnaryOp::HardSwish)
    }
    /// relu6(x+3)/6
    pub fn hardsigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::HardSigmoid)
    }
    /// 1/x
    pub fn recip(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Recip)
    }
    /// x²
    pub fn sqr(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Square)
    }
    /// x^e for a scalar exponent.
    pub fn powf(&self, e: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Powf(e))
    }
    /// min(max(x, lo), hi)
    pub fn clamp(&self, lo: f64, hi: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Clamp(lo, hi))
    }
    /// a·x + b
    pub fn affine(&self, a: f64, b: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Affine(a, b))
    }
    /// x + s
    pub fn add_scalar(&self, s: f64) -> Result<Tensor> {
        self.affine(1.0, s)
    }
    /// x · s
    pub fn mul_scalar(&self, s: f64) -> Result<Tensor> {
        self.affine(s, 0.0)
    }

    fn binary(&self, rhs: &Tensor, op: BinaryOp) -> Result<Tensor> {
        trace::traced(
            || Op::Binary(op),
            [self, rhs],
            || {
                let shape = broadcast_shape(op.name(), self.shape(), rhs.shape())?;
                let rhs = &self.on_my_device(op.name(), rhs)?;
                Tensor::in_kernel_precision(&[self, rhs], |t| {
                    let (a, b) = (&t[0], &t[1]);
                    let (s, l) = Storage::binary(
                        (&a.storage(), a.layout()),
                        (&b.storage(), b.layout()),
                        &shape,
                        op,
                    )?;
                    let (ad, bd) = (a.detach(), b.detach());
                    let node = record_node(op.name(), &[a, b], move |g| {
                        let (ga, gb) = binary_grads(op, g, &ad, &bd)?;
                        Ok(vec![
                            Some(ga.sum_to(ad.shape())?),
                            Some(gb.sum_to(bd.shape())?),
                        ])
                    });
                    Ok(Tensor::result(s, l, node))
                })
            },
        )
    }

    /// a + b, broadcasting.
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Add)
    }
    /// a - b, broadcasting.
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Sub)
    }
    /// a · b, broadcasting.
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Mul)
    }
    /// a / b, broadcasting.
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Div)
    }
    /// max(a, b) elementwise, broadcasting.
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Maximum)
    }
    /// min(a, b) elementwise, broadcasting.
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Minimum)
    }

    /// Sums broadcast dimensions away so the result has `shape` (the adjoint of broadcasting).
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let lead = self
            .rank()
            .checked_sub(shape.len())
            .ok_or_else(|| Error::ShapeMismatch {
                op: "sum_to",
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
            })?;
        let dims: Vec<usize> = (0..self.rank())
            .filter(|&d| d < lead || (shape[d - lead] == 1 && self.shape()[d] != 1))
            .collect();
        self.sum_dims(&dims, true)?.reshape(shape)
    }

    fn compare(&self, rhs: &Tensor, op: CmpOp) -> Result<Tensor> {
        trace::traced(
            || Op::Compare(op),
            [self, rhs],
            || {
                let shape = broadcast_shape("compare", self.shape(), rhs.shape())?;
                let rhs = self.on_my_device("compare", rhs)?;
                let (s, l) = Storage::compare(
                    (&self.storage(), self.layout()),
                    (&rhs.storage(), rhs.layout()),
                    &shape,
                    op,
                )?;
                Ok(Tensor::plain(s, l))
            },
        )
    }

    /// a == b as Bool.
    pub fn eq(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Eq)
    }
    /// a != b as Bool.
    pub fn ne(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Ne)
    }
    /// a < b as Bool.
    pub fn lt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Lt)
    }
    /// a <= b as Bool.
    pub fn le(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Le)
    }
    /// a > b as Bool.
    pub fn gt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Gt)
    }
    /// a >= b as Bool.
    pub fn ge(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Ge)
    }

    /// cond ? a : b elementwise (this tensor is the Bool condition), broadcasting all three.
    pub fn where_cond(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        trace::traced(
            || Op::Where,
            [self, a, b],
            || {
                let shape = broadcast_shape(
                    "where",
                    &broadcast_shape("where", self.shape(), a.shape())?,
                    b.shape(),
                )?;
                let (a, b) = (
                    &self.on_my_device("where", a)?,
                    &self.on_my_device("where", b)?,
                );
                Tensor::in_kernel_precision(&[a, b], |t| self.select(&t[0], &t[1], &shape))
            },
        )
    }

    fn select(&self, a: &Tensor, b: &Tensor, shape: &[usize]) -> Result<Tensor> {
        let (s, l) = Storage::select(
            (&self.storage(), self.layout()),
            (&a.storage(), a.layout()),
            (&b.storage(), b.layout()),
            shape,
        )?;
        let (cond, ad, bd) = (self.detach(), a.detach(), b.detach());
        let node = record_node("where", &[a, b], move |g| {
            let zero = Tensor::full_on(&[], 0.0, g.dtype(), g.device())?;
            let ga = cond.where_cond(g, &zero)?.sum_to(ad.shape())?;
            let gb = cond.where_cond(&zero, g)?.sum_to(bd.shape())?;
            Ok(vec![Some(ga), Some(gb)])
        });
        Ok(Tensor::result(s, l, node))
    }

    /// Converts elements to `dtype` (differentiable between float types).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        trace::traced(
            || Op::Cast(dtype),
            [self],
            || {
                if dtype == self.dtype() {
                    return Ok(self.clone());
                }
                let (s, l) = self.storage().cast(self.layout(), dtype)?;
                let from = self.dtype();
                let node = if from.is_float() && dtype.is_float() {
                    record_node("to_dtype", &[self], move |g| {
                        Ok(vec![Some(g.to_dtype(from)?)])
                    })
                } else {
                    None
                };
                Ok(Tensor::result(s, l, node))
            },
        )
    }
}

fn binary_grads(op: BinaryOp, g: &Tensor, a: &Tensor, b: &Tensor) -> Result<(Tensor, Tensor)> {
    Ok(match op {
        BinaryOp::Add => (g.clone(), g.clone()),
        BinaryOp::Sub => (g.clone(), g.neg()?),
        BinaryOp::Mul => (g.mul(b)?, g.mul(a)?),
        BinaryOp::Div => (g.div(b)?, g.mul(a)?.div(&b.sqr()?)?.neg()?),
        BinaryOp::Maximum | BinaryOp::Minimum => {
            let take_a = if op == BinaryOp::Maximum {
                a.ge(b)?
            } else {
                a.le(b)?
            };
            let zero = Tensor::full_on(&[], 0.0, g.dtype(), g.device())?;
            (take_a.where_cond(g, &zero)?, take_a.where_cond(&zero, g)?)
        }
    })
}

macro_rules! bin_operator {
    ($trait:ident, $method:ident, $scalar:expr) => {
        impl std::ops::$trait<&Tensor> for &Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: &Tensor) -> Result<Tensor> {
                Tensor::$method(self, rhs)
            }
        }
        impl std::ops::$trait<f64> for &Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: f64) -> Result<Tensor> {
                let (a, b): (f64, f64) = $scalar(rhs);
                self.affine(a, b)
            }
        }
    };
}
bin_operator!(Add, add, |s| (1.0, s));
bin_operator!(Sub, sub, |s: f64| (1.0, -s));
bin_operator!(Mul, mul, |s| (s, 0.0));
bin_operator!(Div, div, |s: f64| (1.0 / s, 0.0));

impl std::ops::Neg for &Tensor {
    type Output = Result<Tensor>;
    fn neg(self) -> Result<Tensor> {
        Tensor::neg(self)
    }
}
