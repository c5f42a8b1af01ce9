//! Where a tensor's storage lives.

use crate::MemoryFormat;

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

    /// The memory format for a model's weights and activations here when none is asked for:
    /// channels-last on the CPU, whose convolution, pooling and BatchNorm kernels are NHWC
    /// kernels (NCHW would mostly take im2col); on CUDA, where cuDNN serves either, the user's
    /// choice, NCHW unless asked (as PyTorch).
    pub fn preferred_memory_format(self) -> Option<MemoryFormat> {
        match self {
            Device::Cpu => Some(MemoryFormat::ChannelsLast),
            Device::Cuda(_) => None,
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
