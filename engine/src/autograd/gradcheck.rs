//! Finite-difference gradient checking, in f64.

use crate::{no_grad, DType, Result, Tensor};

/// Tolerances for [`check_gradients`].
#[derive(Debug, Clone, Copy)]
pub struct GradCheck {
    /// Central-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
}

impl Default for GradCheck {
    fn default() -> GradCheck {
        GradCheck {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-4,
        }
    }
}

/// Compares autograd's gradients of `Σ f(inputs) ⊙ w` (w a fixed random weighting) with central
/// differences. Inputs must be f64 leaves; returns a message naming the first mismatch.
pub fn check_gradients(
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    tol: GradCheck,
) -> std::result::Result<(), String> {
    let err = |e: crate::Error| e.to_string();
    let vars: Vec<Tensor> = inputs
        .iter()
        .map(|t| {
            t.detach()
                .contiguous_copy()
                .map(|t| t.requires_grad_(true).clone())
        })
        .collect::<Result<_>>()
        .map_err(err)?;
    let out = f(&vars).map_err(err)?;
    let weights = Tensor::randn(out.shape(), DType::F64, 1234).map_err(err)?;
    let objective = |vs: &[Tensor]| -> Result<f64> { f(vs)?.mul(&weights)?.sum_all()?.item() };
    objective(&vars).map_err(err)?;
    out.mul(&weights)
        .and_then(|t| t.sum_all())
        .and_then(|t| t.backward())
        .map_err(err)?;
    let _g = no_grad();
    for (k, v) in vars.iter().enumerate() {
        let analytic = match v.grad() {
            Some(g) => g.to_vec::<f64>().map_err(err)?,
            None => vec![0.0; v.numel()],
        };
        for (i, &a) in analytic.iter().enumerate() {
            let numeric = central_difference(&vars, k, i, tol.eps, &objective).map_err(err)?;
            if (a - numeric).abs() > tol.atol + tol.rtol * numeric.abs() {
                return Err(format!(
                    "input {k} element {i}: autograd {a:.8e} vs finite difference {numeric:.8e}"
                ));
            }
        }
    }
    Ok(())
}

fn central_difference(
    vars: &[Tensor],
    k: usize,
    i: usize,
    eps: f64,
    objective: &impl Fn(&[Tensor]) -> Result<f64>,
) -> Result<f64> {
    let nudge = |delta: f64| -> Result<()> {
        let mut s = vars[k].storage_mut();
        s.cpu_mut("gradcheck")?.as_mut_slice::<f64>("gradcheck")?[i] += delta;
        Ok(())
    };
    nudge(eps)?;
    let plus = objective(vars)?;
    nudge(-2.0 * eps)?;
    let minus = objective(vars)?;
    nudge(eps)?;
    Ok((plus - minus) / (2.0 * eps))
}
