//! Fused multi-tensor updates: optimizer rule steps, gradient unscaling for loss scaling, and EMA.
//! Every tensor is dense from offset 0 and f32, except a rule step's params and grads, which may
//! be f16 or bf16 (computed in f32, rounded once on store); lists run in parallel (params\[i\]
//! with grads\[i\] and state\[i\]); on CUDA each list is one launch per 32 tensors.

use crate::cuda::graph::{self, StepArg};
use crate::{DType, Device, Error, Result, Storage, Tensor};
use kiln_kernels::cpu::optim::{RuleElem, RuleSlices, RuleStep};
use kiln_kernels::cpu::{amp as cpu_amp, optim as cpu_optim};
use kiln_kernels::cuda::optim::DeviceArgs;
use kiln_kernels::cuda::{amp as cuda_amp, optim as cuda_optim};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::RwLockWriteGuard;

/// The bytes of a rule step's scalars, as the kernel reads them from device memory.
fn rule_step_bytes(h: &RuleStep) -> &[u8] {
    // SAFETY: RuleStep is repr(C) and made of 4-byte fields only (an i32 enum, f32s, an i32), so
    // it has no padding and every byte is initialized.
    unsafe {
        std::slice::from_raw_parts(
            (h as *const RuleStep).cast::<u8>(),
            std::mem::size_of::<RuleStep>(),
        )
    }
}

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

pub(super) fn device_ptrs(list: &[Tensor]) -> Result<Vec<u64>> {
    list.iter()
        .map(|t| Ok(t.storage().cuda("multi-tensor")?.ptr()))
        .collect()
}

pub(super) fn lens(list: &[Tensor]) -> Vec<usize> {
    list.iter().map(|t| t.numel()).collect()
}

pub(super) fn write_all(list: &[Tensor]) -> Vec<RwLockWriteGuard<'_, Storage>> {
    list.iter().map(|t| t.storage_mut()).collect()
}

pub(super) fn f32_mut<'a>(
    g: &'a mut RwLockWriteGuard<'_, Storage>,
    n: usize,
) -> Result<&'a mut [f32]> {
    Ok(&mut g
        .cpu_mut("multi-tensor")?
        .as_mut_slice::<f32>("multi-tensor")?[..n])
}

pub(super) fn cuda_kernels(d: Device) -> Result<std::sync::Arc<crate::cuda::CudaDevice>> {
    match d {
        Device::Cuda(n) => crate::cuda::device(n),
        Device::Cpu => Err(Error::NoCuda("not a CUDA tensor".into())),
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
    if let Device::Cuda(_) = device {
        let (p, g) = (device_ptrs(params)?, device_ptrs(grads)?);
        let d = dirs.map(device_ptrs).transpose()?.unwrap_or_default();
        let s: Vec<Vec<u64>> = state
            .iter()
            .map(|l| device_ptrs(l))
            .collect::<Result<_>>()?;
        let sizes = lens(params);
        // Inside a CUDA graph the scalars live in device memory that each replay rewrites.
        let mut sig = DefaultHasher::new();
        (E::KERNEL, h.rule as i32, &p, &g, &d, &s, &sizes).hash(&mut sig);
        let dev = match graph::step_scalars(rule_step_bytes(h), sig.finish())? {
            StepArg::Eager => DeviceArgs::default(),
            StepArg::Device { scalars, skip } => DeviceArgs { scalars, skip },
            StepArg::Refreshed => return Ok(()),
        };
        let s: Vec<&[u64]> = s.iter().map(|l| l.as_slice()).collect();
        let set = cuda_optim::TensorSet {
            params: &p,
            grads: &g,
            dirs: &d,
            state: &s,
            lens: &sizes,
        };
        return Ok(cuda_optim::rule_step::<E>(
            cuda_kernels(device)?.kernels(),
            &set,
            h,
            dev,
        )?);
    }
    for (t, (p, g)) in params.iter().zip(grads).enumerate() {
        let n = p.numel();
        let mut pw = p.storage_mut();
        let gr = g.storage();
        let gs = &gr.cpu("rule_step")?.as_slice::<E>("rule_step")?[..n];
        let state_t: Vec<Tensor> = state.iter().map(|l| l[t].clone()).collect();
        let mut sw = write_all(&state_t);
        let mut dw = dirs.map(|d| d[t].storage_mut());
        let slices = RuleSlices {
            p: &mut pw.cpu_mut("rule_step")?.as_mut_slice::<E>("rule_step")?[..n],
            g: gs,
            state: sw
                .iter_mut()
                .map(|w| f32_mut(w, n))
                .collect::<Result<_>>()?,
            dir: dw.as_mut().map(|w| f32_mut(w, n)).transpose()?,
        };
        cpu_optim::rule_step(slices, h);
    }
    Ok(())
}

/// Multiplies every gradient by `inv_scale` in place; returns whether any was inf or NaN.
pub fn unscale_grads_(grads: &[Tensor], inv_scale: f32) -> Result<bool> {
    let Some(device) = check_lists("unscale", &[grads])? else {
        return Ok(false);
    };
    if let Device::Cuda(_) = device {
        let dev = cuda_kernels(device)?;
        let found = Tensor::full_on(&[1], 0.0, DType::F32, device)?;
        let flag = found.storage().cuda("unscale")?.ptr();
        cuda_amp::unscale_and_check(
            dev.kernels(),
            &device_ptrs(grads)?,
            &lens(grads),
            inv_scale,
            flag,
        )?;
        return Ok(found.item()? != 0.0);
    }
    let mut guards = write_all(grads);
    let mut slices: Vec<&mut [f32]> = guards
        .iter_mut()
        .zip(grads)
        .map(|(g, t)| f32_mut(g, t.numel()))
        .collect::<Result<_>>()?;
    Ok(cpu_amp::unscale_and_check(&mut slices, inv_scale))
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
    zero_flag(found)?;
    let Some(device) = check_lists("unscale", &[grads])? else {
        return Ok(());
    };
    if let Device::Cuda(_) = device {
        let dev = cuda_kernels(device)?;
        let (inv, flag) = (scalar_ptr(inv_scale)?, scalar_ptr(found)?);
        cuda_amp::unscale_and_check_by(
            dev.kernels(),
            &device_ptrs(grads)?,
            &lens(grads),
            inv,
            flag,
        )?;
        return Ok(());
    }
    let factor = inv_scale.to_vec::<f32>()?[0];
    if unscale_grads_(grads, factor)? {
        found.copy_(&Tensor::ones(&[1], DType::F32)?.reshape(found.shape())?)?;
    }
    Ok(())
}

/// Sets the f32 `flag` to 1 when any element of the f32 tensor `x` is inf or NaN, else to 0,
/// without reading `x` on the host: the non-finite loss check of a CUDA graph's step.
pub fn flag_nonfinite_(x: &Tensor, flag: &Tensor) -> Result<()> {
    let probe = x.detach().to_dtype(DType::F32)?.contiguous_copy()?;
    let one = Tensor::full_on(&[1], 1.0, DType::F32, flag.device())?;
    unscale_grads_by_(&[probe], &one, flag)
}

/// The device address of a one-element f32 tensor.
pub(super) fn scalar_ptr(t: &Tensor) -> Result<u64> {
    Ok(t.storage()
        .cuda("multi-tensor")?
        .ptr_at(t.layout().offset()))
}

/// Sets a one-element f32 flag to 0 (on its device's stream, so a graph captures it).
fn zero_flag(flag: &Tensor) -> Result<()> {
    if let Device::Cuda(_) = flag.device() {
        let storage = flag.storage();
        let s = storage.cuda("flag")?;
        let stream = s.device().stream();
        // SAFETY: the flag holds one f32 at this address; the memset is ordered on this
        // thread's stream before the kernels that set it.
        unsafe {
            cudarc::driver::result::memset_d8_async(
                s.ptr_at(flag.layout().offset()),
                0,
                4,
                stream.cu_stream(),
            )
        }
        .map_err(|e| Error::Cuda(format!("clearing a flag: {e:?}")))?;
        return Ok(());
    }
    flag.copy_(&Tensor::zeros(flag.shape(), DType::F32)?)
}

/// ema = decay·ema + (1-decay)·model for every pair, in place (timm's ModelEmaV3 step).
pub fn ema_update_(ema: &[Tensor], model: &[Tensor], decay: f32) -> Result<()> {
    let Some(device) = check_lists("ema", &[ema, model])? else {
        return Ok(());
    };
    if let Device::Cuda(_) = device {
        let dev = cuda_kernels(device)?;
        let (e, m) = (device_ptrs(ema)?, device_ptrs(model)?);
        return Ok(cuda_amp::ema_update(
            dev.kernels(),
            &e,
            &m,
            &lens(ema),
            decay,
        )?);
    }
    let mut guards = write_all(ema);
    let mut slices: Vec<&mut [f32]> = guards
        .iter_mut()
        .zip(ema)
        .map(|(g, t)| f32_mut(g, t.numel()))
        .collect::<Result<_>>()?;
    let reads: Vec<_> = model.iter().map(|t| t.storage()).collect();
    let srcs: Vec<&[f32]> = reads
        .iter()
        .zip(model)
        .map(|(r, t)| Ok(&r.cpu("ema")?.as_slice::<f32>("ema")?[..t.numel()]))
        .collect::<Result<_>>()?;
    cpu_amp::ema_update(&mut slices, &srcs, decay);
    Ok(())
}
