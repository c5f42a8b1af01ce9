//! One CUDA device: its context, a compute and a copy stream, the kernel modules and the caching
//! allocator. Devices are opened once per process and shared.

use super::alloc::{block_size, MemoryStats, Pool};
use super::capture::capture_pool;
use super::cublas::Blas;
use super::cudnn::Dnn;
use super::upload::Staging;
use super::CudaStorage;
use crate::{DType, Error, Result};
use cudarc::driver::{result, sys, CudaContext, CudaStream};
use kiln_kernels::cuda::{driver_present, Kernels, Scratch};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The oldest driver kiln's PTX (NVRTC 13.0) loads on.
const MIN_DRIVER: i32 = 13000;

/// An open CUDA device.
pub struct CudaDevice {
    ordinal: usize,
    name: String,
    ctx: Arc<CudaContext>,
    kernels: Kernels,
    copy_stream: Arc<CudaStream>,
    pool: Mutex<Pool>,
    staging: Mutex<Option<Staging>>,
    /// cuBLAS, loaded on first use (Err: why it cannot serve).
    blas: OnceLock<std::result::Result<Blas, String>>,
    /// cuDNN, loaded on first use (Err: why it cannot serve).
    dnn: OnceLock<std::result::Result<Mutex<Dnn>, String>>,
}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cuda:{} ({})", self.ordinal, self.name)
    }
}

fn cuda_err(what: &str) -> impl Fn(cudarc::driver::DriverError) -> Error + '_ {
    move |e| Error::Cuda(format!("{what}: {e:?}"))
}

/// The device with `ordinal`, opened on first use.
pub fn device(ordinal: usize) -> Result<Arc<CudaDevice>> {
    static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<CudaDevice>>>> = OnceLock::new();
    let mut devices = DEVICES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(d) = devices.get(&ordinal) {
        return Ok(d.clone());
    }
    let d = Arc::new(CudaDevice::open(ordinal)?);
    // The launchers' scratch memory (BN partial sums, split-K slices) comes from the caching
    // allocator, so no launch allocates from the driver (nor can break a graph capture).
    let weak = Arc::downgrade(&d);
    d.kernels.set_scratch(Box::new(move |bytes| {
        let dev = weak
            .upgrade()
            .ok_or_else(|| kiln_kernels::Error::Launch("scratch for a closed device".into()))?;
        let s = CudaStorage::alloc(&dev, DType::U8, bytes)
            .map_err(|e| kiln_kernels::Error::Scratch(Box::new(e)))?;
        Ok(Scratch::new(s.ptr(), Box::new(s)))
    }));
    devices.insert(ordinal, d.clone());
    Ok(d)
}

impl CudaDevice {
    fn open(ordinal: usize) -> Result<CudaDevice> {
        if !driver_present() {
            return Err(Error::NoCuda(
                "libcuda.so was not found (no NVIDIA driver on this machine, or it is not on the library path)".into(),
            ));
        }
        result::init().map_err(cuda_err("cuInit"))?;
        let mut version = 0;
        // SAFETY: `version` is valid for a write.
        unsafe { sys::cuDriverGetVersion(&mut version) }
            .result()
            .map_err(cuda_err("cuDriverGetVersion"))?;
        if version < MIN_DRIVER {
            return Err(Error::NoCuda(format!(
                "the NVIDIA driver supports CUDA {}.{}, kiln needs 13.0 or newer",
                version / 1000,
                version % 1000 / 10
            )));
        }
        let count = result::device::get_count().map_err(cuda_err("cuDeviceGetCount"))? as usize;
        if ordinal >= count {
            return Err(Error::NoCuda(format!(
                "cuda:{ordinal} requested, but {count} CUDA device(s) are present"
            )));
        }
        let ctx = CudaContext::new(ordinal).map_err(cuda_err("creating the context"))?;
        // SAFETY: kiln synchronizes its own raw buffers by stream order and events; cudarc's
        // per-slice event tracking is not used.
        unsafe { ctx.disable_event_tracking() };
        let compute = ctx.new_stream().map_err(cuda_err("creating a stream"))?;
        let copy_stream = ctx.new_stream().map_err(cuda_err("creating a stream"))?;
        let name = ctx.name().unwrap_or_else(|_| "unknown".into());
        let kernels = Kernels::new(compute)?;
        Ok(CudaDevice {
            ordinal,
            name,
            ctx,
            kernels,
            copy_stream,
            pool: Mutex::new(Pool::default()),
            staging: Mutex::new(None),
            blas: OnceLock::new(),
            dnn: OnceLock::new(),
        })
    }

    /// The device ordinal.
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// The device's marketing name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The typed kernel launchers, on the compute stream.
    pub fn kernels(&self) -> &Kernels {
        &self.kernels
    }

    /// The stream this thread's device work goes to: the compute stream, or the side stream of
    /// the graph this thread is capturing.
    pub fn stream(&self) -> Arc<CudaStream> {
        self.kernels.stream()
    }

    /// The compute stream, whatever this thread's routing (vendor library handles are bound to
    /// it between calls, and graphs replay on it).
    pub fn compute_stream(&self) -> &Arc<CudaStream> {
        self.kernels.compute_stream()
    }

    /// A new side stream for one graph capture (concurrent captures by several threads each
    /// need their own).
    pub(super) fn new_capture_stream(&self) -> Result<Arc<CudaStream>> {
        self.ctx
            .new_stream()
            .map_err(cuda_err("creating a capture stream"))
    }

    /// An error naming `what` when this thread is capturing a CUDA graph on this device: the
    /// things a capture cannot record (host synchronization, host<->device copies, driver
    /// allocations) fail here instead of corrupting the capture.
    pub(crate) fn refuse_in_capture(&self, what: impl FnOnce() -> String) -> Result<()> {
        match capture_pool(self.ordinal) {
            Some(_) => Err(Error::Capture(format!(
                "{} on cuda:{} cannot be captured",
                what(),
                self.ordinal
            ))),
            None => Ok(()),
        }
    }

    /// Whether this thread is capturing a CUDA graph on this device.
    pub(super) fn capturing(&self) -> bool {
        capture_pool(self.ordinal).is_some()
    }

    /// The side stream host-to-device batch copies run on.
    pub fn copy_stream(&self) -> &Arc<CudaStream> {
        &self.copy_stream
    }

    /// Waits for all work queued on the device.
    pub fn synchronize(&self) -> Result<()> {
        self.refuse_in_capture(|| "synchronizing the device (a host sync)".into())?;
        self.ctx.synchronize().map_err(cuda_err("synchronize"))
    }

    /// Starts or stops the profiler's collection (`cuProfilerStart`/`cuProfilerStop`): with
    /// `ncu --profile-from-start off` only the kernels launched in between are profiled.
    pub fn set_profiling(&self, on: bool) -> Result<()> {
        self.bind()?;
        // SAFETY: both calls take no arguments and act on the context bound just above.
        let status = unsafe {
            if on {
                sys::cuProfilerStart()
            } else {
                sys::cuProfilerStop()
            }
        };
        status.result().map_err(cuda_err("cuProfilerStart/Stop"))
    }

    /// The device's (primary) context handle, for driver calls that name contexts.
    pub(crate) fn cu_ctx(&self) -> sys::CUcontext {
        self.ctx.cu_ctx()
    }

    /// Makes the device's context current on this thread (raw driver calls need it).
    pub(crate) fn bind(&self) -> Result<()> {
        self.ctx
            .bind_to_thread()
            .map_err(cuda_err("binding the context"))
    }

    /// The page-locked buffer batch uploads go through.
    pub(crate) fn staging(&self) -> std::sync::MutexGuard<'_, Option<Staging>> {
        self.staging.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cuBLAS handle (on the compute stream between calls), created on first use; Err says
    /// why there is none.
    pub(super) fn blas(&self) -> std::result::Result<&Blas, &str> {
        self.blas
            .get_or_init(|| Blas::open(self))
            .as_ref()
            .map_err(String::as_str)
    }

    /// The cuDNN handle (on the compute stream between calls), created on first use; Err says
    /// why there is none.
    pub(super) fn dnn(&self) -> std::result::Result<&Mutex<Dnn>, &str> {
        self.dnn
            .get_or_init(|| Dnn::open(self).map(Mutex::new))
            .as_ref()
            .map_err(String::as_str)
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A block of at least `bytes`, from the cache or the driver; returns (address, block size).
    /// While this thread captures a graph the block comes from the graph's private pool or the
    /// cache, never from the driver ([`Error::CaptureCacheMiss`]).
    pub(crate) fn alloc(&self, bytes: usize) -> Result<(u64, usize)> {
        let size = block_size(bytes);
        if let Some(pool) = capture_pool(self.ordinal) {
            return self
                .pool()
                .take_for_capture(pool, size)
                .ok_or(Error::CaptureCacheMiss {
                    device: self.ordinal,
                    bytes: size,
                });
        }
        if let Some(block) = self.pool().take(size) {
            return Ok(block);
        }
        self.alloc_from_driver(size, bytes)
    }

    /// A new block of `size` bytes (the size class of a request of `bytes`) from the driver,
    /// counted as allocated.
    fn alloc_from_driver(&self, size: usize, bytes: usize) -> Result<(u64, usize)> {
        self.bind()?;
        // SAFETY: a plain allocation of `size` bytes in the bound context.
        let first = unsafe { result::malloc_sync(size) };
        let ptr = match first {
            Ok(p) => p,
            Err(_) => {
                // Out of memory: return the cache to the driver and try once more.
                self.empty_cache()?;
                // SAFETY: as above.
                unsafe { result::malloc_sync(size) }.map_err(|_| self.out_of_memory(bytes))?
            }
        };
        self.pool().record_driver_alloc(size);
        Ok((ptr, size))
    }

    fn out_of_memory(&self, requested: usize) -> Error {
        let stats = self.pool().stats();
        let (free, total) = self.ctx.mem_get_info().unwrap_or((0, 0));
        Error::OutOfMemory {
            device: self.ordinal,
            requested,
            allocated: stats.allocated,
            reserved: stats.reserved,
            free,
            total,
        }
    }

    /// Returns a block to the cache (called when a buffer drops), or to the private pool of the
    /// graph it belongs to or this thread is capturing.
    pub(crate) fn release(&self, ptr: u64, size: usize) {
        self.pool().give_back(ptr, size, capture_pool(self.ordinal));
    }

    /// A new private pool for a graph about to be captured.
    pub(super) fn new_graph_pool(&self) -> super::alloc::PoolId {
        self.pool().new_private()
    }

    /// Hands a graph's private pool back to the cache (the graph is gone).
    pub(super) fn release_graph_pool(&self, pool: super::alloc::PoolId) {
        self.pool().release_private(pool);
    }

    /// Puts a block of at least `bytes` from the driver into the cache, so that a graph capture
    /// (which cannot allocate from the driver) finds one ([`Error::CaptureCacheMiss`]).
    pub fn reserve(&self, bytes: usize) -> Result<()> {
        self.refuse_in_capture(|| "reserving memory (a driver allocation)".into())?;
        let (ptr, size) = self.alloc_from_driver(block_size(bytes), bytes)?;
        self.pool().give_back(ptr, size, None);
        Ok(())
    }

    /// Hands every cached block back to the driver (`torch.cuda.empty_cache`); blocks that CUDA
    /// graphs' private pools keep stay.
    pub fn empty_cache(&self) -> Result<()> {
        self.synchronize()?;
        let blocks = self.pool().drain();
        for ptr in blocks {
            // SAFETY: each block came from malloc_sync and no tensor holds it (it was cached),
            // and the device is idle.
            unsafe { result::free_sync(ptr) }.map_err(cuda_err("cuMemFree"))?;
        }
        Ok(())
    }

    /// The allocator's counters.
    pub fn memory_stats(&self) -> MemoryStats {
        self.pool().stats()
    }

    /// Free and total device memory in bytes, as the driver reports them (`torch.cuda.mem_get_info`).
    pub fn mem_get_info(&self) -> Result<(usize, usize)> {
        self.ctx.mem_get_info().map_err(cuda_err("cuMemGetInfo"))
    }

    /// Restarts the peak counter.
    pub fn reset_peak_memory(&self) {
        self.pool().reset_peak();
    }
}
