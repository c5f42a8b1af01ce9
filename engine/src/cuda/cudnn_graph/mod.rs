//! cuDNN convolutions through the graph (backend) API: for a forward, data-gradient or
//! filter-gradient convolution, a one-operation graph over x, w and y (the shapes, layouts and
//! types of the legacy path's [`Key`]), engine configurations from heuristics (mode A, then the
//! fallback mode), and a finalized execution plan run with a variant pack and a workspace from
//! kiln's caching allocator. f32 takes no tensor-core (TF32) engine; no dtype takes engines that
//! down-convert inputs or reduce in reduced precision (f16/bf16 accumulate in f32).
//!
//! With the benchmark mode on ([`set_cudnn_benchmark`](super::set_cudnn_benchmark)) every plan
//! that heuristics offer (all engines and knob choices of both modes, as cudnn-frontend's
//! autotuning) is finalized and timed with CUDA events, and the fastest kept; the choice (engine
//! id and knob values) is recorded per direction, shape, layout, dtype and alignment in memory
//! and on disk (see [`disk`]), so that the next run skips the timing.
//!
//! Plans are cached per key in memory either way. Any failure (symbols missing, a graph or plan
//! that does not finalize, an execution cuDNN refuses) leaves the call to the legacy API
//! ([`super::cudnn`]) and then to the built-in kernels; the first reason is printed once.
//!
//! Inside a CUDA graph capture only cached plans run (on the capture's stream, with a workspace
//! from the graph's pool): building, autotuning and the plan file on disk stay outside captures,
//! and a key met first there is [`Error::Capture`] (see [`super::vendor`]).
//!
//! On by default; `KILN_CUDNN_GRAPH=0` or [`set_cudnn_graph_enabled`] leaves convolutions to the
//! legacy API. Written against the cuDNN 9 documentation, cudnn-frontend and PyTorch's
//! `Conv_v8.cpp` (cuDNN does not run on kiln's emulator), it passed `scripts/gpu-accept.sh` on an
//! H200 with cuDNN 9.19 (2026-11-26), where it trained resnet50 faster than the legacy API.
//!
//! [`set_cudnn_graph_enabled`]: super::set_cudnn_graph_enabled

mod backend;
mod disk;
mod engine;
pub(super) mod genstats;
mod graph;

use super::cudnn_key::{Key, Op};
use super::cudnn_lib::{on_call_stream, require_symbols, MAX_BENCH_WORKSPACE};
use super::switch::{cudnn_benchmark, cudnn_enabled, cudnn_graph_enabled};
use super::vendor::{plan_for, settle};
use super::{CudaDevice, CudaStorage};
use crate::conv_shape::ConvShape;
use crate::{DType, Error, Result};
use cudarc::cudnn::sys::{self, cudnnBackendHeurMode_t as HeurMode, cudnnDataType_t};
use cudarc::driver::sys::CUevent_flags;
use disk::{Choice, DiskCache};
use engine::Plan;
use graph::Graph;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Once};

/// Timed runs per plan in the benchmark mode (after one warm-up run).
const TIMED_RUNS: usize = 3;

/// The graph path's state on one cuDNN handle: whether it is usable, the plans per key (None:
/// the graph path does not serve that key), and the disk record of benchmarked choices.
pub(super) struct Plans {
    usable: std::result::Result<(), String>,
    plans: HashMap<(Op, Key, u8), Option<Plan>>,
    disk: Option<DiskCache>,
}

impl Plans {
    /// The state of a freshly loaded cuDNN: usable when it has every backend-API symbol.
    pub(super) fn new() -> Plans {
        Plans {
            usable: require_symbols(&backend::SYMBOLS),
            plans: HashMap::new(),
            disk: None,
        }
    }

    /// Drops every plan (before the handle they were made on is destroyed).
    pub(super) fn clear(&mut self) {
        self.plans.clear();
    }
}

/// The disk cache's name for a key: direction, types, layout, sizes and alignment.
fn cache_key(op: Op, k: &Key, align: u8) -> String {
    let join = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join("x");
    format!(
        "{op:?} {:?}/{:?} {} x{} w{} y{} pad{} stride{} dil{} g{} align{align}",
        k.ty,
        k.compute,
        if k.channels_last { "nhwc" } else { "nchw" },
        join(&k.x),
        join(&k.w),
        join(&k.y),
        join(&k.pad),
        join(&k.stride),
        join(&k.dilation),
        k.groups,
    )
}

/// Prints the first reason the graph path did not serve a convolution, once per process.
fn report(why: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        eprintln!(
            "kiln: cuDNN graph API not used ({why}); convolutions fall back to the legacy \
             cuDNN API or the built-in kernels"
        )
    });
}

/// Whether the graph path can serve on `dev` (cuDNN loaded, with the backend API); Err says why.
pub fn cudnn_graph_loaded(dev: &CudaDevice) -> Result<()> {
    let dnn = dev
        .dnn()
        .map_err(|why| Error::Cuda(format!("cuDNN not loaded: {why}")))?;
    let dnn = dnn.lock().unwrap_or_else(|e| e.into_inner());
    dnn.graph.usable.clone().map_err(Error::Cuda)
}

/// The finalizable plans of `graph` that keep kiln's precision, heuristics' best first (mode A,
/// then the fallback mode, each engine configuration once), at most `limit` of them; Err gives
/// the last reason a configuration was passed over when none is left.
fn candidates(
    h: sys::cudnnHandle_t,
    graph: &Rc<Graph>,
    strict: bool,
    limit: usize,
) -> Result<Vec<Plan>> {
    let mut seen: Vec<Choice> = Vec::new();
    let mut plans = Vec::new();
    let mut why = Error::Cuda("heuristics offered no engine that keeps kiln's precision".into());
    for mode in [
        HeurMode::CUDNN_HEUR_MODE_A,
        HeurMode::CUDNN_HEUR_MODE_FALLBACK,
    ] {
        let configs = engine::heuristics(graph, mode).unwrap_or_else(|e| {
            why = e;
            Vec::new()
        });
        for config in configs {
            if plans.len() >= limit {
                return Ok(plans);
            }
            let plan = match engine::describe(&config, strict) {
                Ok((choice, true)) if !seen.contains(&choice) => {
                    seen.push(choice.clone());
                    engine::finalize(h, graph, config, choice)
                }
                Ok(_) => continue,
                Err(e) => Err(e),
            };
            match plan {
                Ok(p) => plans.push(p),
                Err(e) => why = e,
            }
        }
    }
    if plans.is_empty() {
        Err(why)
    } else {
        Ok(plans)
    }
}

/// The mean time of `plan` in ms over the buffers `t`, after a warm-up run; None when its
/// workspace cannot be had.
fn time(
    dev: &Arc<CudaDevice>,
    h: sys::cudnnHandle_t,
    plan: &Plan,
    t: [u64; 3],
) -> Result<Option<f32>> {
    if plan.workspace > MAX_BENCH_WORKSPACE {
        return Ok(None);
    }
    let Ok(ws) = workspace(dev, plan.workspace) else {
        return Ok(None);
    };
    let ws_ptr = ws.as_ref().map_or(0, |w| w.ptr());
    let event = |what| {
        dev.stream()
            .record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(|e| Error::Cuda(format!("{what}: {e:?}")))
    };
    // SAFETY: `t` are the live buffers of this convolution (the output is overwritten by every
    // run and again by the real one); the workspace outlives the runs: elapsed_ms below waits
    // for the stream to pass them before `ws` drops.
    unsafe { engine::execute(h, plan, t, ws_ptr)? };
    let start = event("timing start")?;
    for _ in 0..TIMED_RUNS {
        // SAFETY: as above.
        unsafe { engine::execute(h, plan, t, ws_ptr)? };
    }
    let end = event("timing end")?;
    let ms = start
        .elapsed_ms(&end)
        .map_err(|e| Error::Cuda(format!("timing: {e:?}")))?;
    Ok(Some(ms / TIMED_RUNS as f32))
}

/// The fastest of every candidate plan on the buffers `t`.
fn autotune(
    dev: &Arc<CudaDevice>,
    h: sys::cudnnHandle_t,
    graph: &Rc<Graph>,
    strict: bool,
    t: [u64; 3],
) -> Result<Plan> {
    let mut best: Option<(f32, Plan)> = None;
    let mut why = Error::Cuda("no plan's workspace could be allocated".into());
    for plan in candidates(h, graph, strict, usize::MAX)? {
        // A plan that fails to run is left out, like one that does not finalize.
        match time(dev, h, &plan, t) {
            Ok(Some(ms)) if best.as_ref().is_none_or(|(fastest, _)| ms < *fastest) => {
                best = Some((ms, plan))
            }
            Ok(_) => {}
            Err(e) => why = e,
        }
    }
    best.map(|(_, p)| p).ok_or(why)
}

/// A workspace of `bytes` from kiln's caching allocator (None for zero bytes).
fn workspace(dev: &Arc<CudaDevice>, bytes: usize) -> Result<Option<CudaStorage>> {
    (bytes > 0)
        .then(|| CudaStorage::alloc(dev, DType::U8, bytes))
        .transpose()
}

/// The plan for `key`: the recorded or benchmarked choice in the benchmark mode, else the best
/// finalizable plan of heuristics.
fn select(
    dev: &Arc<CudaDevice>,
    h: sys::cudnnHandle_t,
    disk: &mut Option<DiskCache>,
    op: Op,
    key: &Key,
    align: u8,
    t: [u64; 3],
) -> Result<Plan> {
    let graph = Rc::new(graph::build(h, op, key, align)?);
    let strict = key.ty == cudnnDataType_t::CUDNN_DATA_FLOAT;
    if !key.benchmark {
        let mut best = candidates(h, &graph, strict, 1)?;
        return best.pop().ok_or_else(|| Error::Cuda("no plan".into()));
    }
    let disk = disk.get_or_insert_with(|| {
        let version = cudarc::cudnn::result::get_version();
        DiskCache::open(disk::default_path(version, dev.name()))
    });
    let name = cache_key(op, key, align);
    if let Some(choice) = disk.get(&name) {
        let rebuilt = engine::rebuild(&graph, choice);
        if let Ok(plan) = rebuilt.and_then(|c| engine::finalize(h, &graph, c, choice.clone())) {
            return Ok(plan);
        }
    }
    let plan = autotune(dev, h, &graph, strict, t)?;
    if let Err(e) = disk.insert(name, plan.choice.clone()) {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| eprintln!("kiln: cannot record cuDNN plans on disk: {e}"));
    }
    Ok(plan)
}

/// Runs `op` over the addresses `t` (\[x, w, y\]) through the graph API; Ok(false) leaves it to
/// the legacy API or built-in kernels.
pub(super) fn run(
    op: Op,
    dev: &Arc<CudaDevice>,
    dtype: DType,
    s: &ConvShape,
    t: [u64; 3],
) -> Result<bool> {
    if !cudnn_enabled() || !cudnn_graph_enabled() {
        return Ok(false);
    }
    let Some(key) = Key::new(s, dtype, cudnn_benchmark()) else {
        return Ok(false);
    };
    // Without cuDNN the legacy API cannot serve either: nothing graph-specific to report.
    let Ok(dnn) = dev.dnn() else {
        return Ok(false);
    };
    let mut dnn = dnn.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(why) = &dnn.graph.usable {
        report(why);
        return Ok(false);
    }
    dev.bind()?;
    let h = dnn.handle;
    let align = graph::alignment(t);
    let capturing = dev.capturing();
    let plans = &mut dnn.graph;
    let what = || format!("a cuDNN graph-API {op:?} of {}", key.describe());
    let chosen = plan_for(&mut plans.plans, (op, key, align), capturing, what, || {
        Ok(select(dev, h, &mut plans.disk, op, &key, align, t)
            .map_err(|e| report(&format!("{op:?} {}: {e}", cache_key(op, &key, align))))
            .ok())
    })?;
    let Some(plan) = chosen else {
        return Ok(false);
    };
    let ws = workspace(dev, plan.workspace)?;
    let bound = on_call_stream(dev, h)?;
    // SAFETY: the handle runs on this thread's stream (the compute stream, or the capture's),
    // ordered after the writers of the inputs and before the readers of the output; `t` are live
    // packed buffers of the key's sizes in its layout; the workspace goes back to the caching
    // allocator only after this launch is queued (stream order keeps its reuse safe).
    let executed = unsafe { engine::execute(h, plan, t, ws.as_ref().map_or(0, |w| w.ptr())) };
    match settle(bound, executed, capturing, what)? {
        Ok(()) => Ok(true),
        Err(e) => {
            report(&format!("{op:?}: {e}"));
            plans.plans.insert((op, key, align), None);
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv_shape::Conv2dParams;

    fn key(channels_last: bool, dtype: DType, groups: usize) -> Key {
        let p = Conv2dParams {
            stride: [2, 1],
            padding: [1, 0],
            dilation: [1, 2],
            groups,
        };
        let s = ConvShape::new(&[2, 8, 9, 11], &[16, 8 / groups, 3, 3], &p, channels_last).unwrap();
        Key::new(&s, dtype, true).unwrap()
    }

    /// The disk key names the direction, types, layout, every size and the alignment, and
    /// tells apart keys that differ in any of them.
    #[test]
    fn cache_keys() {
        let k = key(true, DType::F16, 1);
        assert_eq!(
            cache_key(Op::Forward, &k, 16),
            "Forward CUDNN_DATA_HALF/CUDNN_DATA_FLOAT nhwc x2x8x9x11 w16x8x3x3 y2x16x5x7 \
             pad1x0 stride2x1 dil1x2 g1 align16"
        );
        let names = [
            cache_key(Op::Forward, &k, 16),
            cache_key(Op::BackwardData, &k, 16),
            cache_key(Op::BackwardFilter, &k, 16),
            cache_key(Op::Forward, &k, 8),
            cache_key(Op::Forward, &key(false, DType::F16, 1), 16),
            cache_key(Op::Forward, &key(true, DType::BF16, 1), 16),
            cache_key(Op::Forward, &key(true, DType::F32, 1), 16),
            cache_key(Op::Forward, &key(true, DType::F16, 4), 16),
        ];
        let mut unique = names.to_vec();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert!(names.iter().all(|n| !n.contains('\t') && !n.contains('\n')));
    }
}
