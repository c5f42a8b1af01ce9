//! The exported CUDA driver API (`cu*` symbols) over one emulated sm_90-like device.

pub mod context;
pub mod device;
pub mod mem;
pub mod module;
pub mod state;
pub mod unsupported;

/// `CUresult` values this driver returns.
pub mod code {
    /// Success.
    pub const SUCCESS: u32 = 0;
    /// A bad argument.
    pub const INVALID_VALUE: u32 = 1;
    /// Out of memory.
    pub const OUT_OF_MEMORY: u32 = 2;
    /// Bad device ordinal.
    pub const INVALID_DEVICE: u32 = 101;
    /// Not a PTX image.
    pub const INVALID_IMAGE: u32 = 200;
    /// PTX that does not parse or uses what the emulator lacks.
    pub const INVALID_PTX: u32 = 218;
    /// Unknown handle.
    pub const INVALID_HANDLE: u32 = 400;
    /// Unknown symbol.
    pub const NOT_FOUND: u32 = 500;
    /// Out-of-bounds access in a kernel.
    pub const ILLEGAL_ADDRESS: u32 = 700;
    /// `trap` in a kernel.
    pub const ASSERT: u32 = 710;
    /// Misaligned access in a kernel.
    pub const MISALIGNED_ADDRESS: u32 = 716;
    /// Barrier divergence, missing lanes, races.
    pub const LAUNCH_FAILED: u32 = 719;
    /// A driver function the emulator does not implement.
    pub const NOT_SUPPORTED: u32 = 801;
}
