//! Typed launchers for the CUDA modules, one family a file (the host side of `kernels/cuda/*.cu`).
//! They take raw device pointers (`u64`), shapes and strides on a stream; tensors, allocation and
//! dtype dispatch belong to the engine.

pub mod amp;
pub mod attention;
pub mod bce;
pub mod bn_relu;
pub mod conv;
pub mod depthwise;
pub mod elementwise;
pub mod gemm;
pub mod gemm_tc;
pub mod grad_norm;
pub mod layer_norm;
pub mod layout;
pub mod optim;
pub mod pool;
pub mod reduce;
pub mod rng;
pub mod softmax_xent;
pub mod squeeze_excite;

use crate::error::{Error, Result};
use crate::registry;
use cudarc::driver::{result, sys, PushKernelArg};
use cudarc::driver::{CudaFunction, CudaModule, CudaStream, DeviceRepr, LaunchArgs, LaunchConfig};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A device pointer.
pub type DevPtr = u64;

/// The most dimensions a strided kernel takes (the prelude's `KILN_MAX_DIMS`).
pub const MAX_DIMS: usize = 6;

/// `rows` contiguous rows of `len` elements each: what the row kernels (softmax, cross-entropy,
/// BCE, LayerNorm, row reductions) run over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowDims {
    /// Rows.
    pub rows: usize,
    /// Elements a row.
    pub len: usize,
}

/// A shape, as the prelude's `Shape`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape {
    d: [i64; MAX_DIMS],
    rank: i32,
}

/// Element strides of one operand, as the prelude's `Strides`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Strides {
    s: [i64; MAX_DIMS],
}

// SAFETY: plain-old-data with the C layout the kernels declare.
unsafe impl DeviceRepr for Shape {}
// SAFETY: as above.
unsafe impl DeviceRepr for Strides {}

impl Shape {
    /// `dims` as a kernel argument; more than [`MAX_DIMS`] is an error.
    pub fn new(dims: &[usize]) -> Result<Shape> {
        let mut s = Shape {
            rank: dims.len() as i32,
            ..Default::default()
        };
        copy_dims(&mut s.d, dims)?;
        Ok(s)
    }
}

impl Strides {
    /// `strides` as a kernel argument.
    pub fn new(strides: &[usize]) -> Result<Strides> {
        let mut s = Strides::default();
        copy_dims(&mut s.s, strides)?;
        Ok(s)
    }
}

fn copy_dims(dst: &mut [i64; MAX_DIMS], src: &[usize]) -> Result<()> {
    if src.len() > MAX_DIMS {
        return Err(Error::Launch(format!(
            "{} dimensions after coalescing; CUDA kernels take at most {MAX_DIMS}",
            src.len()
        )));
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s as i64;
    }
    Ok(())
}

/// One kernel argument: any plain value (`u64` device pointers, sizes, structs).
pub trait Arg {
    /// Pushes the value onto a launch.
    fn push<'a>(&'a self, b: &mut LaunchArgs<'a>);
}

impl<T: DeviceRepr> Arg for T {
    fn push<'a>(&'a self, b: &mut LaunchArgs<'a>) {
        b.arg(self);
    }
}

thread_local! {
    /// The stream this thread's launches go to instead of their device's compute stream while
    /// it captures a CUDA graph ([`route_to`]).
    static ROUTE: RefCell<Option<Arc<CudaStream>>> = const { RefCell::new(None) };
    /// Why this thread may not launch kernels now ([`block_launches`]).
    static BLOCKED: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Sends this thread's launches for `stream`'s context to `stream` until the guard drops, in
/// place of the device's compute stream (PyTorch's per-thread current stream): a CUDA graph is
/// captured on a side stream of its own while other threads keep launching on the compute one.
pub fn route_to(stream: Arc<CudaStream>) -> RouteGuard {
    RouteGuard(ROUTE.with(|r| r.borrow_mut().replace(stream)))
}

/// Restores the previous routing of [`route_to`] when dropped.
#[must_use = "the routing ends when the guard drops"]
pub struct RouteGuard(Option<Arc<CudaStream>>);

impl std::fmt::Debug for RouteGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouteGuard")
    }
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        ROUTE.with(|r| *r.borrow_mut() = previous);
    }
}

/// Refuses every launch on this thread, naming `why`, until the guard drops: host code re-run
/// only for the scalars it computes (a CUDA graph's step scalars) must not queue device work.
pub fn block_launches(why: &'static str) -> BlockGuard {
    BlockGuard(BLOCKED.with(|b| b.replace(Some(why))))
}

/// Lifts the block of [`block_launches`] when dropped.
#[must_use = "the block ends when the guard drops"]
#[derive(Debug)]
pub struct BlockGuard(Option<&'static str>);

impl Drop for BlockGuard {
    fn drop(&mut self) {
        BLOCKED.with(|b| b.set(self.0));
    }
}

/// Device scratch memory a launcher holds until its launches are queued; it is reused in stream
/// order once dropped.
pub struct Scratch {
    ptr: DevPtr,
    _hold: Box<dyn Any + Send>,
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scratch({:#x})", self.ptr)
    }
}

impl Scratch {
    /// Scratch at `ptr`, valid while `hold` lives.
    pub fn new(ptr: DevPtr, hold: Box<dyn Any + Send>) -> Scratch {
        Scratch { ptr, _hold: hold }
    }

    /// Its device address.
    pub fn ptr(&self) -> DevPtr {
        self.ptr
    }
}

/// Where launchers get scratch memory: the engine installs its caching allocator
/// ([`Kernels::set_scratch`]), so no launch allocates from the driver.
pub type ScratchFn = Box<dyn Fn(usize) -> Result<Scratch> + Send + Sync>;

/// Loads modules for one device on first use and launches their kernels on one stream.
pub struct Kernels {
    stream: Arc<CudaStream>,
    arch: u32,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    scratch: OnceLock<ScratchFn>,
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kernels(sm_{})", self.arch)
    }
}

impl Kernels {
    /// Kernels for the device of `stream`, compiled for its compute capability.
    pub fn new(stream: Arc<CudaStream>) -> Result<Kernels> {
        let (major, minor) = stream.context().compute_capability().map_err(driver)?;
        Ok(Kernels {
            stream,
            arch: (major * 10 + minor) as u32,
            modules: Mutex::new(HashMap::new()),
            scratch: OnceLock::new(),
        })
    }

    /// The stream this thread's kernels run on: the compute stream, or the stream a graph
    /// capture routed this thread to ([`route_to`]).
    pub fn stream(&self) -> Arc<CudaStream> {
        let ctx = self.stream.context().cu_ctx();
        ROUTE.with(|r| match &*r.borrow() {
            Some(s) if s.context().cu_ctx() == ctx => s.clone(),
            _ => self.stream.clone(),
        })
    }

    /// The compute stream itself, whatever this thread's routing.
    pub fn compute_stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Serves [`Kernels::scratch`] from `f` from now on; false if an allocator was already set.
    pub fn set_scratch(&self, f: ScratchFn) -> bool {
        self.scratch.set(f).is_ok()
    }

    /// `bytes` of uninitialized scratch memory: from the allocator [`Kernels::set_scratch`]
    /// installed, else from the driver on this thread's stream.
    pub fn scratch(&self, bytes: usize) -> Result<Scratch> {
        if let Some(f) = self.scratch.get() {
            return f(bytes);
        }
        let stream = self.stream();
        // SAFETY: scratch is written by the launches that use it before they read it.
        let slice = unsafe { stream.alloc::<u8>(bytes) }
            .map_err(|e| Error::Launch(format!("scratch of {bytes} bytes: {e:?}")))?;
        let ptr = cudarc::driver::DevicePtr::device_ptr(&slice, &stream).0;
        Ok(Scratch::new(ptr, Box::new(slice)))
    }

    /// `bytes` of zeroed scratch memory (zeroed in stream order, before the launches using it).
    pub fn scratch_zeroed(&self, bytes: usize) -> Result<Scratch> {
        let s = self.scratch(bytes)?;
        if bytes > 0 {
            // SAFETY: the scratch holds `bytes` bytes; the memset is queued on this thread's
            // stream, before any launch that reads it.
            unsafe { result::memset_d8_async(s.ptr, 0, bytes, self.stream().cu_stream()) }
                .map_err(driver)?;
        }
        Ok(s)
    }

    /// The device's compute capability as `major*10 + minor`.
    pub fn arch(&self) -> u32 {
        self.arch
    }

    /// Compiles and loads module `file` now, if not yet loaded (before a CUDA graph capture,
    /// which should record launches, not module loads).
    pub fn preload(&self, file: &'static str) -> Result<()> {
        self.module(file).map(|_| ())
    }

    /// Kernel `name` of module `file`, compiling and loading the module on first use.
    pub fn func(&self, file: &'static str, name: &str) -> Result<CudaFunction> {
        self.module(file)?
            .load_function(name)
            .map_err(|e| Error::Launch(format!("{file} has no kernel {name}: {e:?}")))
    }

    /// Module `file`, compiled and loaded on first use.
    fn module(&self, file: &'static str) -> Result<Arc<CudaModule>> {
        Ok({
            let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
            match modules.get(file) {
                Some(m) => m.clone(),
                None => {
                    let ptx = registry::module(file)?.ptx(self.arch)?;
                    let m = self
                        .stream
                        .context()
                        .load_module(ptx.into())
                        .map_err(|e| Error::Launch(format!("loading {file}: {e:?}")))?;
                    modules.insert(file, m.clone());
                    m
                }
            }
        })
    }

    /// Launches `file`'s kernel `name` with `args`.
    ///
    /// # Safety
    /// `args` must match the kernel's parameters in number, order and type, and every pointer
    /// must address device memory large enough for what the kernel touches under `cfg`.
    pub unsafe fn launch(
        &self,
        file: &'static str,
        name: &str,
        cfg: LaunchConfig,
        args: &[&dyn Arg],
    ) -> Result<()> {
        if let Some(why) = BLOCKED.with(Cell::get) {
            return Err(Error::Launch(format!("{file}:{name}: {why}")));
        }
        let f = self.func(file, name)?;
        if cfg.shared_mem_bytes > 0 {
            // A function may take 48 KiB of shared memory, static and dynamic together, unless
            // its dynamic limit is raised first (per function; cheap, and never captured).
            let attr = sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
            f.set_attribute(attr, cfg.shared_mem_bytes as i32)
                .map_err(|e| {
                    Error::Launch(format!(
                        "{file}:{name}: {} bytes of shared memory: {e:?}",
                        cfg.shared_mem_bytes
                    ))
                })?;
        }
        let stream = self.stream();
        let mut b = stream.launch_builder(&f);
        for a in args {
            a.push(&mut b);
        }
        // SAFETY: the caller guarantees the arguments match the kernel.
        unsafe { b.launch(cfg) }
            .map(|_| ())
            .map_err(|e| Error::Launch(format!("{file}:{name}: {e:?}")))
    }
}

/// Elements of float type `ty` ("f64", "f32", "f16", "bf16") in one 16-byte vector, prelude.cuh's
/// `Pack<T>`: what a packed kernel's thread moves at once.
pub(crate) fn pack_len(ty: &str) -> usize {
    match ty {
        "f64" => 2,
        "f32" => 4,
        _ => 8,
    }
}

/// A 1-d grid of 256-thread blocks covering `n` elements (grid-stride kernels cap the blocks).
pub fn grid_1d(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(256).clamp(1, 65535 * 4) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn driver(e: cudarc::driver::DriverError) -> Error {
    Error::Launch(format!("{e:?}"))
}

/// Whether `libcuda` can be loaded (checked before any driver call).
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the library.
    unsafe { sys::is_culib_present() }
}
