//! The driver's global state: memory, modules, handles and the last error message.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use crate::error::{EmuError, FaultKind};
use crate::memory::DeviceMemory;
use crate::program::Kernel;

use super::code;

/// A loaded module: its kernels and the device addresses of its variables.
#[derive(Debug)]
pub struct LoadedModule {
    /// Decoded kernels.
    pub kernels: Vec<Arc<Kernel>>,
    /// Module variables: name -> (address, size).
    pub vars: HashMap<String, (u64, usize)>,
}

/// Everything the driver keeps between calls.
#[derive(Debug, Default)]
pub struct State {
    /// Device memory.
    pub mem: DeviceMemory,
    /// Modules by handle.
    pub modules: HashMap<usize, LoadedModule>,
    /// Functions by handle.
    pub funcs: HashMap<usize, Arc<Kernel>>,
    /// Events by handle: time of the last record.
    pub events: HashMap<usize, Option<std::time::Instant>>,
    /// Live stream handles.
    pub streams: Vec<usize>,
    /// Pinned host allocations: pointer -> size.
    pub host: HashMap<usize, usize>,
    next: usize,
}

impl State {
    /// A fresh non-null handle value.
    pub fn handle(&mut self) -> usize {
        self.next += 1;
        self.next * 16
    }
}

static STATE: LazyLock<Mutex<State>> = LazyLock::new(Mutex::default);
static LAST_ERROR: Mutex<Option<CString>> = Mutex::new(None);

/// Locks the driver state (a panic while it was held does not poison it for later calls).
pub fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Prints `e` to stderr, keeps it for [`kiln_emu_last_error`], and returns its `CUresult`.
pub fn fail(e: &EmuError) -> u32 {
    eprintln!("kiln-cuda-emu: {e}");
    let msg = CString::new(e.to_string().replace('\0', " ")).unwrap_or_default();
    *LAST_ERROR.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg);
    match e {
        EmuError::Parse { .. } | EmuError::Unsupported { .. } => code::INVALID_PTX,
        EmuError::Fault { kind, .. } => match kind {
            FaultKind::OutOfBounds => code::ILLEGAL_ADDRESS,
            FaultKind::Misaligned => code::MISALIGNED_ADDRESS,
            FaultKind::Trap => code::ASSERT,
            _ => code::LAUNCH_FAILED,
        },
    }
}

/// The message of the last failed module load or launch, or null; valid until the next failure.
///
/// Not a CUDA function: tests look it up to check what the emulator reported.
#[no_mangle]
pub extern "C" fn kiln_emu_last_error() -> *const std::ffi::c_char {
    LAST_ERROR
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map_or(std::ptr::null(), |s| s.as_ptr())
}
