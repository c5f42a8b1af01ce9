//! Fused multi-tensor updates: optimizer rule steps, gradient unscaling for loss scaling, and EMA.
//! Every tensor is dense from offset 0 and f32, except a rule step's params and grads, which may
//! be f16 or bf16 (computed in f32, rounded once on store); lists run in parallel (params\[i\]
//! with grads\[i\] and state\[i\]); on CUDA each list is one launch per 32 tensors.

use crate::backend::Flat;
use crate::{DType, Device, Error, Result, Storage, Tensor};
use kiln_kernels::cpu::optim::{RuleElem, RuleStep};

/// Checks that `t` can be handed to a multi-tensor kernel as a flat `dtype` buffer.
fn check_flat(op: &'static str, t: &Tensor, device: Device, dtype: DType) -> Result<()> {
    if t.dtype() != dtype {
        return Err(Error::UnsupportedDType {
            op,
            dtype: t.dtype(),
        });
    }
    if t.device() != device {
        return Err(Error::DeviceMismatch {
            op,
            lhs: device,
            rhs: t.device(),
        });
    }
    if !t.layout().is_dense() || t.layout().offset() != 0 {
        return Err(Error::BadShape {
            op,
            shape: t.shape().to_vec(),
            msg: "multi-tensor kernels need dense tensors starting at offset 0".into(),
        });
    }
    Ok(())
}

/// Validates parallel f32 lists of the same lengths and sizes; returns the common device.
pub(super) fn check_lists(op: &'static str, lists: &[&[Tensor]]) -> Result<Option<Device>> {
    check_typed_lists(op, lists, &vec![DType::F32; lists.len()])
}

/// Validates parallel lists of the same lengths and sizes, list `i` holding `dtypes[i]`; returns
/// the common device.
fn check_typed_lists(
    op: &'static str,
    lists: &[&[Tensor]],
    dtypes: &[DType],
) -> Result<Option<Device>> {
    let Some(first) = lists.first().and_then(|l| l.first()) else {
        return Ok(None);
    };
    let device = first.device();
    for (list, &dtype) in lists.iter().zip(dtypes) {
        if list.len() != lists[0].len() {
            return Err(Error::InvalidArgument {
                op,
                msg: "tensor lists of different lengths".into(),
            });
        }
        for (t, p) in list.iter().zip(lists[0]) {
            check_flat(op, t, device, dtype)?;
            if t.numel() != p.numel() {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: p.shape().to_vec(),
                    rhs: t.shape().to_vec(),
                });
            }
        }
    }
    Ok(Some(device))
}

/// The buffers of a checked list, as the boundary's multi-tensor entries take them.
pub(super) fn flats(list: &[Tensor]) -> Vec<Flat<'_>> {
    list.iter().map(flat).collect()
}

fn flat(t: &Tensor) -> Flat<'_> {
    Flat {
        storage: t.storage_lock(),
        offset: t.layout().offset(),
        len: t.numel(),
    }
}

/// One step of `h.rule` over every parameter in place: `state[j]` is the rule's j-th state list
/// ([`Rule::states`](kiln_kernels::cpu::optim::Rule::states) lists). With `dirs`, the parameters
/// are left alone and each update direction is written there (for cautious masks, trust ratios).
/// Params and grads share one dtype (f32, f16 or bf16); state and dirs are f32.
pub fn rule_step_(
    params: &[Tensor],
    grads: &[Tensor],
    dirs: Option<&[Tensor]>,
    state: &[&[Tensor]],
    h: &RuleStep,
) -> Result<()> {
    if state.len() != h.rule.states() {
        return Err(Error::InvalidArgument {
            op: "rule_step",
            msg: format!(
                "{:?} keeps {} state lists, got {}",
                h.rule,
                h.rule.states(),
                state.len()
            ),
        });
    }
    let dtype = params.first().map_or(DType::F32, |p| p.dtype());
    let mut lists = vec![params, grads];
    lists.extend(dirs);
    lists.extend(state.iter().copied());
    let mut dtypes = vec![DType::F32; lists.len()];
    dtypes[..2].fill(dtype);
    let Some(device) = check_typed_lists("rule_step", &lists, &dtypes)? else {
        return Ok(());
    };
    match dtype {
        DType::F32 => rule_step_as::<f32>(device, params, grads, dirs, state, h),
        DType::F16 => rule_step_as::<half::f16>(device, params, grads, dirs, state, h),
        DType::BF16 => rule_step_as::<half::bf16>(device, params, grads, dirs, state, h),
        _ => Err(Error::UnsupportedDType {
            op: "rule_step",
            dtype,
        }),
    }
}

/// [`rule_step_`] over checked lists whose params and grads hold `E`.
fn rule_step_as<E: RuleElem + crate::StorageElem>(
    device: Device,
    params: &[Tensor],
    grads: &[Tensor],
    dirs: Option<&[Tensor]>,
    state: &[&[Tensor]],
    h: &RuleStep,
) -> Result<()> {
    let dirs = dirs.map(flats);
    let state: Vec<Vec<Flat>> = state.iter().map(|l| flats(l)).collect();
    Storage::rule_step_::<E>(
        device,
        &flats(params),
        &flats(grads),
        dirs.as_deref(),
        &state,
        h,
    )
}

/// Multiplies every gradient by `inv_scale` in place; returns whether any was inf or NaN.
pub fn unscale_grads_(grads: &[Tensor], inv_scale: f32) -> Result<bool> {
    let Some(device) = check_lists("unscale", &[grads])? else {
        return Ok(false);
    };
    Storage::unscale_(device, &flats(grads), inv_scale)
}

/// Multiplies every gradient by the f32 in `inv_scale` (one element, on the gradients' device)
/// in place, and sets the f32 `found` to 1 when any gradient held an inf or NaN, else to 0:
/// [`unscale_grads_`] for a step that cannot read anything on the host (a CUDA graph, whose
/// loss scale is written into `inv_scale` before each replay).
pub fn unscale_grads_by_(grads: &[Tensor], inv_scale: &Tensor, found: &Tensor) -> Result<()> {
    let flag_device = grads.first().map_or(found.device(), |g| g.device());
    for (name, t) in [("inv_scale", inv_scale), ("found", found)] {
        check_flat("unscale", t, flag_device, DType::F32)?;
        if t.numel() != 1 {
            return Err(Error::InvalidArgument {
                op: "unscale",
                msg: format!("{name} is one f32, got shape {:?}", t.shape()),
            });
        }
    }
    Storage::clear_flag(flat(found))?;
    let Some(device) = check_lists("unscale", &[grads])? else {
        return Ok(());
    };
    Storage::unscale_by_(device, &flats(grads), flat(inv_scale), flat(found))
}

/// Sets the f32 `flag` to 1 when any element of the f32 tensor `x` is inf or NaN, else to 0,
/// without reading `x` on the host: the non-finite loss check of a CUDA graph's step.
pub fn flag_nonfinite_(x: &Tensor, flag: &Tensor) -> Result<()> {
    let probe = x.detach().to_dtype(DType::F32)?.contiguous_copy()?;
    let one = Tensor::full_on(&[1], 1.0, DType::F32, flag.device())?;
    unscale_grads_by_(&[probe], &one, flag)
}

/// ema = decay·ema + (1-decay)·model for every pair, in place (timm's ModelEmaV3 step).
pub fn ema_update_(ema: &[Tensor], model: &[Tensor], decay: f32) -> Result<()> {
    let Some(device) = check_lists("ema", &[ema, model])? else {
        return Ok(());
    };
    Storage::ema_(device, &flats(ema), &flats(model), decay)
}
