//! The driver's global state: each device's memory and peers, modules, handles and the last
//! error message.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::CString;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use crate::error::{EmuError, FaultKind};
use crate::memory::{window_of, DeviceMemory, GlobalView};
use crate::program::Kernel;

use super::capture::Captures;
use super::code;
use super::device::device_count;
use super::graph::Graph;

/// A loaded module: its context's device, its kernels and the addresses of its variables.
#[derive(Debug)]
pub struct LoadedModule {
    /// The device whose (primary) context loaded it.
    pub device: usize,
    /// Decoded kernels.
    pub kernels: Vec<Arc<Kernel>>,
    /// Module variables: name -> (address, size).
    pub vars: HashMap<String, (u64, usize)>,
}

/// One device: its memory and the peers whose memory its kernels may access.
#[derive(Debug)]
pub struct Device {
    /// Device memory.
    pub mem: DeviceMemory,
    /// Devices whose context this device's context enabled peer access to.
    pub peers: BTreeSet<usize>,
}

/// An event: its context's device and the time of its last record.
#[derive(Debug)]
pub struct Event {
    /// The device whose context created it.
    pub device: usize,
    /// When it was last recorded.
    pub recorded: Option<std::time::Instant>,
    /// The capture its last record joined, if that record was captured.
    pub captured: Option<u64>,
}

/// Everything the driver keeps between calls. Handles of modules, functions, streams and events
/// carry the device of the context that made them (each device has one, primary, context).
#[derive(Debug)]
pub struct State {
    /// The devices, by ordinal.
    pub devices: Vec<Device>,
    /// Modules by handle.
    pub modules: HashMap<usize, LoadedModule>,
    /// Functions by handle: (device, kernel).
    pub funcs: HashMap<usize, (usize, Arc<Kernel>)>,
    /// Functions whose `CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES` was set, by handle: the
    /// value (the others allow [`default_dyn_smem`]).
    pub dyn_smem: HashMap<usize, u32>,
    /// Events by handle.
    pub events: HashMap<usize, Event>,
    /// Live streams by handle: their device.
    pub streams: HashMap<usize, usize>,
    /// Pinned host allocations: pointer -> size.
    pub host: HashMap<usize, usize>,
    /// Streams created with `CU_STREAM_NON_BLOCKING`.
    pub nonblocking: HashSet<usize>,
    /// Stream captures in progress.
    pub captures: Captures,
    /// Graphs by handle.
    pub graphs: HashMap<usize, Graph>,
    /// Executable graphs by handle.
    pub execs: HashMap<usize, Graph>,
    next: usize,
}

impl State {
    fn new(devices: usize) -> State {
        State {
            devices: (0..devices)
                .map(|d| Device {
                    mem: DeviceMemory::for_device(d),
                    peers: BTreeSet::new(),
                })
                .collect(),
            modules: HashMap::new(),
            funcs: HashMap::new(),
            dyn_smem: HashMap::new(),
            events: HashMap::new(),
            streams: HashMap::new(),
            host: HashMap::new(),
            nonblocking: HashSet::new(),
            captures: Captures::default(),
            graphs: HashMap::new(),
            execs: HashMap::new(),
            next: 0,
        }
    }

    /// The dynamic shared memory function `func` (running `k`) may launch with.
    pub fn dyn_smem_limit(&self, func: usize, k: &Kernel) -> u32 {
        self.dyn_smem
            .get(&func)
            .copied()
            .unwrap_or_else(|| default_dyn_smem(k))
    }

    /// A fresh non-null handle value.
    pub fn handle(&mut self) -> usize {
        self.next += 1;
        self.next * 16
    }

    /// The device holding device address `addr`, if it lies in one of its allocations.
    pub fn owner(&self, addr: u64) -> Option<usize> {
        let d = window_of(addr)?;
        self.devices.get(d)?.mem.range_of(addr).map(|_| d)
    }

    /// Host pointer for `n` bytes at `addr` on whichever device holds them.
    pub fn host_ptr(&self, addr: u64, n: usize) -> Option<*mut u8> {
        let d = window_of(addr)?;
        self.devices.get(d)?.mem.host_ptr(addr, n)
    }

    /// What a kernel on `device` can address: its own memory and its enabled peers'.
    pub fn view(&self, device: usize) -> GlobalView {
        let dev = &self.devices[device];
        let mut visible: BTreeSet<usize> = dev.peers.clone();
        visible.insert(device);
        GlobalView::of(visible.into_iter().map(|d| &self.devices[d].mem))
    }

    /// Whether `stream` may carry work of `device`'s context: a stream that context created, or
    /// a default stream (null, `CU_STREAM_LEGACY` = 1, `CU_STREAM_PER_THREAD` = 2).
    pub fn stream_on(&self, stream: usize, device: usize) -> bool {
        stream <= 2 || self.streams.get(&stream) == Some(&device)
    }
}

static STATE: LazyLock<Mutex<State>> =
    LazyLock::new(|| Mutex::new(State::new(device_count().unwrap_or(1))));
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

/// Shared memory a block may use without opting in (48 KiB), as on every GPU since sm_20.
pub const SHARED_DEFAULT: u32 = 48 << 10;
/// The most shared memory a block may opt into (`MAX_SHARED_MEMORY_PER_BLOCK_OPTIN`, an H100's).
pub const SHARED_OPTIN: u32 = 227 << 10;

/// A function's dynamic shared memory limit before `cuFuncSetAttribute` raises it: 48 KiB less
/// its static shared memory.
pub fn default_dyn_smem(k: &Kernel) -> u32 {
    SHARED_DEFAULT.saturating_sub(k.shared_static)
}
