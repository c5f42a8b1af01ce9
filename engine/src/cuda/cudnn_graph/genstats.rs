//! A convolution forward whose output's per-channel statistics cuDNN generates in the same
//! plan: an operation graph of conv fprop (x, w -> y) and genstats (y -> Σy and Σy² per output
//! channel, f32 \[1, C, 1, 1\]), the pattern cuDNN's runtime fusion engines serve on sm_80 and
//! sm_90 (cudnn-frontend's conv-genstats samples). With the graph API on (the default; `KILN_CUDNN_GRAPH`)
//! and `KILN_CONV_BN_STATS` on, a training BN right after such a convolution finalizes from
//! these sums (`bn_finalize_tiles` with one raw run per channel) instead of reading y.
//!
//! Only f16/bf16 NHWC convolutions try it (the fusion engines' layout). The sums are f32 and
//! the variance comes from Σy² - (Σy)²/M in double, so it loses precision where |mean| ≫ std,
//! as cuDNN's fused BN does; which values cuDNN sums (its f32 accumulators or y as rounded to
//! f16/bf16) is its engine's choice. Where no plan finalizes or runs, the reason is printed
//! once, the plain forward serves and the BN computes its own statistics.
//!
//! Written against the cuDNN 9 backend documentation and cudnn-frontend on a machine without a
//! GPU: `scripts/gpu-check.sh` (engine/tests/cuda_vendor.rs,
//! `cudnn_graph_genstats_match_kiln_bn`) verifies it against kiln's own BN kernels on one.

use super::super::cudnn_key::{Key, Op};
use super::super::cudnn_lib::on_call_stream;
use super::super::switch::{conv_bn_stats_enabled, cudnn_enabled, cudnn_graph_enabled};
use super::super::vendor::{plan_for, settle};
use super::backend::Desc;
use super::engine::{execute_tensors, Plan};
use super::graph::{self, Graph, UIDS};
use super::{candidates, workspace};
use crate::conv_shape::ConvShape;
use crate::cuda::CudaStorage;
use crate::saved::ChannelPartials;
use crate::{DType, Error, Result, Storage};
use cudarc::cudnn::sys::{
    self, cudnnBackendAttributeName_t as Name, cudnnBackendAttributeType_t as Type,
    cudnnBackendDescriptorType_t as Kind, cudnnDataType_t, cudnnGenStatsMode_t,
};
use kiln_kernels::cuda::bn_relu::TilePartials;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Once;

/// The ids of Σy and Σy² in the graph and the variant pack (x, w, y keep [`UIDS`]).
const STAT_UIDS: [i64; 2] = [4, 5];

/// Σy², `SECOND` f32 elements (rounded up from C) after Σy in one buffer: 256-byte aligned.
const SQSUM_ALIGN: usize = 64;

thread_local! {
    /// Plans per (handle, key, alignment) on this thread; None: the graph does not serve.
    static PLANS: RefCell<HashMap<(usize, Key, u8), Option<Plan>>> = RefCell::new(HashMap::new());
}

/// Prints the first reason the fused statistics were not generated, once per process.
fn report(why: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        eprintln!(
            "kiln: cuDNN graph API conv+genstats not used ({why}); the BatchNorm after such a \
             convolution computes its own statistics"
        )
    });
}

/// A packed f32 \[1, C, 1, 1\] statistics tensor (NHWC strides) with id `uid`.
fn stat_tensor(c: i32, uid: i64) -> Result<Desc> {
    graph::tensor_of(
        cudnnDataType_t::CUDNN_DATA_FLOAT,
        [1, c, 1, 1],
        true,
        uid,
        16,
    )
}

/// The genstats operation: Σy into `sum`, Σy² into `sq`, per channel, in f32.
fn genstats(y: &Desc, sum: &Desc, sq: &Desc) -> Result<Desc> {
    let o = Desc::new(Kind::CUDNN_BACKEND_OPERATION_GEN_STATS_DESCRIPTOR)?;
    o.set(
        Name::CUDNN_ATTR_OPERATION_GENSTATS_MODE,
        Type::CUDNN_TYPE_GENSTATS_MODE,
        &[cudnnGenStatsMode_t::CUDNN_GENSTATS_SUM_SQSUM as u32],
    )?;
    o.set(
        Name::CUDNN_ATTR_OPERATION_GENSTATS_MATH_PREC,
        Type::CUDNN_TYPE_DATA_TYPE,
        &[cudnnDataType_t::CUDNN_DATA_FLOAT as u32],
    )?;
    o.set_descs(Name::CUDNN_ATTR_OPERATION_GENSTATS_XDESC, &[y])?;
    o.set_descs(Name::CUDNN_ATTR_OPERATION_GENSTATS_SUMDESC, &[sum])?;
    o.set_descs(Name::CUDNN_ATTR_OPERATION_GENSTATS_SQSUMDESC, &[sq])?;
    o.finalize()?;
    Ok(o)
}

/// The finalized conv fprop and genstats operations for `key` (x, w, y aligned to `align`),
/// and the descriptors they were built from: host-side objects, no handle needed.
fn operations(key: &Key, align: u8) -> Result<(Vec<Desc>, Vec<Desc>)> {
    let x = graph::tensor(key, key.x, UIDS[0], align)?;
    let w = graph::tensor(key, key.w, UIDS[1], align)?;
    let y = graph::tensor(key, key.y, UIDS[2], align)?;
    let sum = stat_tensor(key.y[1], STAT_UIDS[0])?;
    let sq = stat_tensor(key.y[1], STAT_UIDS[1])?;
    let conv = graph::convolution(key)?;
    let fprop = graph::operation(Op::Forward, key, [&x, &w, &y], &conv)?;
    let stats = genstats(&y, &sum, &sq)?;
    Ok((vec![fprop, stats], vec![x, w, y, sum, sq, conv]))
}

/// The best finalizable plan heuristics offer for the two-operation graph.
fn select(h: sys::cudnnHandle_t, key: &Key, align: u8) -> Result<Plan> {
    let (ops, parts) = operations(key, align)?;
    let graph: Rc<Graph> = Rc::new(graph::assemble(h, ops, parts)?);
    candidates(h, &graph, false, 1)?
        .pop()
        .ok_or_else(|| Error::Cuda("no plan".into()))
}

/// y = conv2d(x, w) with y's per-channel Σy and Σy² from the same cuDNN plan, as partials for
/// a training BN; Ok(None) when this path does not serve (switches off, not f16/bf16 NHWC, no
/// cuDNN graph API, no plan), leaving y to the other paths.
pub(in crate::cuda) fn forward_stats(
    x: &CudaStorage,
    w: &CudaStorage,
    y: &CudaStorage,
    s: &ConvShape,
) -> Result<Option<ChannelPartials>> {
    let on = cudnn_enabled() && cudnn_graph_enabled() && conv_bn_stats_enabled();
    if !on || !s.channels_last || !matches!(x.dtype(), DType::F16 | DType::BF16) {
        return Ok(None);
    }
    // An image stem (3 input channels) gets a padded, slow fusion plan: 2.2 ms for resnet18's
    // 7×7 stem at batch 128 on an H200, where the plain forward's first-layer kernel takes
    // 0.27 ms and the BN's own statistics pass less than that (ncu, 2026-11-27).
    if !(s.c / s.groups).is_multiple_of(8) {
        return Ok(None);
    }
    let Some(key) = Key::new(s, x.dtype(), false) else {
        return Ok(None);
    };
    let dev = x.device();
    // Where cuDNN or its graph API is missing, the plain forward says so.
    let Ok(dnn) = dev.dnn() else { return Ok(None) };
    let dnn = dnn.lock().unwrap_or_else(|e| e.into_inner());
    if dnn.graph.usable.is_err() {
        return Ok(None);
    }
    dev.bind()?;
    let h = dnn.handle;
    let second = s.oc.next_multiple_of(SQSUM_ALIGN);
    let buf = CudaStorage::alloc(dev, DType::F32, 2 * second)?;
    let t = [
        x.ptr(),
        w.ptr(),
        y.ptr(),
        buf.ptr(),
        buf.ptr() + 4 * second as u64,
    ];
    let align = graph::alignment([t[0], t[1], t[2]]);
    let capturing = dev.capturing();
    let what = || format!("a cuDNN conv+genstats of {}", key.describe());
    let ran = PLANS.with(|cell| -> Result<bool> {
        let mut plans = cell.borrow_mut();
        let entry = plan_for(
            &mut plans,
            (h as usize, key, align),
            capturing,
            what,
            || {
                Ok(select(h, &key, align)
                    .map_err(|e| report(&format!("{key:?}: {e}")))
                    .ok())
            },
        )?;
        let Some(plan) = entry.as_ref() else {
            return Ok(false);
        };
        let ws = workspace(dev, plan.workspace)?;
        let bound = on_call_stream(dev, h)?;
        // SAFETY: the handle runs on this thread's stream (the compute stream, or the capture's)
        // while `dnn` stays locked; `t` are live buffers of the key's sizes (x, w, y packed in
        // its layout, two f32 runs of `second` floats for the sums); the workspace returns to the
        // caching allocator only after this launch is queued.
        let uids = [UIDS[0], UIDS[1], UIDS[2], STAT_UIDS[0], STAT_UIDS[1]];
        let ws = ws.as_ref().map_or(0, |w| w.ptr());
        let executed = unsafe { execute_tensors(h, plan, &uids, &t, ws) };
        match settle(bound, executed, capturing, what)? {
            Ok(()) => Ok(true),
            Err(e) => {
                report(&format!("{key:?}: {e}"));
                *entry = None;
                Ok(false)
            }
        }
    })?;
    if !ran {
        return Ok(None);
    }
    let parts = TilePartials {
        ptr: buf.ptr(),
        second,
        stride: 1,
        tiles: 1,
        rows: s.n * s.geom.out[0] * s.geom.out[1],
        centered: false,
    };
    Ok(Some(ChannelPartials {
        buf: Storage::Cuda(buf),
        parts,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv_shape::Conv2dParams;

    /// cuDNN (where it loads: host-side objects, no device needed) accepts the conv fprop and
    /// genstats operations for f16 and bf16 NHWC convolutions, plain, strided and grouped.
    #[test]
    fn operations_finalize() {
        if !super::super::backend::loaded_for_tests() {
            return;
        }
        let p = |stride, padding, groups| Conv2dParams {
            stride: [stride; 2],
            padding: [padding; 2],
            groups,
            ..Default::default()
        };
        let cases = [
            ([2, 16, 9, 11], [24, 16, 3, 3], p(1, 1, 1)),
            ([2, 32, 10, 10], [64, 32, 1, 1], p(2, 0, 1)),
            ([2, 16, 9, 9], [32, 8, 3, 3], p(1, 1, 2)),
        ];
        for (x, w, params) in cases {
            for dtype in [DType::F16, DType::BF16] {
                let s = ConvShape::new(&x, &w, &params, true).unwrap();
                let key = Key::new(&s, dtype, false).unwrap();
                if let Err(e) = operations(&key, 16) {
                    panic!("{key:?}: {e}");
                }
            }
        }
    }
}
