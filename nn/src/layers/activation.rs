//! Parameter-free activations and the identity.

use crate::{Children, Module, Result};
use kiln_engine::{Tensor, UnaryOp};

/// An elementwise activation, picked by name as timm's `get_act_layer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Children)]
pub enum Activation {
    /// max(x, 0)
    Relu,
    /// min(max(x, 0), 6)
    Relu6,
    /// x·sigmoid(x)
    Silu,
    /// exact GELU
    Gelu,
    /// tanh-approximated GELU (timm's `gelu_tanh`)
    GeluTanh,
    /// hard swish
    HardSwish,
    /// hard sigmoid: relu6(x + 3) / 6
    HardSigmoid,
    /// sigmoid
    Sigmoid,
    /// tanh
    Tanh,
    /// max(x, 0.01·x): torch's `LeakyReLU` at its default slope (timm's `leaky_relu`)
    LeakyRelu,
}

/// torch's default `LeakyReLU` slope.
const LEAKY_SLOPE: f64 = 0.01;

impl Activation {
    /// Looks an activation up by timm's name (`relu`, `silu`/`swish`, `gelu`, `hard_swish`, ...).
    pub fn from_name(name: &str) -> Option<Activation> {
        Some(match name {
            "relu" => Activation::Relu,
            "relu6" => Activation::Relu6,
            "silu" | "swish" => Activation::Silu,
            "gelu" => Activation::Gelu,
            "gelu_tanh" => Activation::GeluTanh,
            "hard_swish" | "hardswish" => Activation::HardSwish,
            "hard_sigmoid" | "hardsigmoid" => Activation::HardSigmoid,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "leaky_relu" => Activation::LeakyRelu,
            _ => return None,
        })
    }

    /// The engine's elementwise op for this activation (what fused ops take); None for leaky
    /// ReLU, which is composed of two ops.
    pub fn unary_op(self) -> Option<UnaryOp> {
        Some(match self {
            Activation::Relu => UnaryOp::Relu,
            Activation::Relu6 => UnaryOp::Clamp(0.0, 6.0),
            Activation::Silu => UnaryOp::Silu,
            Activation::Gelu => UnaryOp::Gelu,
            Activation::GeluTanh => UnaryOp::GeluTanh,
            Activation::HardSwish => UnaryOp::HardSwish,
            Activation::HardSigmoid => UnaryOp::HardSigmoid,
            Activation::Sigmoid => UnaryOp::Sigmoid,
            Activation::Tanh => UnaryOp::Tanh,
            Activation::LeakyRelu => return None,
        })
    }
}

impl Module for Activation {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Activation::Relu => x.relu(),
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::Silu => x.silu(),
            Activation::Gelu => x.gelu(),
            Activation::GeluTanh => x.gelu_tanh(),
            Activation::HardSwish => x.hardswish(),
            Activation::HardSigmoid => x.hardsigmoid(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
            Activation::LeakyRelu => x.maximum(&x.mul_scalar(LEAKY_SLOPE)?),
        }?)
    }
}

/// Passes its input through.
#[derive(Debug, Clone, Copy, Default, Children)]
pub struct Identity;

impl Module for Identity {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }
}
