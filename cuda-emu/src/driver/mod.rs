//! The exported CUDA driver API (`cu*` symbols) over `KILN_EMU_DEVICES` emulated sm_90-like
//! devices (default 1), each with one (primary) context and its own memory.

pub mod capture;
pub mod context;
pub mod device;
pub mod graph;
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
    /// A call that does not fit the object's state (capture begun twice, ended when not begun).
    pub const ILLEGAL_STATE: u32 = 401;
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
    /// An operation not permitted while a stream captures.
    pub const STREAM_CAPTURE_UNSUPPORTED: u32 = 900;
    /// Work pushed to a capture that an earlier violation invalidated.
    pub const STREAM_CAPTURE_INVALIDATED: u32 = 901;
    /// A capture waiting on an event from outside it.
    pub const STREAM_CAPTURE_ISOLATION: u32 = 905;
    /// Legacy-stream work that would depend on a capturing blocking stream.
    pub const STREAM_CAPTURE_IMPLICIT: u32 = 906;
    /// Querying or synchronizing an event recorded in a capture.
    pub const CAPTURED_EVENT: u32 = 907;
    /// Ending a non-relaxed capture from another thread.
    pub const STREAM_CAPTURE_WRONG_THREAD: u32 = 908;
}
