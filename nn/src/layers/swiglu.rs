//! timm's SwiGLU MLPs (mlp.py): `silu(gate) · x` between two linear layers, with an optional
//! LayerNorm on the hidden features (`scale_mlp`, EVA-02 base and large). `SwiGLUPacked`
//! (`GluMlp` with SiLU, `gate_last=False`) packs the gate and value projections into one `fc1`
//! whose first half is the gate; `GluMlp` with SiLU and its default `gate_last=True` (gMixer's)
//! packs them with the gate last; `SwiGLU` keeps them apart (`fc1_g`, `fc1_x`). Built from the
//! engine's `silu` and `mul`, so it runs forward and backward on every backend.

use super::{LayerNorm, Linear};
use crate::{Children, Module, Result};
use kiln_engine::Tensor;

/// The gated unit: `silu(gate) · x`, elementwise.
pub fn swiglu(gate: &Tensor, x: &Tensor) -> Result<Tensor> {
    Ok(gate.silu()?.mul(x)?)
}

/// The first projection: packed (`fc1`, gate first) or split (`fc1_g`, `fc1_x`).
#[derive(Debug, Clone, Children)]
#[children(group)]
enum Fc1 {
    Packed(#[child(name = "fc1")] Linear),
    Split {
        #[child(name = "fc1_g")]
        gate: Linear,
        #[child(name = "fc1_x")]
        x: Linear,
    },
}

/// timm's `SwiGLUPacked` or `SwiGLU`: fc2(norm(silu(gate) · x)).
#[derive(Debug, Clone, Children)]
pub struct SwiGluMlp {
    #[child(flatten)]
    fc1: Fc1,
    /// The hidden features' LayerNorm (`norm`, with `scale_mlp`).
    #[child]
    pub norm: Option<LayerNorm>,
    /// The output projection.
    #[child]
    pub fc2: Linear,
    /// A packed `fc1`'s gate is its second half (`GluMlp`'s `gate_last=True`), not its first.
    gate_last: bool,
}

impl SwiGluMlp {
    /// `hidden` gated features of `dim`-wide tokens, with timm's trunc-normal (.02) linear
    /// weights and zero biases: packed into one `fc1` of 2·`hidden` unless `split`, with a
    /// hidden LayerNorm when `norm`.
    pub fn new(dim: usize, hidden: usize, split: bool, norm: bool) -> Result<SwiGluMlp> {
        let linear = |i, o| Linear::trunc_normal(i, o, 0.02);
        let fc1 = if split {
            Fc1::Split {
                gate: linear(dim, hidden)?,
                x: linear(dim, hidden)?,
            }
        } else {
            Fc1::Packed(linear(dim, 2 * hidden)?)
        };
        Ok(SwiGluMlp {
            fc1,
            norm: norm.then(|| LayerNorm::new(hidden)).transpose()?,
            fc2: linear(hidden, dim)?,
            gate_last: false,
        })
    }

    /// timm's `GluMlp` with SiLU and `gate_last=True` (gMixer's) of its two projections, as
    /// the family initializes them: `fc1` packs the value first and the gate last.
    pub fn gate_last(fc1: Linear, fc2: Linear) -> SwiGluMlp {
        SwiGluMlp {
            fc1: Fc1::Packed(fc1),
            norm: None,
            fc2,
            gate_last: true,
        }
    }
}

impl SwiGluMlp {
    /// The MLP with its projections unbiased (timm's `bias=False`, AIMv2's).
    pub fn without_biases(mut self) -> SwiGluMlp {
        match &mut self.fc1 {
            Fc1::Packed(fc1) => fc1.bias = None,
            Fc1::Split { gate, x } => (gate.bias, x.bias) = (None, None),
        }
        self.fc2.bias = None;
        self
    }
}

impl Module for SwiGluMlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = match &self.fc1 {
            Fc1::Packed(fc1) => {
                let both = fc1.forward(x)?;
                let hidden = fc1.out_features() / 2;
                let (first, second) = (
                    both.narrow(-1, 0, hidden)?,
                    both.narrow(-1, hidden, hidden)?,
                );
                match self.gate_last {
                    true => swiglu(&second, &first)?,
                    false => swiglu(&first, &second)?,
                }
            }
            Fc1::Split { gate, x: value } => swiglu(&gate.forward(x)?, &value.forward(x)?)?,
        };
        let h = match &self.norm {
            Some(norm) => norm.forward(&h)?,
            None => h,
        };
        self.fc2.forward(&h)
    }

    crate::module::not_prunable!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_engine::{check_gradients, DType, GradCheck};

    fn values(t: &Tensor) -> Vec<f64> {
        t.to_vec::<f64>().unwrap()
    }

    /// silu(g)·x = g·x / (1 + e^(−g)), element by element.
    #[test]
    fn swiglu_matches_the_definition() {
        let g = Tensor::randn(&[3, 7], DType::F64, 1).unwrap();
        let x = Tensor::randn(&[3, 7], DType::F64, 2).unwrap();
        let got = values(&swiglu(&g, &x).unwrap());
        for ((y, g), x) in got.iter().zip(values(&g)).zip(values(&x)) {
            assert!((y - g * x / (1.0 + (-g).exp())).abs() < 1e-12);
        }
    }

    #[test]
    fn swiglu_gradients_match_finite_differences() {
        let g = Tensor::randn(&[2, 5], DType::F64, 3).unwrap();
        let x = Tensor::randn(&[2, 5], DType::F64, 4).unwrap();
        let f = |v: &[Tensor]| Ok(swiglu(&v[0], &v[1]).unwrap());
        check_gradients(&[g, x], f, GradCheck::default()).unwrap();
    }

    /// The packed MLP's gate is the first half of `fc1` (timm's `gate_last=False`): it equals
    /// the split MLP whose `fc1_g` and `fc1_x` are those halves.
    #[test]
    fn packed_equals_split_with_the_gate_first() {
        kiln_engine::manual_seed_thread(0);
        let packed = SwiGluMlp::new(6, 4, false, true).unwrap();
        let split = SwiGluMlp::new(6, 4, true, true).unwrap();
        packed.to_dtype(DType::F64).unwrap();
        split.to_dtype(DType::F64).unwrap();
        let Fc1::Packed(fc1) = &packed.fc1 else {
            unreachable!()
        };
        let Fc1::Split { gate, x } = &split.fc1 else {
            unreachable!()
        };
        for (half, lin) in [(0, gate), (4, x)] {
            lin.weight
                .copy_(&fc1.weight.narrow(0, half, 4).unwrap())
                .unwrap();
            let b = fc1.bias.as_ref().unwrap().narrow(0, half, 4).unwrap();
            lin.bias.as_ref().unwrap().copy_(&b).unwrap();
        }
        split.fc2.weight.copy_(&packed.fc2.weight).unwrap();
        let input = Tensor::randn(&[3, 6], DType::F64, 7).unwrap();
        let (a, b) = (
            values(&packed.forward(&input).unwrap()),
            values(&split.forward(&input).unwrap()),
        );
        for (a, b) in a.iter().zip(&b) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}
