//! The exported CUDA driver API (`cu*` symbols) over `KILN_EMU_DEVICES` emulated sm_90-like
//! devices (default 1), each with one (primary) context and its own memory.

pub mod context;
pub mod device;
pub mod mem;
pub mod module;
pub mod peer;
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
    /// `cuInit` has not succeeded.
    pub const NOT_INITIALIZED: u32 = 3;
    /// No device (`KILN_EMU_DEVICES=0`).
    pub const NO_DEVICE: u32 = 100;
    /// Bad device ordinal.
    pub const INVALID_DEVICE: u32 = 101;
    /// No current context, or not a context handle.
    pub const INVALID_CONTEXT: u32 = 201;
    /// `cuCtxEnablePeerAccess` to a device that cannot access it.
    pub const PEER_ACCESS_UNSUPPORTED: u32 = 217;
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
    /// `cuCtxEnablePeerAccess` twice for the same peer.
    pub const PEER_ACCESS_ALREADY_ENABLED: u32 = 704;
    /// `cuCtxDisablePeerAccess` for a peer never enabled.
    pub const PEER_ACCESS_NOT_ENABLED: u32 = 705;
    /// `trap` in a kernel.
    pub const ASSERT: u32 = 710;
    /// Misaligned access in a kernel.
    pub const MISALIGNED_ADDRESS: u32 = 716;
    /// Barrier divergence, missing lanes, races.
    pub const LAUNCH_FAILED: u32 = 719;
    /// A driver function the emulator does not implement.
    pub const NOT_SUPPORTED: u32 = 801;
}
