//! Stream capture and graphs: a captured sequence of kernels, copies and a memset replays like
//! eager execution (kernel parameters by value, host memory read at replay); the calls the
//! driver API forbids during capture fail with its error codes and invalidate the capture.

mod common;

use std::ptr::null_mut;
use std::sync::{Arc, Mutex, MutexGuard};

use cudarc::driver::sys::{
    self, CUresult, CUstreamCaptureMode as Mode, CUstreamCaptureStatus as Status,
};
use cudarc::driver::{CudaFunction, CudaStream, LaunchConfig, PushKernelArg};

/// Captures in global mode reach every thread: the tests of this file run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// This test's turn, the emulator without event tracking and the one stream the test uses;
/// `None` when skipped.
fn one_stream() -> Option<(MutexGuard<'static, ()>, common::Gpu, Arc<CudaStream>)> {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let gpu = common::gpu()?;
    // SAFETY: each test uses one stream for everything, so no cross-stream events are needed.
    unsafe { gpu.ctx.disable_event_tracking() };
    let stream = gpu.ctx.new_stream().unwrap();
    Some((serial, gpu, stream))
}

const KERNELS: &str = r#"
extern "C" __global__ void axpb(float* x, float a, float b, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = a * x[i] + b;
}
extern "C" __global__ void acc(const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] += x[i];
}
"#;

const N: usize = 77;

fn ok(r: CUresult) {
    assert_eq!(r, CUresult::CUDA_SUCCESS);
}

/// `n` floats of device memory, allocated outside any capture.
fn alloc(n: usize) -> u64 {
    let mut p = 0;
    // SAFETY: `p` is a valid place for the pointer.
    ok(unsafe { sys::cuMemAlloc_v2(&mut p, n * 4) });
    p
}

fn status(stream: &CudaStream) -> Status {
    let mut s = Status::CU_STREAM_CAPTURE_STATUS_NONE;
    // SAFETY: `s` is a valid place for the status.
    ok(unsafe { sys::cuStreamIsCapturing(stream.cu_stream(), &mut s) });
    s
}

/// The buffers and kernels of one run of the sequence.
struct Step {
    axpb: CudaFunction,
    acc: CudaFunction,
    x: u64,
    y: u64,
    z: u64,
}

impl Step {
    /// x <- host_in; x <- a x + b; y += x; z <- 0 then z <- y; host_out <- z.
    fn push(&self, stream: &Arc<CudaStream>, host_in: &[f32], host_out: &mut [f32], a: &mut f32) {
        let s = stream.cu_stream();
        let (n, b) = (N as i32, 1.0f32);
        // SAFETY: each pointer and size lies in its buffer; the host slices outlive the graph.
        unsafe {
            ok(sys::cuMemcpyHtoDAsync_v2(
                self.x,
                host_in.as_ptr().cast(),
                N * 4,
                s,
            ));
            let mut l = stream.launch_builder(&self.axpb);
            l.arg(&self.x).arg(&*a).arg(&b).arg(&n);
            l.launch(LaunchConfig::for_num_elems(N as u32)).unwrap();
            let mut l = stream.launch_builder(&self.acc);
            l.arg(&self.x).arg(&self.y).arg(&n);
            l.launch(LaunchConfig::for_num_elems(N as u32)).unwrap();
            ok(sys::cuMemsetD8Async(self.z, 0, N * 4, s));
            ok(sys::cuMemcpyDtoDAsync_v2(self.z, self.y, N * 4, s));
            ok(sys::cuMemcpyDtoHAsync_v2(
                host_out.as_mut_ptr().cast(),
                self.z,
                N * 4,
                s,
            ));
        }
        // The parameter is read at the call: changing it now must not reach a captured launch.
        *a += 100.0;
    }
}

fn input(round: usize) -> Vec<f32> {
    (0..N)
        .map(|i| (i * 7 + round * 3) as f32 * 0.25 - 4.0)
        .collect()
}

#[test]
fn captured_kernels_and_copies_replay_like_eager_execution() {
    let Some((_serial, gpu, stream)) = one_stream() else {
        return;
    };
    let m = gpu.module(KERNELS);
    let step = || Step {
        axpb: m.load_function("axpb").unwrap(),
        acc: m.load_function("acc").unwrap(),
        x: alloc(N),
        y: alloc(N),
        z: alloc(N),
    };
    let (graphed, eager) = (step(), step());
    let mut host_in = input(0);
    let mut host_out = vec![0f32; N];
    let mut a = 2.0f32;

    stream
        .begin_capture(Mode::CU_STREAM_CAPTURE_MODE_GLOBAL)
        .unwrap();
    assert_eq!(status(&stream), Status::CU_STREAM_CAPTURE_STATUS_ACTIVE);
    graphed.push(&stream, &host_in, &mut host_out, &mut a);
    let (mut st, mut id, mut nodes) = (Status::CU_STREAM_CAPTURE_STATUS_NONE, 0u64, 0usize);
    let mut graph_h: sys::CUgraph = null_mut();
    // SAFETY: every output is a valid place or null.
    ok(unsafe {
        sys::cuStreamGetCaptureInfo_v3(
            stream.cu_stream(),
            &mut st,
            &mut id,
            &mut graph_h,
            null_mut(),
            null_mut(),
            &mut nodes,
        )
    });
    assert_eq!((st, nodes), (Status::CU_STREAM_CAPTURE_STATUS_ACTIVE, 1));
    assert!(id > 0 && !graph_h.is_null());
    let mut count = 0usize;
    // SAFETY: a null node array asks for the count.
    ok(unsafe { sys::cuGraphGetNodes(graph_h, null_mut(), &mut count) });
    assert_eq!(count, 6, "HtoD, 2 kernels, memset, DtoD, DtoH");
    let graph = stream
        .end_capture(sys::CUgraphInstantiate_flags(0))
        .unwrap()
        .unwrap();
    assert_eq!(status(&stream), Status::CU_STREAM_CAPTURE_STATUS_NONE);
    assert!(host_out.iter().all(|v| *v == 0.0), "capture ran nothing");

    let mut eager_out = vec![0f32; N];
    let mut want_y = vec![0f32; N];
    for round in 0..4 {
        // In place: the graph holds `host_in`'s and `host_out`'s addresses.
        host_in.copy_from_slice(&input(round));
        graph.launch().unwrap();
        let mut a_eager = 2.0f32;
        eager.push(&stream, &host_in, &mut eager_out, &mut a_eager);
        stream.synchronize().unwrap();
        for (w, x) in want_y.iter_mut().zip(&host_in) {
            *w += 2.0 * x + 1.0;
        }
        assert_eq!(host_out, eager_out, "round {round}: graph vs eager");
        assert_eq!(host_out, want_y, "round {round}: graph vs host arithmetic");
    }
}

/// Ends the capture on `stream`, expecting `want` (and a null graph unless it succeeded).
fn end(stream: &CudaStream, want: CUresult) {
    let mut g: sys::CUgraph = null_mut();
    // SAFETY: `g` is a valid place for the graph.
    let r = unsafe { sys::cuStreamEndCapture(stream.cu_stream(), &mut g) };
    assert_eq!(r, want);
    assert_eq!(g.is_null(), want != CUresult::CUDA_SUCCESS);
    if !g.is_null() {
        // SAFETY: `g` came from the capture.
        ok(unsafe { sys::cuGraphDestroy(g) });
    }
}

fn begin(stream: &CudaStream, mode: Mode) {
    // SAFETY: a stream of the current context.
    ok(unsafe { sys::cuStreamBeginCapture_v2(stream.cu_stream(), mode) });
}

/// Runs `f` on another host thread with the context current there.
fn elsewhere<T: Send>(gpu: &common::Gpu, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            gpu.ctx.bind_to_thread().unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}

#[test]
fn forbidden_calls_during_capture_fail_and_invalidate_it() {
    use CUresult::*;
    let Some((_serial, gpu, stream)) = one_stream() else {
        return;
    };
    let s = stream.cu_stream();
    let buf = alloc(4);
    let host = [1f32; 4];
    let sync_copy = || {
        // SAFETY: 16 bytes in and out of range.
        unsafe { sys::cuMemcpyHtoD_v2(buf, host.as_ptr().cast(), 16) }
    };
    let alloc_elsewhere = || {
        elsewhere(&gpu, || {
            let mut p = 0;
            // SAFETY: `p` is a valid place for the pointer.
            let r = unsafe { sys::cuMemAlloc_v2(&mut p, 16) };
            if r == CUDA_SUCCESS {
                // SAFETY: allocated just above.
                ok(unsafe { sys::cuMemFree_v2(p) });
            }
            r
        })
    };

    // Where capture cannot begin or end.
    // SAFETY: the null stream is the legacy stream.
    let r =
        unsafe { sys::cuStreamBeginCapture_v2(null_mut(), Mode::CU_STREAM_CAPTURE_MODE_GLOBAL) };
    assert_eq!(r, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    end(&stream, CUDA_ERROR_ILLEGAL_STATE);
    begin(&stream, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
    // SAFETY: as above.
    let r = unsafe { sys::cuStreamBeginCapture_v2(s, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL) };
    assert_eq!(r, CUDA_ERROR_ILLEGAL_STATE);
    let handle = s as usize;
    assert_eq!(
        elsewhere(&gpu, || {
            let mut g: sys::CUgraph = null_mut();
            // SAFETY: `g` is a valid place for the graph; the handle is the capturing stream.
            unsafe { sys::cuStreamEndCapture(handle as sys::CUstream, &mut g) }
        }),
        CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD
    );
    end(&stream, CUDA_SUCCESS);

    // A synchronous copy is potentially unsafe: refused, the capture invalidated, later work
    // on the stream refused too.
    begin(&stream, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
    assert_eq!(sync_copy(), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    assert_eq!(
        status(&stream),
        Status::CU_STREAM_CAPTURE_STATUS_INVALIDATED
    );
    // SAFETY: 16 bytes in range.
    let r = unsafe { sys::cuMemsetD8Async(buf, 0, 16, s) };
    assert_eq!(r, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    end(&stream, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    assert_eq!(
        sync_copy(),
        CUDA_SUCCESS,
        "allowed again once the capture ended"
    );

    // Synchronizing the capturing stream; a legacy-stream sync in global mode.
    begin(&stream, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
    // SAFETY: a live stream.
    assert_eq!(
        unsafe { sys::cuStreamSynchronize(s) },
        CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED
    );
    end(&stream, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    begin(&stream, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
    // SAFETY: the legacy stream.
    let r = unsafe { sys::cuStreamSynchronize(null_mut()) };
    assert_eq!(r, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    end(&stream, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);

    // Modes: global reaches other threads, thread-local does not, relaxed allows the call.
    begin(&stream, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
    assert_eq!(alloc_elsewhere(), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    end(&stream, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    begin(&stream, Mode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    assert_eq!(alloc_elsewhere(), CUDA_SUCCESS);
    assert_eq!(sync_copy(), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    end(&stream, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    begin(&stream, Mode::CU_STREAM_CAPTURE_MODE_RELAXED);
    assert_eq!(sync_copy(), CUDA_SUCCESS);
    end(&stream, CUDA_SUCCESS);
    // The calling thread's own interaction mode: relaxed lets it make the call.
    begin(&stream, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
    let mut mode = Mode::CU_STREAM_CAPTURE_MODE_RELAXED;
    // SAFETY: `mode` is valid for a read and a write.
    ok(unsafe { sys::cuThreadExchangeStreamCaptureMode(&mut mode) });
    assert_eq!(mode, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
    assert_eq!(sync_copy(), CUDA_SUCCESS);
    // SAFETY: as above (restores global).
    ok(unsafe { sys::cuThreadExchangeStreamCaptureMode(&mut mode) });
    end(&stream, CUDA_SUCCESS);

    // Querying an event recorded in the capture.
    let mut ev: sys::CUevent = null_mut();
    // SAFETY: `ev` is a valid place for the event.
    ok(unsafe { sys::cuEventCreate(&mut ev, 0) });
    begin(&stream, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
    // SAFETY: live event and stream of one context.
    ok(unsafe { sys::cuEventRecord(ev, s) });
    // SAFETY: as above.
    assert_eq!(unsafe { sys::cuStreamWaitEvent(s, ev, 0) }, CUDA_SUCCESS);
    // SAFETY: a live event.
    assert_eq!(unsafe { sys::cuEventQuery(ev) }, CUDA_ERROR_CAPTURED_EVENT);
    end(&stream, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    // SAFETY: a live event, now outside any capture.
    assert_eq!(unsafe { sys::cuEventQuery(ev) }, CUDA_SUCCESS);
    // Waiting in a capture on an event recorded outside it.
    // SAFETY: as above.
    ok(unsafe { sys::cuEventRecord(ev, s) });
    begin(&stream, Mode::CU_STREAM_CAPTURE_MODE_GLOBAL);
    // SAFETY: as above.
    let r = unsafe { sys::cuStreamWaitEvent(s, ev, 0) };
    assert_eq!(r, CUDA_ERROR_STREAM_CAPTURE_ISOLATION);
    end(&stream, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    // SAFETY: a live event.
    ok(unsafe { sys::cuEventDestroy_v2(ev) });

    // Legacy-stream work while a blocking stream captures.
    let mut blocking: sys::CUstream = null_mut();
    // SAFETY: `blocking` is a valid place for the stream; flags 0 make it blocking.
    ok(unsafe { sys::cuStreamCreate(&mut blocking, 0) });
    // SAFETY: a live stream of the current context.
    ok(unsafe { sys::cuStreamBeginCapture_v2(blocking, Mode::CU_STREAM_CAPTURE_MODE_RELAXED) });
    // SAFETY: 16 bytes in range, on the legacy stream.
    let r = unsafe { sys::cuMemsetD8Async(buf, 0, 16, null_mut()) };
    assert_eq!(r, CUDA_ERROR_STREAM_CAPTURE_IMPLICIT);
    let mut g: sys::CUgraph = null_mut();
    // SAFETY: `g` is a valid place.
    let r = unsafe { sys::cuStreamEndCapture(blocking, &mut g) };
    assert_eq!(
        (r, g.is_null()),
        (CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, true)
    );
    // SAFETY: a live stream.
    ok(unsafe { sys::cuStreamDestroy_v2(blocking) });

    // Instantiation flags: device launch cannot be combined with auto-free.
    begin(&stream, Mode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    let flags = sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH
        | sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_DEVICE_LAUNCH;
    let r = stream.end_capture(flags).map(|_| ());
    assert!(common::failed_with(r, "INVALID_VALUE"));
    // SAFETY: a live allocation.
    ok(unsafe { sys::cuMemFree_v2(buf) });
}

/// Host function for the capture test: adds one to the counter it is given.
unsafe extern "C" fn bump(data: *mut std::ffi::c_void) {
    // SAFETY: the test passes a live AtomicU32.
    let n = unsafe { &*(data as *const std::sync::atomic::AtomicU32) };
    n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

#[test]
fn host_functions_and_graph_launches_are_captured_too() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let Some((_serial, _gpu, stream)) = one_stream() else {
        return;
    };
    let s = stream.cu_stream();
    let calls = AtomicU32::new(0);
    let data = &calls as *const AtomicU32 as *mut std::ffi::c_void;
    let buf = alloc(4);
    let host_one = [1u8; 16];
    let mut host_out = [0u8; 16];

    // Inner graph: memset to 7, then the host function.
    begin(&stream, Mode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    // SAFETY: 16 bytes in range; `bump` takes the counter.
    unsafe {
        ok(sys::cuMemsetD8Async(buf, 7, 16, s));
        ok(sys::cuLaunchHostFunc(s, Some(bump), data));
    }
    let mut inner: sys::CUgraph = null_mut();
    // SAFETY: `inner` is a valid place.
    ok(unsafe { sys::cuStreamEndCapture(s, &mut inner) });
    assert_eq!(calls.load(Ordering::Relaxed), 0, "captured, not called");
    let mut inner_exec: sys::CUgraphExec = null_mut();
    // SAFETY: `inner` is a live graph.
    ok(unsafe { sys::cuGraphInstantiateWithFlags(&mut inner_exec, inner, 0) });

    // Outer graph: HtoD of ones, the inner graph (memset 7, bump), DtoH.
    begin(&stream, Mode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    // SAFETY: 16 bytes in range; the host arrays outlive the graph.
    unsafe {
        ok(sys::cuMemcpyHtoDAsync_v2(
            buf,
            host_one.as_ptr().cast(),
            16,
            s,
        ));
        ok(sys::cuGraphLaunch(inner_exec, s));
        ok(sys::cuMemcpyDtoHAsync_v2(
            host_out.as_mut_ptr().cast(),
            buf,
            16,
            s,
        ));
    }
    let mut outer: sys::CUgraph = null_mut();
    // SAFETY: `outer` is a valid place.
    ok(unsafe { sys::cuStreamEndCapture(s, &mut outer) });
    assert_eq!(calls.load(Ordering::Relaxed), 0);
    let mut nodes = [null_mut(); 6];
    let mut count = nodes.len();
    // SAFETY: `nodes` holds `count` entries.
    ok(unsafe { sys::cuGraphGetNodes(outer, nodes.as_mut_ptr(), &mut count) });
    assert_eq!(count, 4, "HtoD, memset, host function, DtoH");
    assert!(nodes[..4].iter().all(|n| !n.is_null()) && nodes[4..].iter().all(|n| n.is_null()));

    let mut exec: sys::CUgraphExec = null_mut();
    // SAFETY: `outer` is a live graph.
    ok(unsafe { sys::cuGraphInstantiateWithFlags(&mut exec, outer, 0) });
    // The graph is a copy: destroying the graphs leaves the executable graph whole.
    // SAFETY: live graphs, destroyed once.
    unsafe {
        ok(sys::cuGraphDestroy(inner));
        ok(sys::cuGraphDestroy(outer));
    }
    for round in 1..=3 {
        // SAFETY: the executable graph belongs to this context; its host pointers are alive.
        ok(unsafe { sys::cuGraphLaunch(exec, s) });
        assert_eq!(host_out, [7u8; 16]);
        assert_eq!(calls.load(Ordering::Relaxed), round);
    }
    // SAFETY: live executable graphs, destroyed once; then a stale handle.
    unsafe {
        ok(sys::cuGraphExecDestroy(exec));
        ok(sys::cuGraphExecDestroy(inner_exec));
        assert_eq!(
            sys::cuGraphLaunch(exec, s),
            CUresult::CUDA_ERROR_INVALID_HANDLE
        );
        ok(sys::cuMemFree_v2(buf));
    }
}
