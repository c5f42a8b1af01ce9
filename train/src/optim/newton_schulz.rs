//! Newton–Schulz orthogonalisation (timm's `zeropower_via_newtonschulz`, Keller Jordan's Muon):
//! a quintic polynomial iteration drives every singular value of a matrix towards 1, leaving
//! ≈ U·Vᵀ of its SVD. Engine matmuls, so it runs on the matrix's device. timm iterates in bf16;
//! each op here computes in f32 and rounds its result to bf16 once, as torch's bf16 kernels do.

use crate::Result;
use kiln_engine::{DType, Tensor};

/// timm's default `quintic` coefficients (a, b, c), one triple per iteration (the last one
/// repeats past five).
const QUINTIC: [(f64, f64, f64); 5] = [
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
];

/// The iteration's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NewtonSchulz {
    /// Iterations.
    pub steps: usize,
    /// Floor on the norm the matrix is divided by (added instead with `scale_eps`).
    pub eps: f64,
    /// Factor on that norm.
    pub safety_factor: f64,
    /// μP damping: ε·√(cols/rows), added to the norm.
    pub scale_eps: bool,
}

/// `t` rounded to bf16, kept as f32.
fn bf16(t: &Tensor) -> Result<Tensor> {
    Ok(t.to_dtype(DType::BF16)?.to_dtype(DType::F32)?)
}

/// The orthogonalised form of the 2-d `g` (same shape, bf16 values in f32).
pub(crate) fn orthogonalize(g: &Tensor, ns: &NewtonSchulz) -> Result<Tensor> {
    let (rows, cols) = (g.shape()[0], g.shape()[1]);
    let mut x = bf16(g)?;
    // Iterate on the wide form: X·Xᵀ is the smaller Gram matrix.
    let transposed = rows > cols;
    if transposed {
        x = x.t()?.contiguous()?;
    }
    let norm = bf16(&bf16(&x.sqr()?.sum_all()?.sqrt()?)?.mul_scalar(ns.safety_factor)?)?;
    let norm = if ns.scale_eps {
        bf16(&norm.add_scalar(ns.eps * (cols as f64 / rows as f64).sqrt())?)?
    } else {
        norm.clamp(ns.eps, f64::INFINITY)?
    };
    x = bf16(&x.div(&norm)?)?;
    for s in 0..ns.steps {
        let (a, b, c) = QUINTIC[s.min(QUINTIC.len() - 1)];
        let gram = bf16(&x.matmul(&x.t()?)?)?;
        let poly = bf16(
            &gram
                .matmul(&gram)?
                .mul_scalar(c)?
                .add(&gram.mul_scalar(b)?)?,
        )?;
        x = bf16(&poly.matmul(&x)?.add(&x.mul_scalar(a)?)?)?;
    }
    if transposed {
        x = x.t()?.contiguous()?;
    }
    Ok(x)
}
