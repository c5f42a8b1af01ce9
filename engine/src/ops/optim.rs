//! Fused multi-tensor updates: optimizer steps, gradient unscaling for loss scaling, and EMA.
//! Every tensor is f32, dense from offset 0, and lists run in parallel (params\[i\] with
//! grads\[i\] and state\[i\]); on CUDA each list is one launch per 32 tensors.

use crate::{DType, Device, Error, Result, Storage, Tensor};
use kiln_kernels::cpu::optim::{AdamWStep, SgdStep};
use kiln_kernels::cpu::{amp as cpu_amp, optim as cpu_optim};
use kiln_kernels::cuda::{amp as cuda_amp, optim as cuda_optim};
use std::sync::RwLockWriteGuard;

/// Checks that `t` can be handed to a multi-tensor kernel as a flat f32 buffer.
fn check_flat(op: &'static str, t: &Tensor, device: Device) -> Result<()> {
    if t.dtype() != DType::F32 {
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

/// Validates parallel lists of the same lengths and sizes; returns the common device.
pub(super) fn check_lists(op: &'static str, lists: &[&[Tensor]]) -> Result<Option<Device>> {
    let Some(first) = lists.first().and_then(|l| l.first()) else {
        return Ok(None);
    };
    let device = first.device();
    for list in lists {
        if list.len() != lists[0].len() {
            return Err(Error::InvalidArgument {
                op,
                msg: "tensor lists of different lengths".into(),
            });
        }
        for (t, p) in list.iter().zip(lists[0]) {
            check_flat(op, t, device)?;
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

/// One SGD step (`torch.optim.SGD` semantics in `h`) over every parameter in place.
pub fn sgd_step_(params: &[Tensor], grads: &[Tensor], bufs: &[Tensor], h: &SgdStep) -> Result<()> {
    let Some(device) = check_lists("sgd", &[params, grads, bufs])? else {
        return Ok(());
    };
    if let Device::Cuda(_) = device {
        let (p, g, b) = (
            device_ptrs(params)?,
            device_ptrs(grads)?,
            device_ptrs(bufs)?,
        );
        let set = cuda_optim::TensorSet {
            params: &p,
            grads: &g,
            state: [&b, &b],
            lens: &lens(params),
        };
        return Ok(cuda_optim::sgd_step(
            cuda_kernels(device)?.kernels(),
            &set,
            h,
        )?);
    }
    for ((p, g), b) in params.iter().zip(grads).zip(bufs) {
        let n = p.numel();
        let (mut pw, mut bw, gr) = (p.storage_mut(), b.storage_mut(), g.storage());
        let gs = &gr.cpu("sgd")?.as_slice::<f32>("sgd")?[..n];
        cpu_optim::sgd_step(f32_mut(&mut pw, n)?, gs, f32_mut(&mut bw, n)?, h);
    }
    Ok(())
}

/// One AdamW step over every parameter in place, with first and second moments `m`, `v`.
pub fn adamw_step_(
    params: &[Tensor],
    grads: &[Tensor],
    m: &[Tensor],
    v: &[Tensor],
    h: &AdamWStep,
) -> Result<()> {
    let Some(device) = check_lists("adamw", &[params, grads, m, v])? else {
        return Ok(());
    };
    if let Device::Cuda(_) = device {
        let (p, g) = (device_ptrs(params)?, device_ptrs(grads)?);
        let (mp, vp) = (device_ptrs(m)?, device_ptrs(v)?);
        let set = cuda_optim::TensorSet {
            params: &p,
            grads: &g,
            state: [&mp, &vp],
            lens: &lens(params),
        };
        return Ok(cuda_optim::adamw_step(
            cuda_kernels(device)?.kernels(),
            &set,
            h,
        )?);
    }
    for (((p, g), m), v) in params.iter().zip(grads).zip(m).zip(v) {
        let n = p.numel();
        let (mut pw, mut mw, mut vw) = (p.storage_mut(), m.storage_mut(), v.storage_mut());
        let gr = g.storage();
        let gs = &gr.cpu("adamw")?.as_slice::<f32>("adamw")?[..n];
        let (pm, mm, vm) = (
            f32_mut(&mut pw, n)?,
            f32_mut(&mut mw, n)?,
            f32_mut(&mut vw, n)?,
        );
        cpu_optim::adamw_step(pm, gs, mm, vm, h);
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
