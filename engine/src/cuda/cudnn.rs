//! cuDNN convolutions: forward, data gradient and filter gradient on the device's compute stream,
//! over packed NCHW or NHWC tensors (filters OIHW or OHWI to match), with groups and dilation.
//! f16/bf16 run on tensor cores with f32 accumulation; f32 stays strict FP32 (no TF32).
//!
//! Algorithms come from cuDNN's heuristics (`cudnnGetConvolution*Algorithm_v7`), or with the
//! benchmark mode on ([`set_cudnn_benchmark`](super::set_cudnn_benchmark),
//! `KILN_CUDNN_BENCHMARK=1`) from timing them all (`cudnnFind*AlgorithmEx`); the choice and the
//! descriptors are cached per shape, dtype and layout. Workspaces come from kiln's caching
//! allocator. cuDNN is loaded at run time; when it is absent, switched off (`KILN_CUDNN=0`) or
//! reports a shape unsupported, the built-in kernels serve instead.
//!
//! Inside a CUDA graph capture a call runs on the capture's stream with a workspace from the
//! graph's pool, and only with a plan an eager call of its shape cached: choosing one there is
//! [`Error::Capture`] (see [`super::vendor`]). [`convolve`] tries the graph API
//! ([`super::cudnn_graph`]) first, then this one.

use super::cudnn_graph;
use super::cudnn_key::{Key, Op};
use super::cudnn_lib::{cudnn_err, load, on_call_stream, MAX_BENCH_WORKSPACE};
use super::switch::{cudnn_benchmark, cudnn_enabled};
use super::vendor::{plan_for, settle};
use super::{CudaDevice, CudaStorage};
use crate::conv_shape::ConvShape;
use crate::{DType, Error, Result};
use cudarc::cudnn::result::{self, CudnnError};
use cudarc::cudnn::sys::{
    self, cudnnConvolutionBackwardData as launch_dx, cudnnConvolutionBackwardFilter as launch_dw,
    cudnnConvolutionBwdDataAlgo_t as DataAlgo, cudnnConvolutionBwdFilterAlgo_t as FilterAlgo,
    cudnnConvolutionForward as launch_y, cudnnConvolutionFwdAlgo_t as FwdAlgo, cudnnDataType_t,
    cudnnFindConvolutionBackwardDataAlgorithmEx as find_dx,
    cudnnFindConvolutionBackwardFilterAlgorithmEx as find_dw,
    cudnnFindConvolutionForwardAlgorithmEx as find_y,
    cudnnGetConvolutionBackwardDataAlgorithm_v7 as heuristics_dx,
    cudnnGetConvolutionBackwardFilterAlgorithm_v7 as heuristics_dw,
    cudnnGetConvolutionForwardAlgorithm_v7 as heuristics_y, cudnnMathType_t, cudnnStatus_t,
    cudnnTensorFormat_t,
};
use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::ptr::null_mut;

/// Room for every algorithm of one direction (forward has the most: 8).
const MAX_ALGOS: usize = 8;

/// cuDNN's per-algorithm result, with its enums as plain integers so that values newer than
/// cudarc's bindings are skipped rather than misread (same layout as the three `*AlgoPerf_t`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Perf {
    algo: u32,
    status: u32,
    time: f32,
    memory: usize,
    determinism: u32,
    math_type: u32,
    reserved: [i32; 3],
}

/// Whether a status says "this configuration is not supported" (cuDNN 9's 3000 range).
fn unsupported(e: CudnnError) -> bool {
    (3000..4000).contains(&(e.0 as u32))
}

/// The tensor, filter and convolution descriptors of one key.
struct Descs {
    x: sys::cudnnTensorDescriptor_t,
    y: sys::cudnnTensorDescriptor_t,
    w: sys::cudnnFilterDescriptor_t,
    conv: sys::cudnnConvolutionDescriptor_t,
}

impl Descs {
    fn new(k: &Key) -> std::result::Result<Descs, CudnnError> {
        let format = if k.channels_last {
            cudnnTensorFormat_t::CUDNN_TENSOR_NHWC
        } else {
            cudnnTensorFormat_t::CUDNN_TENSOR_NCHW
        };
        // Filled one by one, so that an error part-way destroys what was created.
        let mut d = Descs {
            x: null_mut(),
            y: null_mut(),
            w: null_mut(),
            conv: null_mut(),
        };
        d.x = result::create_tensor_descriptor()?;
        d.y = result::create_tensor_descriptor()?;
        d.w = result::create_filter_descriptor()?;
        d.conv = result::create_convolution_descriptor()?;
        // SAFETY: every descriptor was just created and is set once; sizes are positive i32s
        // (Key::new), and the filter format matches the tensors' (OHWI with NHWC).
        unsafe {
            result::set_tensor4d_descriptor(d.x, format, k.ty, k.x)?;
            result::set_tensor4d_descriptor(d.y, format, k.ty, k.y)?;
            result::set_filter4d_descriptor(d.w, k.ty, format, k.w)?;
            result::set_convolution2d_descriptor(
                d.conv,
                k.pad[0],
                k.pad[1],
                k.stride[0],
                k.stride[1],
                k.dilation[0],
                k.dilation[1],
                sys::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
                k.compute,
            )?;
            result::set_convolution_group_count(d.conv, k.groups)?;
            result::set_convolution_math_type(d.conv, k.math)?;
        }
        Ok(d)
    }
}

impl Drop for Descs {
    fn drop(&mut self) {
        // SAFETY: each non-null descriptor was created by `Descs::new` and is destroyed once
        // (errors cannot be acted on while dropping).
        unsafe {
            if !self.x.is_null() {
                let _ = result::destroy_tensor_descriptor(self.x);
            }
            if !self.y.is_null() {
                let _ = result::destroy_tensor_descriptor(self.y);
            }
            if !self.w.is_null() {
                let _ = result::destroy_filter_descriptor(self.w);
            }
            if !self.conv.is_null() {
                let _ = result::destroy_convolution_descriptor(self.conv);
            }
        }
    }
}

/// A cached choice: descriptors, algorithm (the discriminant of its direction's enum), and the
/// workspace it needs.
struct Plan {
    descs: Descs,
    algo: u32,
    workspace: usize,
}

/// Plans per direction and key; None records that cuDNN does not support the key.
type Plans = HashMap<(Op, Key), Option<Plan>>;

/// A cuDNN handle on one device's compute stream, and the plans of the shapes seen so far.
pub(super) struct Dnn {
    pub(super) handle: sys::cudnnHandle_t,
    plans: Plans,
    /// The graph API path's plans on this handle.
    pub(super) graph: super::cudnn_graph::Plans,
}

// SAFETY: a cuDNN handle and descriptors may be used from any thread, one thread at a time; the
// device keeps the Dnn behind a Mutex. The graph plans share their graphs through `Rc`s that all
// live inside this Dnn, so they are only touched under that Mutex.
unsafe impl Send for Dnn {}

impl Dnn {
    /// Loads cuDNN (9.x) and creates the handle on the compute stream; Err says why not.
    pub(super) fn open(dev: &CudaDevice) -> std::result::Result<Dnn, String> {
        load()?;
        dev.bind().map_err(|e| e.to_string())?;
        let handle = result::create_handle().map_err(|e| format!("cudnnCreate: {e}"))?;
        let dnn = Dnn {
            handle,
            plans: HashMap::new(),
            graph: super::cudnn_graph::Plans::new(),
        };
        // SAFETY: the handle was just created and the stream lives as long as the device,
        // which owns this handle.
        unsafe {
            result::set_stream(
                handle,
                dev.compute_stream().cu_stream() as sys::cudaStream_t,
            )
        }
        .map_err(|e| format!("cudnnSetStream: {e}"))?;
        Ok(dnn)
    }
}

impl Drop for Dnn {
    fn drop(&mut self) {
        self.plans.clear();
        self.graph.clear();
        // SAFETY: the handle was created by `open` and is destroyed once.
        let _ = unsafe { result::destroy_handle(self.handle) };
    }
}

/// Whether cuDNN is loaded on `dev` (it serves convolutions unless switched off); Err says why not.
pub fn cudnn_loaded(dev: &CudaDevice) -> Result<()> {
    dev.dnn()
        .map(|_| ())
        .map_err(|why| Error::Cuda(format!("cuDNN is not available: {why}")))
}

/// The name of `op` in error messages.
fn name(op: Op) -> &'static str {
    match op {
        Op::Forward => "convolution forward",
        Op::BackwardData => "convolution backward data",
        Op::BackwardFilter => "convolution backward filter",
    }
}

/// The number of algorithms of `op` (its algorithm enum's discriminants are 0..count).
fn count(op: Op) -> u32 {
    match op {
        Op::Forward => FwdAlgo::CUDNN_CONVOLUTION_FWD_ALGO_COUNT as u32,
        Op::BackwardData => DataAlgo::CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT as u32,
        Op::BackwardFilter => FilterAlgo::CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT as u32,
    }
}

type Status = std::result::Result<(), CudnnError>;

/// The algorithm with discriminant `raw` of the enum `A` a launch takes.
///
/// # Safety
///
/// `A` is the algorithm enum of the direction whose ranking gave `raw`: a `repr(u32)` enum with
/// the discriminants `0..count`, and `raw < count`.
unsafe fn algo<A: Copy>(raw: u32) -> A {
    const { assert!(std::mem::size_of::<A>() == std::mem::size_of::<u32>()) };
    // SAFETY: the caller's contract.
    unsafe { std::mem::transmute_copy::<u32, A>(&raw) }
}

// The three directions' calls below differ only in the entry point and in which of x, w and y
// are the two inputs and the output: x, w → y forward; w, dy → dx for the data gradient; x, dy
// → dw for the filter gradient. `t` holds the addresses of [x, w, y] (dx, dw or y the output),
// `p` room for `count(op)` rankings, and `ws` the address and size of a device workspace.

/// Ranks the algorithms of `op` by cuDNN's heuristics into `p`, best first (`n` of them).
///
/// # Safety
///
/// `d` are the live descriptors of one key and `p` has room for `count(op)` entries.
unsafe fn heuristics(
    op: Op,
    h: sys::cudnnHandle_t,
    d: &Descs,
    n: &mut c_int,
    p: *mut Perf,
) -> Status {
    let (c, k) = (d.conv, count(op) as c_int);
    // SAFETY: the caller's contract; each entry point gets its direction's operands and results.
    unsafe {
        match op {
            Op::Forward => heuristics_y(h, d.x, d.w, c, d.y, k, n, p.cast()),
            Op::BackwardData => heuristics_dx(h, d.w, d.y, c, d.x, k, n, p.cast()),
            Op::BackwardFilter => heuristics_dw(h, d.x, d.y, c, d.w, k, n, p.cast()),
        }
    }
    .result()
}

/// Ranks the algorithms of `op` by timing each on the buffers `t` into `p`, fastest first (`n`
/// of them).
///
/// # Safety
///
/// As [`heuristics`], with `t` live device buffers of the key's sizes (the output is
/// overwritten) and `ws.1` bytes of device memory at `ws.0`.
unsafe fn find(
    op: Op,
    h: sys::cudnnHandle_t,
    d: &Descs,
    t: [u64; 3],
    ws: (u64, usize),
    n: &mut c_int,
    p: *mut Perf,
) -> Status {
    let (c, k, (ws, wn)) = (d.conv, count(op) as c_int, (ws.0 as *mut c_void, ws.1));
    let ([xi, wi, yi], [xo, wo, yo]) = (t.map(|a| a as *const c_void), t.map(|a| a as *mut c_void));
    // SAFETY: the caller's contract; each entry point gets its direction's operands and results.
    unsafe {
        match op {
            Op::Forward => find_y(h, d.x, xi, d.w, wi, c, d.y, yo, k, n, p.cast(), ws, wn),
            Op::BackwardData => find_dx(h, d.w, wi, d.y, yi, c, d.x, xo, k, n, p.cast(), ws, wn),
            Op::BackwardFilter => find_dw(h, d.x, xi, d.y, yi, c, d.w, wo, k, n, p.cast(), ws, wn),
        }
    }
    .result()
}

/// Runs `op` with the algorithm of discriminant `raw` on the buffers `t`, scaled by the host
/// scalars `[alpha, beta]`.
///
/// # Safety
///
/// As [`find`], with the scalars of the key's scaling type.
unsafe fn launch(
    op: Op,
    h: sys::cudnnHandle_t,
    d: &Descs,
    raw: u32,
    t: [u64; 3],
    ws: (u64, usize),
    [s0, s1]: [*const c_void; 2],
) -> Status {
    assert!(raw < count(op), "{} has no algorithm {raw}", name(op));
    let (c, (ws, wn)) = (d.conv, (ws.0 as *mut c_void, ws.1));
    let ([xi, wi, yi], [xo, wo, yo]) = (t.map(|a| a as *const c_void), t.map(|a| a as *mut c_void));
    // SAFETY: the caller's contract; `raw` is below op's count (checked above), so `algo` gives
    // a value of the enum op's entry point takes; each entry point gets its direction's
    // operands.
    unsafe {
        match op {
            Op::Forward => launch_y(h, s0, d.x, xi, d.w, wi, c, algo(raw), ws, wn, s1, d.y, yo),
            Op::BackwardData => {
                launch_dx(h, s0, d.w, wi, d.y, yi, c, algo(raw), ws, wn, s1, d.x, xo)
            }
            Op::BackwardFilter => {
                launch_dw(h, s0, d.x, xi, d.y, yi, c, algo(raw), ws, wn, s1, d.w, wo)
            }
        }
    }
    .result()
}

/// The math mode of a ranking entry, if it is one the key allows: f32 keys ask for FMA math
/// and take no tensor-op (TF32) entry; the others take any known mode.
fn math_mode(key: &Key, raw: u32) -> Option<cudnnMathType_t> {
    use cudnnMathType_t::*;
    let mode = [
        CUDNN_DEFAULT_MATH,
        CUDNN_TENSOR_OP_MATH,
        CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION,
        CUDNN_FMA_MATH,
    ]
    .into_iter()
    .find(|&m| m as u32 == raw)?;
    let tensor_op = matches!(
        mode,
        CUDNN_TENSOR_OP_MATH | CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION
    );
    (key.math != CUDNN_FMA_MATH || !tensor_op).then_some(mode)
}

/// The usable entries of a ranking with their math modes, best first.
fn usable<'a>(
    op: Op,
    key: &'a Key,
    perf: &'a [Perf],
    n: i32,
) -> impl Iterator<Item = (&'a Perf, cudnnMathType_t)> {
    let algos = count(op);
    perf[..(n.max(0) as usize).min(perf.len())]
        .iter()
        .filter(move |p| p.status == cudnnStatus_t::CUDNN_STATUS_SUCCESS as u32 && p.algo < algos)
        .filter_map(move |p| Some((p, math_mode(key, p.math_type)?)))
}

/// Chooses the algorithm for `key` (heuristics, or timing on the real buffers `t` in benchmark
/// mode); Ok(None) when cuDNN does not support the key.
fn plan(
    op: Op,
    dev: &std::sync::Arc<CudaDevice>,
    h: sys::cudnnHandle_t,
    key: &Key,
    t: [u64; 3],
) -> Result<Option<Plan>> {
    let descs = match Descs::new(key) {
        Ok(d) => d,
        Err(e) if unsupported(e) => return Ok(None),
        Err(e) => return Err(cudnn_err("descriptors", e)),
    };
    let mut perf = [Perf::default(); MAX_ALGOS];
    let mut n = 0;
    // SAFETY: the descriptors are live and describe this key; `perf` has room for COUNT
    // (≤ MAX_ALGOS) entries laid out as cuDNN's perf structs.
    match unsafe { heuristics(op, h, &descs, &mut n, perf.as_mut_ptr()) } {
        Ok(()) => {}
        Err(e) if unsupported(e) => return Ok(None),
        Err(e) => return Err(cudnn_err(name(op), e)),
    }
    let mut limit = usize::MAX;
    if key.benchmark {
        let want = usable(op, key, &perf, n)
            .map(|(p, _)| p.memory)
            .filter(|&m| m <= MAX_BENCH_WORKSPACE)
            .max()
            .unwrap_or(0);
        // Without room for the largest, cuDNN times the algorithms that fit in none.
        let ws = (want > 0)
            .then(|| CudaStorage::alloc(dev, DType::U8, want).ok())
            .flatten();
        limit = ws.as_ref().map_or(0, |w| w.len());
        let ws_arg = (ws.as_ref().map_or(0, |w| w.ptr()), limit);
        // SAFETY: as above; `t` are the live buffers of this convolution (the output is
        // overwritten by the timing runs and again by the launch), and the workspace holds
        // `limit` bytes until after the stream has run the timing kernels.
        match unsafe { find(op, h, &descs, t, ws_arg, &mut n, perf.as_mut_ptr()) } {
            Ok(()) => {}
            Err(e) if unsupported(e) => return Ok(None),
            Err(e) => return Err(cudnn_err(name(op), e)),
        }
    }
    let Some((best, math)) = usable(op, key, &perf, n).find(|(p, _)| p.memory <= limit) else {
        return Ok(None);
    };
    // cuDNN ranks (algorithm, math mode) pairs and may pick another mode than the one asked
    // for; the launch must use the mode it ranked (as PyTorch does).
    // SAFETY: the descriptor is live and owned by this plan alone.
    unsafe { result::set_convolution_math_type(descs.conv, math) }
        .map_err(|e| cudnn_err("math mode", e))?;
    Ok(Some(Plan {
        descs,
        algo: best.algo,
        workspace: best.memory,
    }))
}

/// Runs `op` on cuDNN's legacy API; Ok(false) leaves it to the built-in kernel.
fn run(
    op: Op,
    dev: &std::sync::Arc<CudaDevice>,
    dtype: DType,
    s: &ConvShape,
    t: [u64; 3],
) -> Result<bool> {
    if !cudnn_enabled() {
        return Ok(false);
    }
    let Some(key) = Key::new(s, dtype, cudnn_benchmark()) else {
        return Ok(false);
    };
    let Ok(dnn) = dev.dnn() else {
        return Ok(false);
    };
    let mut dnn = dnn.lock().unwrap_or_else(|e| e.into_inner());
    dev.bind()?;
    let h = dnn.handle;
    let capturing = dev.capturing();
    let what = || format!("a cuDNN {} of {}", name(op), key.describe());
    let chosen = plan_for(&mut dnn.plans, (op, key), capturing, what, || {
        plan(op, dev, h, &key, t)
    })?;
    let Some(p) = chosen else {
        return Ok(false);
    };
    let ws = (p.workspace > 0)
        .then(|| CudaStorage::alloc(dev, DType::U8, p.workspace))
        .transpose()?;
    let ws_arg = (ws.as_ref().map_or(0, |w| w.ptr()), p.workspace);
    let (one32, zero32, one64, zero64) = (1f32, 0f32, 1f64, 0f64);
    let scale: [*const c_void; 2] = if key.compute == cudnnDataType_t::CUDNN_DATA_DOUBLE {
        [
            (&one64 as *const f64).cast(),
            (&zero64 as *const f64).cast(),
        ]
    } else {
        [
            (&one32 as *const f32).cast(),
            (&zero32 as *const f32).cast(),
        ]
    };
    let bound = on_call_stream(dev, h)?;
    // SAFETY: the handle runs on this thread's stream (the compute stream, or the capture's),
    // ordered after the writers of the inputs and before the readers of the output; `t` are live
    // packed buffers of the key's sizes in its layout; the workspace holds `p.workspace` bytes
    // and goes back to the caching allocator only after this launch is queued (stream order
    // keeps its reuse safe); alpha = 1 and beta = 0 are host scalars of the scaling type
    // (double for f64, else float).
    let launched = unsafe { launch(op, h, &p.descs, p.algo, t, ws_arg, scale) };
    match settle(bound, launched, capturing, what)? {
        Ok(()) => Ok(true),
        Err(e) if rejected(e) => {
            // The heuristics offered a plan the launch refuses (seen with cuDNN 9.19 on a
            // depthwise NHWC f16 data gradient): the built-in kernel serves this key from now on.
            dnn.plans.insert((op, key), None);
            Ok(false)
        }
        Err(e) => Err(cudnn_err(name(op), e)),
    }
}

/// Whether a launch refused its arguments before running anything (bad parameter or an
/// unsupported configuration), so that another kernel can still serve the call.
fn rejected(e: CudnnError) -> bool {
    e.0 == cudnnStatus_t::CUDNN_STATUS_BAD_PARAM || unsupported(e)
}

/// Runs `op` over `[x, w, y]` (the output being dx, dw or y) on cuDNN's graph API where it
/// serves, else its legacy API; Ok(false) when the built-in kernels must serve.
pub(super) fn convolve(op: Op, [x, w, y]: [&CudaStorage; 3], s: &ConvShape) -> Result<bool> {
    // The device and dtype of the activation input (dy for the data gradient, else x).
    let input = if op == Op::BackwardData { y } else { x };
    let (dev, dtype, t) = (input.device(), input.dtype(), [x.ptr(), w.ptr(), y.ptr()]);
    if cudnn_graph::run(op, dev, dtype, s, t)? {
        return Ok(true);
    }
    run(op, dev, dtype, s, t)
}

/// Whether cuDNN may serve convolutions of shape `s` in `dtype` on `dev` (enabled, loaded, a
/// describable shape): kiln's own kernels are then not the ones that run.
pub(super) fn may_serve(dev: &std::sync::Arc<CudaDevice>, dtype: DType, s: &ConvShape) -> bool {
    cudnn_enabled() && Key::new(s, dtype, false).is_some() && dev.dnn().is_ok()
}

#[cfg(test)]
mod tests {
    use super::super::cudnn_key::tests::{for_each_conv_case, plain_key};
    use super::*;

    /// f32 convolutions never take a tensor-op (TF32) ranking entry; f16 ones take any known
    /// mode; unknown modes are skipped.
    #[test]
    fn math_modes_keep_f32_strict() {
        use cudnnMathType_t::*;
        let f32_key = plain_key([1, 4, 5, 5], [4, 4, 3, 3], false, DType::F32);
        let f16_key = plain_key([1, 4, 5, 5], [4, 4, 3, 3], false, DType::F16);
        let modes = |k: &Key| (0..6).map(|raw| math_mode(k, raw)).collect::<Vec<_>>();
        assert_eq!(
            modes(&f32_key),
            [
                Some(CUDNN_DEFAULT_MATH),
                None,
                None,
                Some(CUDNN_FMA_MATH),
                None,
                None
            ]
        );
        assert_eq!(
            modes(&f16_key),
            [
                Some(CUDNN_DEFAULT_MATH),
                Some(CUDNN_TENSOR_OP_MATH),
                Some(CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION),
                Some(CUDNN_FMA_MATH),
                None,
                None
            ]
        );
    }

    /// cuDNN's descriptors (host-side objects: no device needed) accept every layout, dtype,
    /// grouping and dilation kiln passes, and give the output size kiln computes.
    #[test]
    fn descriptors_agree_with_kiln_shapes() {
        if let Err(why) = load() {
            eprintln!("skipped: {why}");
            return;
        }
        for_each_conv_case(|key| {
            let d = Descs::new(key).unwrap_or_else(|e| panic!("{key:?}: {e}"));
            let mut y = [0i32; 4];
            let [n, c, h, wd] = y.each_mut();
            // SAFETY: live descriptors of one key; the four outputs are valid ints.
            unsafe { sys::cudnnGetConvolution2dForwardOutputDim(d.conv, d.x, d.w, n, c, h, wd) }
                .result()
                .unwrap();
            assert_eq!(y, key.y, "{key:?}");
        });
    }
}
