//! Where a tensor's storage lives.

/// A compute device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// Host memory, computed by the CPU backend.
    #[default]
    Cpu,
    /// The CUDA device with this ordinal.
    Cuda(usize),
}

impl Device {
    /// Parses `cpu`, `cuda` or `cuda:N`.
    pub fn parse(s: &str) -> Option<Device> {
        match s {
            "cpu" => Some(Device::Cpu),
            "cuda" => Some(Device::Cuda(0)),
            _ => s.strip_prefix("cuda:")?.parse().ok().map(Device::Cuda),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// A question an op asks of a device before taking its native path over a composed one; each
/// backend answers them all in [`Device::supports`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// GEMM-like kernels (conv, matmul, attention) take f16/bf16 operands as they are and
    /// accumulate in f32, so autocast casts f32 inputs once and nothing else.
    LowPrecisionGemm,
    /// Elementwise, reduction, pooling and softmax kernels read and write f16/bf16 and compute
    /// in f32 when every operand shares one dtype.
    LowPrecisionKernels,
    /// Fused softmax cross-entropy reads f16/bf16 logits as they are (f32 losses and targets).
    LowPrecisionCrossEntropy,
    /// Fused BCE with logits reads f16/bf16 logits as they are (f32 losses and targets).
    LowPrecisionBce,
    /// Fused LayerNorm reads f16/bf16 rows as they are, with γ and β in the rows' dtype or f32.
    LowPrecisionLayerNorm,
    /// Fused BatchNorm (+ residual, + ReLU) reads and writes f16/bf16 with f32 statistics.
    LowPrecisionBatchNorm,
    /// The fused squeeze-excite takes its inputs in any float dtype as they are.
    NativeSqueezeExcite,
    /// A training BN's normalization can be fused into the next convolution's loads.
    ConvBnFusion,
}

impl Device {
    /// Whether this device's backend has the native path `c` asks about.
    pub fn supports(self, c: Capability) -> bool {
        match self {
            // The CPU computes low precision on f32 copies and composes what CUDA fuses.
            Device::Cpu => false,
            // The CUDA backend has every native path.
            Device::Cuda(_) => match c {
                Capability::LowPrecisionGemm
                | Capability::LowPrecisionKernels
                | Capability::LowPrecisionCrossEntropy
                | Capability::LowPrecisionBce
                | Capability::LowPrecisionLayerNorm
                | Capability::LowPrecisionBatchNorm
                | Capability::NativeSqueezeExcite
                | Capability::ConvBnFusion => true,
            },
        }
    }

    /// The largest head dim fused attention takes on this device (`None`: any); beyond it,
    /// attention is composed from matmuls and a softmax.
    pub fn max_attention_head_dim(self) -> Option<usize> {
        match self {
            Device::Cpu => None,
            Device::Cuda(_) => Some(kiln_kernels::cuda::attention::MAX_HEAD_DIM),
        }
    }
}
