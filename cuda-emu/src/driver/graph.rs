//! Graphs made by stream capture: instantiation (an executable copy of the recorded work), launch
//! (the work replayed in capture order on the launch stream), node listing and destruction.

use std::ffi::c_void;
use std::sync::Arc;

use super::capture;
use super::code;
use super::context::current;
use super::device::put;
use super::state::{fail, state, State};
use crate::launch::{launch, Config};
use crate::program::Kernel;

/// One recorded operation. Kernel parameters are copied at capture time; host pointers are
/// kept, and read or written when the graph runs, as the driver does.
#[derive(Debug, Clone)]
pub enum Work {
    /// A kernel launch with its parameter bytes.
    Kernel {
        /// The kernel.
        kernel: Arc<Kernel>,
        /// Grid, block and dynamic shared memory.
        cfg: Config,
        /// Parameter buffer.
        params: Vec<u8>,
    },
    /// Host to device copy.
    HtoD {
        /// Device destination.
        dst: u64,
        /// Host source address.
        src: usize,
        /// Bytes.
        n: usize,
    },
    /// Device to host copy.
    DtoH {
        /// Host destination address.
        dst: usize,
        /// Device source.
        src: u64,
        /// Bytes.
        n: usize,
    },
    /// Device to device copy.
    DtoD {
        /// Device destination.
        dst: u64,
        /// Device source.
        src: u64,
        /// Bytes.
        n: usize,
    },
    /// Byte memset.
    Memset {
        /// Device destination.
        dst: u64,
        /// The byte.
        value: u8,
        /// Bytes.
        n: usize,
    },
    /// A host function and its argument.
    Host {
        /// The function.
        f: unsafe extern "C" fn(*mut c_void),
        /// Its argument.
        data: usize,
    },
}

/// A graph: its device and its nodes (handle, work) in dependency order (a chain).
#[derive(Debug, Clone)]
pub struct Graph {
    /// The device of the context that captured it.
    pub device: usize,
    /// Nodes in order.
    pub nodes: Vec<(usize, Work)>,
}

/// Runs one piece of work now; the state stays locked, as for a kernel launch.
///
/// # Safety
/// Host addresses recorded in `w` must still be valid for their copies.
unsafe fn run(s: &State, device: usize, w: &Work) -> u32 {
    let dev = |addr: u64, n: usize| s.host_ptr(addr, n);
    match *w {
        Work::Kernel {
            ref kernel,
            cfg,
            ref params,
        } => {
            if let Err(e) = launch(kernel, cfg, params, &s.view(device)) {
                return fail(&e);
            }
        }
        Work::Memset { n: 0, .. }
        | Work::HtoD { n: 0, .. }
        | Work::DtoH { n: 0, .. }
        | Work::DtoD { n: 0, .. } => {}
        Work::Memset { dst, value, n } => match dev(dst, n) {
            // SAFETY: `host_ptr` checked that n bytes lie in one allocation.
            Some(p) => unsafe { p.write_bytes(value, n) },
            None => return code::INVALID_VALUE,
        },
        Work::HtoD { dst, src, n } => match dev(dst, n) {
            // SAFETY: device range checked; the host source is the caller's guarantee.
            Some(p) => unsafe { std::ptr::copy_nonoverlapping(src as *const u8, p, n) },
            None => return code::INVALID_VALUE,
        },
        Work::DtoH { dst, src, n } => match dev(src, n) {
            // SAFETY: device range checked; the host destination is the caller's guarantee.
            Some(p) => unsafe { std::ptr::copy_nonoverlapping(p, dst as *mut u8, n) },
            None => return code::INVALID_VALUE,
        },
        Work::DtoD { dst, src, n } => match (dev(dst, n), dev(src, n)) {
            // SAFETY: both ranges checked; `copy` allows overlap.
            (Some(d), Some(sp)) => unsafe { std::ptr::copy(sp, d, n) },
            _ => return code::INVALID_VALUE,
        },
        // SAFETY: the function and its data were valid when captured, per the caller.
        Work::Host { f, data } => unsafe { f(data as *mut c_void) },
    }
    code::SUCCESS
}

/// `CUDA_GRAPH_INSTANTIATE_FLAG_*`: auto-free on launch, upload, device launch, node priority.
const AUTO_FREE: u64 = 1;
const UPLOAD: u64 = 2;
const DEVICE_LAUNCH: u64 = 4;
const NODE_PRIORITY: u64 = 8;

/// `cuGraphInstantiateWithFlags`: an executable copy of `graph` (later changes to the graph do
/// not reach it). Device launch is not emulated; it cannot be combined with other flags.
///
/// # Safety
/// `exec` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuGraphInstantiateWithFlags(
    exec: *mut *mut c_void,
    graph: *mut c_void,
    flags: u64,
) -> u32 {
    if exec.is_null() || flags & !(AUTO_FREE | UPLOAD | DEVICE_LAUNCH | NODE_PRIORITY) != 0 {
        return code::INVALID_VALUE;
    }
    if flags & DEVICE_LAUNCH != 0 {
        return if flags == DEVICE_LAUNCH {
            code::NOT_SUPPORTED
        } else {
            code::INVALID_VALUE
        };
    }
    let mut s = state();
    let Some(g) = s.graphs.get(&(graph as usize)).cloned() else {
        return code::INVALID_VALUE;
    };
    let h = s.handle();
    s.execs.insert(h, g);
    // SAFETY: forwarded caller guarantee.
    unsafe { put(exec, h as *mut c_void) }
}

/// `cuGraphInstantiate`: CUDA 12's name for [`cuGraphInstantiateWithFlags`].
///
/// # Safety
/// `exec` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn cuGraphInstantiate(
    exec: *mut *mut c_void,
    graph: *mut c_void,
    flags: u64,
) -> u32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { cuGraphInstantiateWithFlags(exec, graph, flags) }
}

/// `cuGraphLaunch`: runs the executable graph's work in order on `stream` (which must belong
/// to its device's context), or records it there when that stream is capturing.
///
/// # Safety
/// Host memory that captured copies and host functions use must still be valid.
#[no_mangle]
pub unsafe extern "C" fn cuGraphLaunch(exec: *mut c_void, stream: *mut c_void) -> u32 {
    let device = match current() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let mut s = state();
    let Some(g) = s.execs.get(&(exec as usize)).cloned() else {
        return code::INVALID_HANDLE;
    };
    let stream = stream as usize;
    if g.device != device || !s.stream_on(stream, device) {
        return code::INVALID_HANDLE;
    }
    for (_, w) in &g.nodes {
        let r = match capture::record(&mut s, stream, Some(device), || w.clone()) {
            Some(r) => r,
            // SAFETY: forwarded caller guarantee.
            None => unsafe { run(&s, device, w) },
        };
        if r != code::SUCCESS {
            return r;
        }
    }
    code::SUCCESS
}

/// `cuGraphUpload`: nothing to upload; checks the handles.
#[no_mangle]
pub extern "C" fn cuGraphUpload(exec: *mut c_void, stream: *mut c_void) -> u32 {
    let device = match current() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let s = state();
    match s.execs.get(&(exec as usize)) {
        Some(g) if g.device == device && s.stream_on(stream as usize, device) => code::SUCCESS,
        _ => code::INVALID_HANDLE,
    }
}

/// `cuGraphExecDestroy`.
#[no_mangle]
pub extern "C" fn cuGraphExecDestroy(exec: *mut c_void) -> u32 {
    match state().execs.remove(&(exec as usize)) {
        Some(_) => code::SUCCESS,
        None => code::INVALID_VALUE,
    }
}

/// `cuGraphDestroy`.
#[no_mangle]
pub extern "C" fn cuGraphDestroy(graph: *mut c_void) -> u32 {
    match state().graphs.remove(&(graph as usize)) {
        Some(_) => code::SUCCESS,
        None => code::INVALID_VALUE,
    }
}

/// `cuGraphGetNodes`: with `nodes` null, the node count in `*num`; else up to `*num` node
/// handles (the rest of the array nulled) and the number written in `*num`. A graph still
/// being captured answers too.
///
/// # Safety
/// `num` must be valid for a read and a write; `nodes`, if not null, for `*num` writes.
#[no_mangle]
pub unsafe extern "C" fn cuGraphGetNodes(
    graph: *mut c_void,
    nodes: *mut *mut c_void,
    num: *mut usize,
) -> u32 {
    if num.is_null() {
        return code::INVALID_VALUE;
    }
    let s = state();
    let h = graph as usize;
    let g = s.graphs.get(&h).or_else(|| {
        s.captures
            .by_stream
            .values()
            .find(|c| c.handle == h)
            .map(|c| &c.graph)
    });
    let Some(g) = g else {
        return code::INVALID_VALUE;
    };
    if nodes.is_null() {
        // SAFETY: forwarded caller guarantee.
        return unsafe { put(num, g.nodes.len()) };
    }
    // SAFETY: forwarded caller guarantee.
    let room = unsafe { num.read() };
    for i in 0..room {
        let v = g.nodes.get(i).map_or(0, |(node, _)| *node);
        // SAFETY: `nodes` holds `room` entries, per the caller.
        unsafe { nodes.add(i).write(v as *mut c_void) };
    }
    // SAFETY: forwarded caller guarantee.
    unsafe { put(num, room.min(g.nodes.len())) }
}
