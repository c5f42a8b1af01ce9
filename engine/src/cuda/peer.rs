//! Several devices of one process: peer access between their contexts (so copies between them
//! go device to device), and the current-context binding that vendor libraries which use the
//! runtime's "current device" (NCCL) need.

use super::device::CudaDevice;
use crate::{Error, Result};
use cudarc::driver::sys;

impl CudaDevice {
    /// Whether this is kiln's CUDA emulator (kiln-cuda-emu), on which vendor libraries such as
    /// cuBLAS, cuDNN and NCCL cannot run (their code is SASS).
    pub fn is_emulator(&self) -> bool {
        self.name().starts_with("kiln CUDA emulator")
    }

    /// Makes this device's context current on the calling thread, for libraries that work on
    /// the current device (NCCL's communicator initialization).
    pub fn make_current(&self) -> Result<()> {
        self.bind()
    }

    /// Lets this device's context reach `peer`'s memory directly (`cuCtxEnablePeerAccess`);
    /// false when the driver says the two cannot (then copies between them stage through the
    /// host). Enabling twice is not an error.
    pub fn enable_peer_access(&self, peer: &CudaDevice) -> Result<bool> {
        if self.ordinal() == peer.ordinal() {
            return Ok(true);
        }
        let mut can = 0;
        // SAFETY: `can` is valid for a write; both ordinals name opened devices.
        unsafe {
            sys::cuDeviceCanAccessPeer(&mut can, self.ordinal() as i32, peer.ordinal() as i32)
        }
        .result()
        .map_err(|e| Error::Cuda(format!("cuDeviceCanAccessPeer: {e:?}")))?;
        if can == 0 {
            return Ok(false);
        }
        self.bind()?;
        // SAFETY: the current context is this device's; `peer.cu_ctx()` is a live context.
        let code = unsafe { sys::cuCtxEnablePeerAccess(peer.cu_ctx(), 0) };
        match code {
            sys::CUresult::CUDA_SUCCESS | sys::CUresult::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED => {
                Ok(true)
            }
            other => Err(Error::Cuda(format!(
                "cuCtxEnablePeerAccess(cuda:{} -> cuda:{}): {other:?}",
                self.ordinal(),
                peer.ordinal()
            ))),
        }
    }
}
