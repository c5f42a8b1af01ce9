//! [`Storage`], a tensor's buffer on whichever device holds it: a host [`CpuStorage`] or a CUDA
//! device's buffer.

use crate::{CpuStorage, DType, Error, Result};

/// A tensor's buffer on its device.
#[derive(Debug)]
pub enum Storage {
    /// Host memory.
    Cpu(CpuStorage),
    /// CUDA device memory.
    Cuda(crate::cuda::CudaStorage),
}

impl Storage {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
            Storage::Cuda(s) => s.dtype(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.len(),
            Storage::Cuda(s) => s.len(),
        }
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The host buffer, or an error naming `op` when the storage is on a device.
    pub fn cpu(&self, op: &'static str) -> Result<&CpuStorage> {
        match self {
            Storage::Cpu(s) => Ok(s),
            other => Err(Error::DeviceMismatch {
                op,
                lhs: other.device(),
                rhs: crate::Device::Cpu,
            }),
        }
    }

    /// The device buffer, or an error naming `op` when the storage is on the host.
    pub fn cuda(&self, op: &'static str) -> Result<&crate::cuda::CudaStorage> {
        match self {
            Storage::Cuda(s) => Ok(s),
            Storage::Cpu(_) => Err(Error::DeviceMismatch {
                op,
                lhs: crate::Device::Cpu,
                rhs: crate::Device::Cuda(0),
            }),
        }
    }

    /// The host buffer mutably, or an error naming `op` when the storage is on a device.
    pub fn cpu_mut(&mut self, op: &'static str) -> Result<&mut CpuStorage> {
        let device = self.device();
        match self {
            Storage::Cpu(s) => Ok(s),
            _ => Err(Error::DeviceMismatch {
                op,
                lhs: device,
                rhs: crate::Device::Cpu,
            }),
        }
    }
}
