//! The boundary's multi-tensor entries: optimizer rule steps, the unscale of loss scaling, EMA and
//! the global gradient norm over parallel lists of buffers on one device. Each has one arm per
//! backend: the CPU arm runs the `kiln_kernels::cpu` twin a buffer at a time, the CUDA arm
//! launches once per 32 buffers.

use crate::cuda;
use crate::cuda::graph::{self, StepArg};
use crate::{DType, Device, Layout, Result, Storage, StorageElem};
use kiln_kernels::cpu::optim::{RuleElem, RuleSlices, RuleStep};
use kiln_kernels::cpu::{amp as cpu_amp, grad_norm as cpu_norm, optim as cpu_optim};
use kiln_kernels::cuda::optim::{DeviceArgs, TensorSet};
use kiln_kernels::cuda::{amp as cuda_amp, grad_norm as cuda_norm, optim as cuda_optim};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One buffer of a multi-tensor entry: a dense tensor's storage (locked by the entry as it
/// reads or writes it), the element its data starts at, and how many it holds.
#[derive(Clone, Copy)]
pub struct Flat<'a> {
    /// The tensor's storage.
    pub storage: &'a RwLock<Storage>,
    /// Where its elements start (0 in a list).
    pub offset: usize,
    /// How many elements it holds.
    pub len: usize,
}

impl Flat<'_> {
    fn read(&self) -> RwLockReadGuard<'_, Storage> {
        self.storage.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Storage> {
        self.storage.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Its first element's device address.
    fn ptr(&self) -> Result<u64> {
        Ok(self.read().cuda("multi-tensor")?.ptr_at(self.offset))
    }
}

/// The device addresses of a list's buffers.
fn ptrs(list: &[Flat]) -> Result<Vec<u64>> {
    list.iter().map(Flat::ptr).collect()
}

fn lens(list: &[Flat]) -> Vec<usize> {
    list.iter().map(|f| f.len).collect()
}

/// The f32 elements of a locked buffer.
fn f32_mut<'a>(g: &'a mut RwLockWriteGuard<'_, Storage>, f: &Flat) -> Result<&'a mut [f32]> {
    let s = g.cpu_mut("multi-tensor")?;
    Ok(&mut s.as_mut_slice::<f32>("multi-tensor")?[f.offset..f.offset + f.len])
}

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

/// A new one-element f32 buffer holding `value` on a CUDA device.
fn cuda_scalar(device: Device, value: f64) -> Result<Storage> {
    Storage::full(device, DType::F32, 1, value)
}

fn cuda_ptr(s: &Storage, op: &'static str) -> Result<u64> {
    Ok(s.cuda(op)?.ptr())
}

/// The CPU twin's unscale over f32 buffers: whether any held an inf or NaN.
fn cpu_unscale(grads: &[Flat], factor: f32) -> Result<bool> {
    let mut guards: Vec<_> = grads.iter().map(Flat::write).collect();
    let mut slices: Vec<&mut [f32]> = guards
        .iter_mut()
        .zip(grads)
        .map(|(g, f)| f32_mut(g, f))
        .collect::<Result<_>>()?;
    Ok(cpu_amp::unscale_and_check(&mut slices, factor))
}

/// The CPU twin's Σ g² over f32 buffers.
fn cpu_sq_norm(grads: &[Flat]) -> Result<f64> {
    let reads: Vec<_> = grads.iter().map(Flat::read).collect();
    let slices: Vec<&[f32]> = reads
        .iter()
        .zip(grads)
        .map(|(r, f)| {
            let s = r.cpu("grad_norm")?.as_slice::<f32>("grad_norm")?;
            Ok(&s[f.offset..f.offset + f.len])
        })
        .collect::<Result<_>>()?;
    Ok(cpu_norm::sq_norm(&slices))
}

/// The f32 one-element `flag` set to `value` on the host.
fn cpu_set_flag(flag: Flat, value: f32) -> Result<()> {
    let mut w = flag.write();
    w.cpu_mut("flag")?.as_mut_slice::<f32>("flag")?[flag.offset] = value;
    Ok(())
}

impl Storage {
    /// One step of `h.rule` over `device`'s parameters in place, `state[j]` the rule's j-th
    /// state list; with `dirs`, each update direction is written there instead. Params and
    /// grads hold `E`, state and dirs f32; lists are parallel and checked by the caller.
    pub fn rule_step_<E: RuleElem + StorageElem>(
        device: Device,
        params: &[Flat],
        grads: &[Flat],
        dirs: Option<&[Flat]>,
        state: &[Vec<Flat>],
        h: &RuleStep,
    ) -> Result<()> {
        match device {
            Device::Cpu => {
                for (t, (p, g)) in params.iter().zip(grads).enumerate() {
                    let n = p.len;
                    let mut pw = p.write();
                    let gr = g.read();
                    let gs = &gr.cpu("rule_step")?.as_slice::<E>("rule_step")?[..n];
                    let mut sw: Vec<_> = state.iter().map(|l| l[t].write()).collect();
                    let mut dw = dirs.map(|d| d[t].write());
                    let slices = RuleSlices {
                        p: &mut pw.cpu_mut("rule_step")?.as_mut_slice::<E>("rule_step")?[..n],
                        g: gs,
                        state: sw
                            .iter_mut()
                            .zip(state)
                            .map(|(w, l)| f32_mut(w, &l[t]))
                            .collect::<Result<_>>()?,
                        dir: dw
                            .as_mut()
                            .zip(dirs)
                            .map(|(w, d)| f32_mut(w, &d[t]))
                            .transpose()?,
                    };
                    cpu_optim::rule_step(slices, h);
                }
                Ok(())
            }
            Device::Cuda(k) => {
                let (p, g) = (ptrs(params)?, ptrs(grads)?);
                let d = dirs.map(ptrs).transpose()?.unwrap_or_default();
                let s: Vec<Vec<u64>> = state.iter().map(|l| ptrs(l)).collect::<Result<_>>()?;
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
                let set = TensorSet {
                    params: &p,
                    grads: &g,
                    dirs: &d,
                    state: &s,
                    lens: &sizes,
                };
                let kernels = cuda::device(k)?;
                Ok(cuda_optim::rule_step::<E>(kernels.kernels(), &set, h, dev)?)
            }
        }
    }

    /// Multiplies every f32 buffer of `grads` on `device` by `inv_scale` in place; returns
    /// whether any held an inf or NaN (read back to the host).
    pub fn unscale_(device: Device, grads: &[Flat], inv_scale: f32) -> Result<bool> {
        match device {
            Device::Cpu => cpu_unscale(grads, inv_scale),
            Device::Cuda(k) => {
                let dev = cuda::device(k)?;
                let found = cuda_scalar(device, 0.0)?;
                let flag = cuda_ptr(&found, "unscale")?;
                cuda_amp::unscale_and_check(
                    dev.kernels(),
                    &ptrs(grads)?,
                    &lens(grads),
                    inv_scale,
                    flag,
                )?;
                let (f, _) = found.cast(&Layout::contiguous(&[1]), DType::F64)?;
                Ok(f.to_cpu()?.as_slice::<f64>("item")?[0] != 0.0)
            }
        }
    }

    /// Multiplies every f32 buffer of `grads` on `device` by the f32 at `inv_scale` in place,
    /// and sets the f32 at `found` to 1 when any held an inf or NaN (leaving it alone
    /// otherwise), without a host read on CUDA.
    pub fn unscale_by_(device: Device, grads: &[Flat], inv_scale: Flat, found: Flat) -> Result<()> {
        match device {
            Device::Cpu => {
                let factor =
                    inv_scale.read().cpu("to_vec")?.as_slice::<f32>("to_vec")?[inv_scale.offset];
                if cpu_unscale(grads, factor)? {
                    cpu_set_flag(found, 1.0)?;
                }
                Ok(())
            }
            Device::Cuda(k) => {
                let dev = cuda::device(k)?;
                let (inv, flag) = (inv_scale.ptr()?, found.ptr()?);
                cuda_amp::unscale_and_check_by(
                    dev.kernels(),
                    &ptrs(grads)?,
                    &lens(grads),
                    inv,
                    flag,
                )?;
                Ok(())
            }
        }
    }

    /// Sets the f32 `flag` to 0 (on CUDA on this thread's stream, so a graph captures it).
    pub fn clear_flag(flag: Flat) -> Result<()> {
        let device = flag.read().device();
        match device {
            Device::Cpu => cpu_set_flag(flag, 0.0),
            Device::Cuda(_) => cuda::copy::zero_f32(flag.read().cuda("flag")?, flag.offset),
        }
    }

    /// ema = decay·ema + (1-decay)·model for every pair of f32 buffers on `device`, in place.
    pub fn ema_(device: Device, ema: &[Flat], model: &[Flat], decay: f32) -> Result<()> {
        match device {
            Device::Cpu => {
                let mut guards: Vec<_> = ema.iter().map(Flat::write).collect();
                let mut slices: Vec<&mut [f32]> = guards
                    .iter_mut()
                    .zip(ema)
                    .map(|(g, f)| f32_mut(g, f))
                    .collect::<Result<_>>()?;
                let reads: Vec<_> = model.iter().map(Flat::read).collect();
                let srcs: Vec<&[f32]> = reads
                    .iter()
                    .zip(model)
                    .map(|(r, f)| {
                        Ok(&r.cpu("ema")?.as_slice::<f32>("ema")?[f.offset..f.offset + f.len])
                    })
                    .collect::<Result<_>>()?;
                cpu_amp::ema_update(&mut slices, &srcs, decay);
                Ok(())
            }
            Device::Cuda(k) => {
                let dev = cuda::device(k)?;
                let (e, m) = (ptrs(ema)?, ptrs(model)?);
                Ok(cuda_amp::ema_update(
                    dev.kernels(),
                    &e,
                    &m,
                    &lens(ema),
                    decay,
                )?)
            }
        }
    }

    /// Σ_t Σ g² over the f32 buffers of `grads` on `device` (CUDA's per-block partials are
    /// added on the host in f64).
    pub fn sq_norm(device: Device, grads: &[Flat]) -> Result<f64> {
        match device {
            Device::Cpu => cpu_sq_norm(grads),
            Device::Cuda(k) => {
                let sizes = lens(grads);
                let count = cuda_norm::partial_count(&sizes)?;
                if count == 0 {
                    return Ok(0.0);
                }
                let partial = Storage::full(device, DType::F32, count, 0.0)?;
                let out = cuda_ptr(&partial, "grad_norm")?;
                let dev = cuda::device(k)?;
                cuda_norm::sq_norm_partials(dev.kernels(), &ptrs(grads)?, &sizes, out)?;
                let host = partial.to_cpu()?;
                Ok(host
                    .as_slice::<f32>("to_vec")?
                    .iter()
                    .map(|&v| v as f64)
                    .sum())
            }
        }
    }

    /// Multiplies every f32 buffer of `grads` on `device` by `factor` in place (the unscale
    /// kernel, its inf/NaN flag unread).
    pub fn scale_(device: Device, grads: &[Flat], factor: f32) -> Result<()> {
        match device {
            Device::Cpu => cpu_unscale(grads, factor).map(drop),
            Device::Cuda(k) => {
                let dev = cuda::device(k)?;
                let unread = cuda_scalar(device, 0.0)?;
                let flag = cuda_ptr(&unread, "scale_grads")?;
                let p = ptrs(grads)?;
                Ok(cuda_amp::unscale_and_check(
                    dev.kernels(),
                    &p,
                    &lens(grads),
                    factor,
                    flag,
                )?)
            }
        }
    }

    /// Scales the f32 buffers of `grads` on `device` by max_norm / (norm + eps) when below 1:
    /// on CUDA without a host read (the factor computed on the device from the partials, added
    /// in f64 in the host's order), on the CPU from the host's norm.
    pub fn clip_grad_norm_(device: Device, grads: &[Flat], max_norm: f64, eps: f64) -> Result<()> {
        match device {
            Device::Cpu => {
                let factor = cpu_norm::clip_factor(cpu_sq_norm(grads)?.sqrt(), max_norm, eps);
                cpu_unscale(grads, factor).map(drop)
            }
            Device::Cuda(k) => {
                let sizes = lens(grads);
                let count = cuda_norm::partial_count(&sizes)?;
                if count == 0 {
                    return Ok(());
                }
                let dev = cuda::device(k)?;
                let partial = Storage::full(device, DType::F32, count, 0.0)?;
                let factor = cuda_scalar(device, 1.0)?;
                let unread = cuda_scalar(device, 0.0)?;
                let pp = cuda_ptr(&partial, "multi-tensor")?;
                let (fp, up) = (
                    cuda_ptr(&factor, "multi-tensor")?,
                    cuda_ptr(&unread, "multi-tensor")?,
                );
                let ptrs = ptrs(grads)?;
                let kernels = dev.kernels();
                cuda_norm::sq_norm_partials(kernels, &ptrs, &sizes, pp)?;
                cuda_norm::clip_factor(kernels, pp, count, max_norm, eps, fp)?;
                cuda_amp::unscale_and_check_by(kernels, &ptrs, &sizes, fp, up)?;
                Ok(())
            }
        }
    }
}
