//! NCCL (feature `nccl`): collectives on CUDA tensors in place, queued on the tensor's device's
//! compute stream, through cudarc's raw bindings to a `libnccl.so` found at run time (the
//! `nvidia-nccl-cu13` wheel that `scripts/install-nccl.sh` installs, or the system's). One
//! communicator per process (`cuda:LOCAL_RANK`, the unique id shared over MPI or the TCP
//! rendezvous), or one over the devices of a process (`ncclCommInitAll`). Where NCCL does not
//! load, or the devices are the emulator's, [`fall_back`] logs why, once, and the callers keep
//! their other path.
//!
//! No collective waits forever: where the host waits for one (the host-staged collectives, the
//! barrier, DDP's round of gradient buckets), an event recorded after it on the stream is
//! queried, with `ncclCommGetAsyncError`, until the job's timeout (`--dist-timeout`); on a
//! timeout or an asynchronous error the communicator is aborted (`ncclCommAbort`, which ends
//! its kernels), and the error names the collective and the timeout.

use super::collectives::{check_blocks, Collectives};
use super::deadline::{wait_or_abort, Progress};
use super::element::{Element, ReduceOp};
use super::group::{Launcher, ProcessGroup};
use super::nccl_id::{self, UniqueId};
use super::setup_deadline::SetupDeadline;
use crate::{Error, Result};
use cudarc::nccl::{result as nccl, sys};
use kiln_engine::cuda::{self, CudaDevice};
use kiln_engine::{DType, Device, Storage, Tensor};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The oldest NCCL kiln uses (2.10: the first with `ncclAvg`).
const MIN_VERSION: i32 = 21000;

/// The variable that switches NCCL off (`KILN_NCCL=0`).
pub const SWITCH_VAR: &str = "KILN_NCCL";

/// One rank's NCCL communicator, bound to one device.
pub struct NcclComm {
    comm: sys::ncclComm_t,
    device: Arc<CudaDevice>,
    rank: usize,
    world: usize,
    /// One NCCL call at a time on this communicator (NCCL's rule for a communicator).
    lock: Mutex<()>,
    /// How long the host waits for a collective (the job's `--dist-timeout`).
    timeout: Duration,
    /// Whether the communicator was aborted after a collective failed or timed out.
    aborted: AtomicBool,
}

// SAFETY: the communicator handle is only used under `lock`, and NCCL allows a communicator
// to be used from any thread so long as calls on it are not concurrent.
unsafe impl Send for NcclComm {}
// SAFETY: as for Send: every call on the handle takes `lock`.
unsafe impl Sync for NcclComm {}

impl std::fmt::Debug for NcclComm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "NcclComm(rank {} of {} on cuda:{})",
            self.rank,
            self.world,
            self.device.ordinal()
        )
    }
}

impl Drop for NcclComm {
    fn drop(&mut self) {
        // Work queued on the stream may still use the communicator: let it finish (within the
        // timeout). Then abort rather than destroy: ncclCommDestroy is collective within a
        // node, so destroying the device threads' communicators one after another from one
        // thread could hang.
        if self.wait_queued("the last collectives").is_ok() {
            self.abort();
        }
    }
}

fn nccl_err(what: &'static str) -> impl Fn(nccl::NcclError) -> Error {
    move |e| Error::Dist(format!("{what} failed: NCCL error {:?}", e.0))
}

/// The reason NCCL has not been used, once one was logged.
static FALLBACK: OnceLock<String> = OnceLock::new();

/// Logs, once per process, that NCCL does not serve and that `path` carries CUDA tensors instead.
pub fn fall_back(reason: &str, path: &str) {
    if FALLBACK.set(reason.to_string()).is_ok() {
        log::warn!("NCCL is not used ({reason}): CUDA tensors are reduced through {path}");
    }
}

/// Why NCCL was not used, if [`fall_back`] has logged it.
pub fn fallback_reason() -> Option<&'static str> {
    FALLBACK.get().map(String::as_str)
}

/// Why NCCL cannot serve `devices` (switched off, emulated devices, no library, too old), or
/// None when it can.
pub fn unavailable(devices: &[Arc<CudaDevice>]) -> Option<String> {
    if !cuda::parse_switch(std::env::var(SWITCH_VAR).ok().as_deref(), true) {
        return Some(format!("switched off by {SWITCH_VAR}=0"));
    }
    if let Some(d) = devices.iter().find(|d| d.is_emulator()) {
        return Some(format!(
            "cuda:{} is kiln's CUDA emulator, on which NCCL cannot run",
            d.ordinal()
        ));
    }
    // SAFETY: only tries to open the library by its candidate names.
    if !unsafe { sys::is_culib_present() } {
        return Some(
            "libnccl.so was not found on LD_LIBRARY_PATH (scripts/install-nccl.sh installs the \
             nvidia-nccl-cu13 wheel and prints its folder)"
                .into(),
        );
    }
    match nccl::get_nccl_version() {
        Ok(v) if v >= MIN_VERSION => None,
        Ok(v) => Some(format!(
            "libnccl.so is version {}.{}.{}, kiln needs 2.10 or newer",
            v / 10000,
            v / 100 % 100,
            v % 100
        )),
        Err(e) => Some(format!("ncclGetVersion failed: {:?}", e.0)),
    }
}

/// One communicator over the devices `ordinals` of this process (rank r on `ordinals[r]`,
/// `ncclCommInitAll`), whose collectives the host waits for up to `timeout`, or Err(reason)
/// when NCCL cannot serve them.
pub fn for_devices(
    ordinals: &[usize],
    timeout: Duration,
) -> Result<std::result::Result<Vec<NcclComm>, String>> {
    let devices = open(ordinals)?;
    if let Some(reason) = unavailable(&devices) {
        return Ok(Err(reason));
    }
    let list: Vec<i32> = ordinals.iter().map(|&n| n as i32).collect();
    let mut comms = vec![std::ptr::null_mut(); list.len()];
    // SAFETY: `comms` has room for one handle per device of `list`.
    unsafe { nccl::comm_init_all(comms.as_mut_ptr(), list.len() as i32, list.as_ptr()) }
        .map_err(nccl_err("ncclCommInitAll"))?;
    let world = devices.len();
    Ok(Ok(comms
        .into_iter()
        .zip(devices)
        .enumerate()
        .map(|(rank, (comm, device))| NcclComm::new(comm, device, rank, world, timeout))
        .collect()))
}

/// This process's communicator (rank `group.rank` on `cuda:ordinal`), the unique id shared over
/// MPI (mpirun, SLURM, with the `mpi` feature) or the TCP rendezvous at MASTER_ADDR:MASTER_PORT;
/// Err(reason) when NCCL cannot serve the device.
pub fn for_process(
    group: &ProcessGroup,
    ordinal: usize,
) -> Result<std::result::Result<NcclComm, String>> {
    let device = cuda::device(ordinal)?;
    if let Some(reason) = unavailable(std::slice::from_ref(&device)) {
        return Ok(Err(reason));
    }
    let id = share_id(group)?;
    device.make_current()?;
    let mut comm = std::ptr::null_mut();
    let id = sys::ncclUniqueId {
        internal: id.map(|b| b as std::ffi::c_char),
    };
    let watch = SetupDeadline::arm("ncclCommInitRank", group.rank, group.timeout)?;
    // SAFETY: `comm` receives the handle; the device's context is current on this thread.
    unsafe { nccl::comm_init_rank(&mut comm, group.world_size as i32, id, group.rank as i32) }
        .map_err(nccl_err("ncclCommInitRank"))?;
    drop(watch);
    Ok(Ok(NcclComm::new(
        comm,
        device,
        group.rank,
        group.world_size,
        group.timeout,
    )))
}

fn open(ordinals: &[usize]) -> Result<Vec<Arc<CudaDevice>>> {
    Ok(ordinals
        .iter()
        .map(|&n| cuda::device(n))
        .collect::<kiln_engine::Result<Vec<_>>>()?)
}

/// A new unique id (rank 0 makes it; the others receive it).
fn new_id() -> Result<UniqueId> {
    let id = nccl::get_uniqueid().map_err(nccl_err("ncclGetUniqueId"))?;
    Ok(id.internal.map(|c| c as u8))
}

/// Rank 0's unique id on every rank: over MPI where MPI joined the ranks, else the rendezvous.
fn share_id(group: &ProcessGroup) -> Result<UniqueId> {
    #[cfg(feature = "mpi")]
    if matches!(group.launcher, Launcher::Mpirun | Launcher::Slurm) {
        let mpi = super::mpi::MpiComm::join(group)?;
        let mut id = if group.rank == 0 { new_id()? } else { [0; 128] };
        mpi.broadcast_bytes(&mut id, 0)?;
        return Ok(id);
    }
    if group.launcher != Launcher::Torchrun {
        return Err(Error::Dist(format!(
            "NCCL needs the ranks to share an id: under {:?}, build with the `mpi` feature, or \
             start the ranks with `kiln launch` / torchrun (MASTER_ADDR, MASTER_PORT)",
            group.launcher
        )));
    }
    let store = super::rendezvous::join(group)?;
    nccl_id::share(&store, group.rank, new_id)
}

impl NcclComm {
    fn new(
        comm: sys::ncclComm_t,
        device: Arc<CudaDevice>,
        rank: usize,
        world: usize,
        timeout: Duration,
    ) -> Self {
        NcclComm {
            comm,
            device,
            rank,
            world,
            lock: Mutex::new(()),
            timeout,
            aborted: AtomicBool::new(false),
        }
    }

    /// Aborts the communicator, once: its kernels end and every later call fails.
    fn abort(&self) {
        if !self.aborted.swap(true, Ordering::SeqCst) {
            // SAFETY: the handle came from ncclCommInitRank/All and is aborted (freed) once,
            // here; `aborted` keeps every later call off it.
            let _ = unsafe { nccl::comm_abort(self.comm) };
        }
    }

    /// Waits for the work queued so far on this thread's stream (the collectives `what` among
    /// it): an event recorded after it is queried, with the communicator's asynchronous error,
    /// until the timeout; then the communicator is aborted. A graph capture queues nothing that
    /// runs now, so there is nothing to wait for.
    pub fn wait_queued(&self, what: &str) -> Result<()> {
        if self.aborted.load(Ordering::SeqCst) {
            return Err(self.aborted_error());
        }
        if cuda::is_capturing() {
            return Ok(());
        }
        let event = {
            let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.device.make_current()?;
            (self.device.stream().record_event(None)).map_err(|e| {
                Error::Dist(format!("cannot record a CUDA event after {what}: {e:?}"))
            })?
        };
        let comm = self.comm;
        let progress = || match event.try_is_complete() {
            Ok(true) => Progress::Done,
            Ok(false) => async_error(comm).map_or(Progress::Running, Progress::Failed),
            Err(e) => Progress::Failed(format!("CUDA error {e:?}")),
        };
        let what = format!("NCCL {what} (rank {} of {})", self.rank, self.world);
        wait_or_abort(&what, self.timeout, progress, || self.abort())
    }

    fn aborted_error(&self) -> Error {
        Error::Dist(format!(
            "the NCCL communicator of rank {} was aborted after a collective failed or timed out",
            self.rank
        ))
    }

    /// Runs one NCCL call on the device's compute stream, under the lock.
    fn call(
        &self,
        what: &'static str,
        f: impl FnOnce(
            sys::ncclComm_t,
            sys::cudaStream_t,
        ) -> std::result::Result<nccl::NcclStatus, nccl::NcclError>,
    ) -> Result<()> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.aborted.load(Ordering::SeqCst) {
            return Err(self.aborted_error());
        }
        self.device.make_current()?;
        let stream = self.device.stream().cu_stream() as sys::cudaStream_t;
        f(self.comm, stream).map_err(nccl_err(what))?;
        Ok(())
    }

    /// Combines `t` (a dense CUDA tensor on this rank's device) over the ranks, in place.
    pub fn all_reduce_tensor(&self, t: &Tensor, op: ReduceOp) -> Result<()> {
        let b = self.buffer(t, "all_reduce")?;
        // SAFETY: `b` spans the tensor's elements in device memory; the reduction is queued on
        // the compute stream, after the kernels that wrote them and before any that read them.
        self.call("ncclAllReduce", |c, s| unsafe {
            nccl::all_reduce(b.ptr, b.ptr, b.count, b.ty, nccl_op(op), c, s)
        })
    }

    /// Copies rank `root`'s `t` into every rank's `t`.
    pub fn broadcast_tensor(&self, t: &Tensor, root: usize) -> Result<()> {
        let b = self.buffer(t, "broadcast")?;
        // SAFETY: as in all_reduce_tensor.
        self.call("ncclBroadcast", |c, s| unsafe {
            nccl::broadcast(b.ptr, b.ptr, b.count, b.ty, root as i32, c, s)
        })
    }

    /// Every rank's `send` in rank order into `recv` (world × send's elements).
    pub fn all_gather_tensor(&self, send: &Tensor, recv: &Tensor) -> Result<()> {
        let (a, b) = (
            self.buffer(send, "all_gather")?,
            self.buffer(recv, "all_gather")?,
        );
        self.check_blocks("all_gather", &a, &b)?;
        // SAFETY: as in all_reduce_tensor; `recv` holds world × `a.count` elements.
        self.call("ncclAllGather", |c, s| unsafe {
            nccl::all_gather(a.ptr, b.ptr, a.count, a.ty, c, s)
        })
    }

    /// Reduces `send` (world blocks of recv's elements) over the ranks; block `rank` to `recv`.
    pub fn reduce_scatter_tensor(&self, send: &Tensor, recv: &Tensor, op: ReduceOp) -> Result<()> {
        let (a, b) = (
            self.buffer(send, "reduce_scatter")?,
            self.buffer(recv, "reduce_scatter")?,
        );
        self.check_blocks("reduce_scatter", &b, &a)?;
        // SAFETY: as in all_reduce_tensor; `send` holds world × `b.count` elements.
        self.call("ncclReduceScatter", |c, s| unsafe {
            nccl::reduce_scatter(a.ptr, b.ptr, b.count, a.ty, nccl_op(op), c, s)
        })
    }

    /// Runs `queue` on device copies of `send` and `recv` (`send` None: in place, on `recv`'s
    /// copy), waits for the collective (`what`) and copies the device `recv` back.
    fn staged<T: Element>(
        &self,
        what: &str,
        send: Option<&[T]>,
        recv: &mut [T],
        queue: impl FnOnce(&Tensor, &Tensor) -> Result<()>,
    ) -> Result<()> {
        let r = self.upload(recv)?;
        let s = match send {
            Some(send) => self.upload(send)?,
            None => r.clone(),
        };
        queue(&s, &r)?;
        self.wait_queued(what)?;
        recv.copy_from_slice(&r.to_vec::<T>()?);
        Ok(())
    }

    fn device(&self) -> Device {
        Device::Cuda(self.device.ordinal())
    }

    fn upload<T: Element>(&self, host: &[T]) -> Result<Tensor> {
        Ok(Tensor::from_vec(host.to_vec(), &[host.len()])?.to_device(self.device())?)
    }

    /// The device span of `t`, which must be dense, on this rank's device, of an NCCL type.
    fn buffer(&self, t: &Tensor, op: &str) -> Result<Span> {
        let bad = |why: String| Error::Dist(format!("NCCL {op}: {why}"));
        if t.device() != self.device() {
            return Err(bad(format!(
                "the tensor is on {}, this rank's device is {}",
                t.device(),
                self.device()
            )));
        }
        if !t.is_contiguous() {
            return Err(bad("the tensor is not contiguous".into()));
        }
        let ty = nccl_type(t.dtype()).ok_or_else(|| bad(format!("{:?} tensors", t.dtype())))?;
        let ptr = match &*t.storage() {
            Storage::Cuda(s) => s.ptr_at(t.layout().offset()),
            Storage::Cpu(_) => return Err(bad("a host tensor".into())),
        };
        Ok(Span {
            ptr: ptr as *mut c_void,
            count: t.numel(),
            ty,
        })
    }

    /// `whole` must hold world blocks of `block`'s elements, of the same type.
    fn check_blocks(&self, op: &str, block: &Span, whole: &Span) -> Result<()> {
        if whole.count != block.count * self.world || whole.ty != block.ty {
            return Err(Error::Dist(format!(
                "NCCL {op}: {} elements against {} for a world of {}",
                whole.count, block.count, self.world
            )));
        }
        Ok(())
    }
}

/// Host buffers are staged through the device; the caller divides [`ReduceOp::Average`]'s sums.
impl Collectives for NcclComm {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world
    }

    fn all_reduce<T: Element>(&self, buf: &mut [T], op: ReduceOp) -> Result<()> {
        let op = summing(op);
        self.staged("ncclAllReduce", None, buf, |t, _| {
            self.all_reduce_tensor(t, op)
        })
    }

    fn broadcast<T: Element>(&self, buf: &mut [T], root: usize) -> Result<()> {
        self.staged("ncclBroadcast", None, buf, |t, _| {
            self.broadcast_tensor(t, root)
        })
    }

    // Native: ncclAllGather, one collective instead of a broadcast per rank.
    fn all_gather<T: Element>(&self, send: &[T], recv: &mut [T]) -> Result<()> {
        check_blocks("all_gather", send.len(), recv.len(), self.world)?;
        self.staged("ncclAllGather", Some(send), recv, |s, r| {
            self.all_gather_tensor(s, r)
        })
    }

    // Native: ncclReduceScatter moves each rank only its block, not the whole sum.
    fn reduce_scatter<T: Element>(&self, send: &[T], recv: &mut [T], op: ReduceOp) -> Result<()> {
        check_blocks("reduce_scatter", recv.len(), send.len(), self.world)?;
        let op = summing(op);
        self.staged("ncclReduceScatter", Some(send), recv, |s, r| {
            self.reduce_scatter_tensor(s, r, op)
        })
    }

    // Native: the one element is reduced on the device and never comes back to the host.
    fn barrier(&self) -> Result<()> {
        let one = Tensor::zeros(&[1], DType::F32)?.to_device(self.device())?;
        self.all_reduce_tensor(&one, ReduceOp::Sum)?;
        self.wait_queued("barrier")
    }
}

/// Sum for [`ReduceOp::Average`] (whose division the caller does), else `op`.
fn summing(op: ReduceOp) -> ReduceOp {
    match op {
        ReduceOp::Average => ReduceOp::Sum,
        op => op,
    }
}

/// The communicator's asynchronous error (a peer gone, a network failure), if it has one.
fn async_error(comm: sys::ncclComm_t) -> Option<String> {
    let mut state = sys::ncclResult_t::ncclSuccess;
    // SAFETY: `comm` is live (the caller aborts it only after the last query) and `state` is
    // a valid place for the answer.
    let called = unsafe { sys::ncclCommGetAsyncError(comm, &mut state) };
    match (called, state) {
        (sys::ncclResult_t::ncclSuccess, sys::ncclResult_t::ncclSuccess) => None,
        // ncclInProgress: a non-blocking communicator still connecting, not an error.
        (sys::ncclResult_t::ncclSuccess, sys::ncclResult_t::ncclInProgress) => None,
        (sys::ncclResult_t::ncclSuccess, e) => Some(format!("asynchronous NCCL error {e:?}")),
        (e, _) => Some(format!("ncclCommGetAsyncError failed: {e:?}")),
    }
}

/// A dense run of device memory NCCL reads or writes.
struct Span {
    ptr: *mut c_void,
    count: usize,
    ty: sys::ncclDataType_t,
}

fn nccl_op(op: ReduceOp) -> sys::ncclRedOp_t {
    match op {
        ReduceOp::Sum => sys::ncclRedOp_t::ncclSum,
        ReduceOp::Average => sys::ncclRedOp_t::ncclAvg,
        ReduceOp::Max => sys::ncclRedOp_t::ncclMax,
    }
}

fn nccl_type(dtype: DType) -> Option<sys::ncclDataType_t> {
    use sys::ncclDataType_t as T;
    Some(match dtype {
        DType::F32 => T::ncclFloat32,
        DType::F64 => T::ncclFloat64,
        DType::F16 => T::ncclFloat16,
        DType::BF16 => T::ncclBfloat16,
        DType::I32 => T::ncclInt32,
        DType::I64 => T::ncclInt64,
        DType::U8 => T::ncclUint8,
        DType::Bool => return None,
    })
}
