//! Launchers for `attention.cu`: fused scaled-dot-product attention, the forward (O and the
//! per-row logsumexp) and the backward (dQ with Δ = rowsum(dO∘O), then dK and dV). Twin of
//! [`crate::cpu::attention`]; lse, Δ and the bias gradient are f32 for every storage dtype.

use super::{DevPtr, Kernels};
use crate::cpu::attention::AttnDims;
use crate::{Error, Result};
use cudarc::driver::LaunchConfig;

const FILE: &str = "attention.cu";
/// Query rows per block of the forward and dQ kernels (`ATT_BR`).
const BR: usize = 64;
/// Key rows per block of the dK/dV kernel (`ATT_BK`).
const BK: usize = 32;

/// The largest head dim the kernels take.
pub const MAX_HEAD_DIM: usize = 64;

/// The compiled head-dim bucket holding `d`: 32 or 64.
fn bucket(d: usize) -> Result<usize> {
    match d {
        1..=32 => Ok(32),
        33..=MAX_HEAD_DIM => Ok(64),
        _ => Err(Error::Launch(format!(
            "attention: head dim {d} outside 1..={MAX_HEAD_DIM}"
        ))),
    }
}

/// `rows` split into blocks of `per` threads, one block row per problem.
fn grid(rows: usize, per: usize, bh: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows.div_ceil(per) as u32, bh as u32, 1),
        block_dim: (per as u32, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The scalar arguments every attention kernel ends with.
fn scalars(dims: &AttnDims) -> (i64, i64, i32, f32, i32) {
    let (lq, lk) = (dims.lq as i64, dims.lk as i64);
    (lq, lk, dims.d as i32, dims.scale as f32, dims.causal as i32)
}

/// The bias pointer with its (div, count), or a null pointer with (1, 1); a pointer without a
/// map (or the reverse) is an error.
fn bias_args(bias: Option<DevPtr>, dims: &AttnDims) -> Result<(DevPtr, i64, i64)> {
    match (bias, dims.bias) {
        (Some(p), Some(m)) => Ok((p, m.div as i64, m.count as i64)),
        (None, None) => Ok((0, 1, 1)),
        _ => Err(Error::Launch(
            "attention: a bias pointer needs its map in the dims and the reverse".into(),
        )),
    }
}

/// The head-dim bucket of `dims`, or `None` when there is no work (an empty grid is a launch
/// error); more problems than a grid's y dimension holds is an error.
fn plan(dims: &AttnDims) -> Result<Option<usize>> {
    let hd = bucket(dims.d)?;
    if dims.bh > 65535 {
        return Err(Error::Launch(format!(
            "attention: {} batch·head problems, at most 65535",
            dims.bh
        )));
    }
    Ok((dims.bh > 0 && dims.lq > 0 && dims.lk > 0).then_some(hd))
}

/// O (`bh·lq·d` of `ty`) and lse (`bh·lq` f32) from dense Q, K and V of dtype `ty` and the
/// optional bias (`count·lq·lk` of `ty`, as `dims.bias` maps it).
pub fn attention_fwd(
    k: &Kernels,
    ty: &str,
    (q, key, v, bias): (DevPtr, DevPtr, DevPtr, Option<DevPtr>),
    (o, lse): (DevPtr, DevPtr),
    dims: AttnDims,
) -> Result<()> {
    let (bias, bdiv, bcount) = bias_args(bias, &dims)?;
    let Some(hd) = plan(&dims)? else {
        return Ok(());
    };
    let (lq, lk, d, scale, causal) = scalars(&dims);
    // SAFETY: q and o hold bh·lq·d elements of `ty`, key and v bh·lk·d, lse bh·lq f32, a non-null
    // bias bcount·lq·lk of `ty` (bh a multiple of bdiv·bcount); the grid covers lq rows per
    // problem and the list matches `attention_fwd_h<hd>_<ty>`.
    unsafe {
        k.launch(
            FILE,
            &format!("attention_fwd_h{hd}_{ty}"),
            grid(dims.lq, BR, dims.bh),
            &[
                &q, &key, &v, &bias, &o, &lse, &lq, &lk, &d, &scale, &causal, &bdiv, &bcount,
            ],
        )
    }
}

/// What the backward reads: the forward's operands and results and dO, all dense.
#[derive(Debug, Clone, Copy)]
pub struct AttnBwdPtrs {
    /// Queries, `bh·lq·d` of the storage dtype.
    pub q: DevPtr,
    /// Keys, `bh·lk·d`.
    pub k: DevPtr,
    /// Values, `bh·lk·d`.
    pub v: DevPtr,
    /// The forward's output, `bh·lq·d`.
    pub o: DevPtr,
    /// The forward's logsumexp, `bh·lq` f32.
    pub lse: DevPtr,
    /// dO, `bh·lq·d`.
    pub dout: DevPtr,
    /// The forward's bias, `count·lq·lk` of the storage dtype, as `dims.bias` maps it.
    pub bias: Option<DevPtr>,
}

/// Block rows the bias gradient takes per bias matrix: enough for about 256 in all, at most one
/// per problem. The gradient comes out as `dbias_groups` partials per matrix.
pub fn dbias_groups(dims: &AttnDims) -> usize {
    match dims.bias {
        Some(m) => 256usize.div_ceil(m.count).clamp(1, m.per(dims.bh).max(1)),
        None => 1,
    }
}

/// dQ, dK, dV (shaped as Q, K, V, dtype `ty`) through `delta`, a `bh·lq` f32 scratch for Δ,
/// and with `dbias` (f32 [count, [`dbias_groups`], lq, lk], zeroed by the caller) the bias
/// gradient's partials: dS summed over each group of the problems reading a bias matrix (their
/// sum over the groups is the gradient).
pub fn attention_bwd(
    k: &Kernels,
    ty: &str,
    x: AttnBwdPtrs,
    delta: DevPtr,
    (dq, dk, dv, dbias): (DevPtr, DevPtr, DevPtr, Option<DevPtr>),
    dims: AttnDims,
) -> Result<()> {
    let (bias, bdiv, bcount) = bias_args(x.bias, &dims)?;
    if dbias.is_some() && x.bias.is_none() {
        return Err(Error::Launch(
            "attention: a bias gradient needs a bias".into(),
        ));
    }
    let Some(hd) = plan(&dims)? else {
        return Ok(());
    };
    let (lq, lk, d, scale, causal) = scalars(&dims);
    let AttnBwdPtrs {
        q,
        k: key,
        v,
        o,
        lse,
        dout,
        ..
    } = x;
    // With dB each bias matrix's groups of problems take a block row each; without, a block row
    // per problem.
    let groups = dbias_groups(&dims);
    let (rows_y, per) = match dbias {
        Some(_) => (bcount as usize * groups, dims.bh as i64 / bcount),
        None => (dims.bh, 1),
    };
    let groups = groups as i64;
    let dbias = dbias.unwrap_or(0);
    // SAFETY: as the forward, plus o, dout and dq of bh·lq·d elements of `ty`, delta of bh·lq
    // f32 and a non-null dbias of bcount·groups·lq·lk f32; each block row's problems lie in
    // [0, bh);
    // the list matches `attention_bwd_dq_h<hd>_<ty>`.
    unsafe {
        k.launch(
            FILE,
            &format!("attention_bwd_dq_h{hd}_{ty}"),
            grid(dims.lq, BR, rows_y),
            &[
                &q, &key, &v, &bias, &o, &dout, &lse, &delta, &dq, &dbias, &lq, &lk, &d, &scale,
                &causal, &bdiv, &bcount, &per, &groups,
            ],
        )?;
    }
    // SAFETY: dk and dv hold bh·lk·d elements of `ty`, delta was written by the dQ kernel on the
    // same stream; the grid covers lk key rows per problem and the list matches
    // `attention_bwd_dkv_h<hd>_<ty>`.
    unsafe {
        k.launch(
            FILE,
            &format!("attention_bwd_dkv_h{hd}_{ty}"),
            grid(dims.lk, BK, dims.bh),
            &[
                &q, &key, &v, &bias, &dout, &lse, &delta, &dk, &dv, &lq, &lk, &d, &scale, &causal,
                &bdiv, &bcount,
            ],
        )
    }
}
