//! Engine configurations and execution plans: heuristics' ranked configurations (with their
//! engine id and knobs, read back for the disk cache), configurations rebuilt from a recorded
//! choice, the numerical-note filter, plan finalization and execution with a variant pack.

use super::super::cudnn_lib::cudnn_err;
use super::backend::Desc;
use super::disk::Choice;
use super::graph::{Graph, UIDS};
use crate::Result;
use cudarc::cudnn::sys::{
    self, cudnnBackendAttributeName_t as Name, cudnnBackendAttributeType_t as Type,
    cudnnBackendDescriptorType_t as Kind, cudnnBackendHeurMode_t as HeurMode,
    cudnnBackendKnobType_t, cudnnBackendNumericalNote_t as Note,
};
use std::ffi::c_void;

/// Room for every numerical note an engine reports.
const MAX_NOTES: usize = Note::CUDNN_NUMERICAL_NOTE_TYPE_COUNT as usize;
/// Room for every knob choice of an engine configuration.
const MAX_KNOBS: usize = cudnnBackendKnobType_t::CUDNN_KNOB_TYPE_COUNTS as usize;

/// An engine configuration and the descriptors it was built from.
pub(super) struct Config {
    pub(super) cfg: Desc,
    _parts: Vec<Desc>,
}

/// A finalized execution plan, what it was built from, and its workspace in bytes.
pub(super) struct Plan {
    pub(super) plan: Desc,
    pub(super) workspace: usize,
    pub(super) choice: Choice,
    _config: Config,
    _graph: std::rc::Rc<Graph>,
}

/// The configurations heuristics `mode` ranks for `graph`, best first.
pub(super) fn heuristics(graph: &Graph, mode: HeurMode) -> Result<Vec<Config>> {
    let heur = Desc::new(Kind::CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR)?;
    heur.set_descs(Name::CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, &[&graph.graph])?;
    heur.set(
        Name::CUDNN_ATTR_ENGINEHEUR_MODE,
        Type::CUDNN_TYPE_HEUR_MODE,
        &[mode as u32],
    )?;
    heur.finalize()?;
    let n = heur.count(Name::CUDNN_ATTR_ENGINEHEUR_RESULTS)?;
    let cfgs = heur.get_descs(
        Name::CUDNN_ATTR_ENGINEHEUR_RESULTS,
        Kind::CUDNN_BACKEND_ENGINECFG_DESCRIPTOR,
        n,
    )?;
    Ok(cfgs
        .into_iter()
        .map(|cfg| Config {
            cfg,
            _parts: Vec::new(),
        })
        .collect())
}

/// Whether an engine with numerical `notes` keeps kiln's precision: never down-converted inputs
/// or reduced-precision accumulation, and for f32 (`strict`) no tensor cores (TF32).
pub(super) fn precise(notes: &[u32], strict: bool) -> bool {
    notes.iter().all(|&n| {
        n != Note::CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS as u32
            && n != Note::CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION as u32
            && !(strict && n == Note::CUDNN_NUMERICAL_NOTE_TENSOR_CORE as u32)
    })
}

/// The engine of a configuration, with its numerical notes.
fn engine_of(cfg: &Config) -> Result<(Desc, Vec<u32>)> {
    let mut engines = cfg.cfg.get_descs(
        Name::CUDNN_ATTR_ENGINECFG_ENGINE,
        Kind::CUDNN_BACKEND_ENGINE_DESCRIPTOR,
        1,
    )?;
    let engine = engines
        .pop()
        .ok_or_else(|| crate::Error::Cuda("cuDNN: engine config without engine".into()))?;
    let notes = engine.get(
        Name::CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
        Type::CUDNN_TYPE_NUMERICAL_NOTE,
        MAX_NOTES,
    )?;
    Ok((engine, notes))
}

/// The engine id and knob values of `cfg`, and whether its engine is `precise`.
pub(super) fn describe(cfg: &Config, strict: bool) -> Result<(Choice, bool)> {
    let (engine, notes) = engine_of(cfg)?;
    let id = engine.get::<i64>(
        Name::CUDNN_ATTR_ENGINE_GLOBAL_INDEX,
        Type::CUDNN_TYPE_INT64,
        1,
    )?;
    let knob_descs = cfg.cfg.get_descs(
        Name::CUDNN_ATTR_ENGINECFG_KNOB_CHOICES,
        Kind::CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR,
        MAX_KNOBS,
    )?;
    let knobs = knob_descs
        .iter()
        .map(read_knob)
        .collect::<Result<Vec<_>>>()?;
    let engine = *id
        .first()
        .ok_or_else(|| crate::Error::Cuda("cuDNN: engine without index".into()))?;
    Ok((Choice { engine, knobs }, precise(&notes, strict)))
}

/// A finalized knob choice: knob type `ty` (cuDNN's enum, as an integer) set to `value`.
fn knob(ty: u32, value: i64) -> Result<Desc> {
    let k = Desc::new(Kind::CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR)?;
    k.set(
        Name::CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE,
        Type::CUDNN_TYPE_KNOB_TYPE,
        &[ty],
    )?;
    k.set(
        Name::CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE,
        Type::CUDNN_TYPE_INT64,
        &[value],
    )?;
    k.finalize()?;
    Ok(k)
}

/// The knob type and value of a knob choice.
fn read_knob(k: &Desc) -> Result<(u32, i64)> {
    let ty = Name::CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE;
    let ty = k.get::<u32>(ty, Type::CUDNN_TYPE_KNOB_TYPE, 1)?;
    let value = Name::CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE;
    let value = k.get::<i64>(value, Type::CUDNN_TYPE_INT64, 1)?;
    match (&ty[..], &value[..]) {
        (&[t], &[v]) => Ok((t, v)),
        _ => Err(crate::Error::Cuda(
            "cuDNN: knob choice without type or value".into(),
        )),
    }
}

/// The configuration of a recorded `choice` on `graph`.
pub(super) fn rebuild(graph: &Graph, choice: &Choice) -> Result<Config> {
    let engine = Desc::new(Kind::CUDNN_BACKEND_ENGINE_DESCRIPTOR)?;
    engine.set_descs(Name::CUDNN_ATTR_ENGINE_OPERATION_GRAPH, &[&graph.graph])?;
    engine.set(
        Name::CUDNN_ATTR_ENGINE_GLOBAL_INDEX,
        Type::CUDNN_TYPE_INT64,
        &[choice.engine],
    )?;
    engine.finalize()?;
    let mut parts = choice
        .knobs
        .iter()
        .map(|&(ty, value)| knob(ty, value))
        .collect::<Result<Vec<_>>>()?;
    let cfg = Desc::new(Kind::CUDNN_BACKEND_ENGINECFG_DESCRIPTOR)?;
    cfg.set_descs(Name::CUDNN_ATTR_ENGINECFG_ENGINE, &[&engine])?;
    if !parts.is_empty() {
        let knobs: Vec<&Desc> = parts.iter().collect();
        cfg.set_descs(Name::CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, &knobs)?;
    }
    cfg.finalize()?;
    parts.push(engine);
    Ok(Config { cfg, _parts: parts })
}

/// Finalizes the execution plan of `config` on handle `h`.
pub(super) fn finalize(
    h: sys::cudnnHandle_t,
    graph: &std::rc::Rc<Graph>,
    config: Config,
    choice: Choice,
) -> Result<Plan> {
    let plan = Desc::new(Kind::CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR)?;
    plan.set_handle(Name::CUDNN_ATTR_EXECUTION_PLAN_HANDLE, h)?;
    plan.set_descs(
        Name::CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
        &[&config.cfg],
    )?;
    plan.finalize()?;
    let ws = plan.get::<i64>(
        Name::CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
        Type::CUDNN_TYPE_INT64,
        1,
    )?;
    Ok(Plan {
        plan,
        workspace: ws.first().map_or(0, |&w| w.max(0) as usize),
        choice,
        _config: config,
        _graph: graph.clone(),
    })
}

/// Queues `plan` on handle `h`'s stream over the tensors at `t` ([x, w, y] addresses) with
/// `ws` (address of at least `plan.workspace` bytes, or 0 when it needs none).
///
/// # Safety
/// `t` must be live device buffers of the plan's shapes, and `ws` live until the stream has run
/// the plan.
pub(super) unsafe fn execute(
    h: sys::cudnnHandle_t,
    plan: &Plan,
    t: [u64; 3],
    ws: u64,
) -> Result<()> {
    execute_tensors(h, plan, &UIDS, &t, ws)
}

/// Queues `plan` on handle `h`'s stream over the tensors of ids `uids` at the addresses `t`,
/// with `ws` as in [`execute`].
///
/// # Safety
/// As [`execute`], for every tensor of the plan's graph.
pub(super) unsafe fn execute_tensors(
    h: sys::cudnnHandle_t,
    plan: &Plan,
    uids: &[i64],
    t: &[u64],
    ws: u64,
) -> Result<()> {
    let pack = Desc::new(Kind::CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR)?;
    let ptrs: Vec<*mut c_void> = t.iter().map(|&a| a as *mut c_void).collect();
    pack.set_ptrs(Name::CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, &ptrs)?;
    pack.set(
        Name::CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS,
        Type::CUDNN_TYPE_INT64,
        uids,
    )?;
    pack.set_ptrs(
        Name::CUDNN_ATTR_VARIANT_PACK_WORKSPACE,
        &[ws as *mut c_void],
    )?;
    pack.finalize()?;
    sys::cudnnBackendExecute(h, plan.plan.raw(), pack.raw())
        .result()
        .map_err(|e| cudnn_err("execute", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A knob choice reads back as set (host-side, where cuDNN loads): the disk cache records
    /// what `read_knob` reads and `knob` rebuilds it.
    #[test]
    fn knob_round_trip() {
        if !super::super::backend::loaded_for_tests() {
            return;
        }
        let tile = cudnnBackendKnobType_t::CUDNN_KNOB_TYPE_TILE_SIZE as u32;
        let k = knob(tile, 3).unwrap();
        assert_eq!(read_knob(&k).unwrap(), (tile, 3));
    }

    /// f32 takes no tensor-core (TF32) engine; no dtype takes down-converted inputs or
    /// reduced-precision accumulation; other notes pass.
    #[test]
    fn precision_filter() {
        let tc = Note::CUDNN_NUMERICAL_NOTE_TENSOR_CORE as u32;
        let down = Note::CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS as u32;
        let reduced = Note::CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION as u32;
        let wino = Note::CUDNN_NUMERICAL_NOTE_WINOGRAD as u32;
        assert!(precise(&[], true));
        assert!(precise(&[wino], true));
        assert!(!precise(&[tc], true));
        assert!(precise(&[tc, wino], false));
        assert!(!precise(&[down], false));
        assert!(!precise(&[reduced], false));
    }
}
