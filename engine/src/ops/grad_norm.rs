//! The global L2 norm of a list of gradients in one fused pass, and one multi-tensor scale: the
//! two halves of `torch.nn.utils.clip_grad_norm_`. Tensors are f32, dense from offset 0, on one
//! device; on CUDA each is one launch per 32 tensors.

use super::optim::{check_lists, cuda_kernels, device_ptrs, f32_mut, lens, scalar_ptr, write_all};
use crate::{DType, Device, Result, Tensor};
use kiln_kernels::cpu::{amp as cpu_amp, grad_norm as cpu_norm};
use kiln_kernels::cuda::{amp as cuda_amp, grad_norm as cuda_norm};

/// √(Σ_t Σ g²) over every tensor of `grads` (0 for none).
pub fn grad_norm(grads: &[Tensor]) -> Result<f64> {
    let Some(device) = check_lists("grad_norm", &[grads])? else {
        return Ok(0.0);
    };
    let sq = if let Device::Cuda(_) = device {
        let sizes = lens(grads);
        let count = cuda_norm::partial_count(&sizes)?;
        if count == 0 {
            return Ok(0.0);
        }
        let partial = Tensor::full_on(&[count], 0.0, DType::F32, device)?;
        let out = partial.storage().cuda("grad_norm")?.ptr();
        let dev = cuda_kernels(device)?;
        cuda_norm::sq_norm_partials(dev.kernels(), &device_ptrs(grads)?, &sizes, out)?;
        partial.to_vec_f32()?.iter().map(|&v| v as f64).sum()
    } else {
        let reads: Vec<_> = grads.iter().map(|t| t.storage()).collect();
        let slices: Vec<&[f32]> = reads
            .iter()
            .zip(grads)
            .map(|(r, t)| Ok(&r.cpu("grad_norm")?.as_slice::<f32>("grad_norm")?[..t.numel()]))
            .collect::<Result<_>>()?;
        cpu_norm::sq_norm(&slices)
    };
    Ok(sq.sqrt())
}

/// Multiplies every tensor of `grads` by `factor` in place (the unscale kernel of loss scaling,
/// whose inf/NaN flag is not read).
pub fn scale_grads_(grads: &[Tensor], factor: f32) -> Result<()> {
    let Some(device) = check_lists("scale_grads", &[grads])? else {
        return Ok(());
    };
    if let Device::Cuda(_) = device {
        let dev = cuda_kernels(device)?;
        let unread = Tensor::full_on(&[1], 0.0, DType::F32, device)?;
        let flag = unread.storage().cuda("scale_grads")?.ptr();
        let ptrs = device_ptrs(grads)?;
        return Ok(cuda_amp::unscale_and_check(
            dev.kernels(),
            &ptrs,
            &lens(grads),
            factor,
            flag,
        )?);
    }
    let mut guards = write_all(grads);
    let mut slices: Vec<&mut [f32]> = guards
        .iter_mut()
        .zip(grads)
        .map(|(g, t)| f32_mut(g, t.numel()))
        .collect::<Result<_>>()?;
    cpu_amp::unscale_and_check(&mut slices, factor);
    Ok(())
}

/// `clip_grad_norm_` without reading anything on the host, for a CUDA graph: the global norm's
/// partials, the factor max_norm / (norm + eps) when below 1 (else 1) computed on the device
/// with the bits of the host's path (partials added in f64 in the same order), and one
/// multi-tensor scale by it. On the CPU, the host path.
pub fn clip_grad_norm_on_device_(grads: &[Tensor], max_norm: f64, eps: f64) -> Result<()> {
    let Some(device) = check_lists("clip_grad_norm", &[grads])? else {
        return Ok(());
    };
    if let Device::Cpu = device {
        let factor = cpu_norm::clip_factor(grad_norm(grads)?, max_norm, eps);
        return scale_grads_(grads, factor);
    }
    let sizes = lens(grads);
    let count = cuda_norm::partial_count(&sizes)?;
    if count == 0 {
        return Ok(());
    }
    let dev = cuda_kernels(device)?;
    let partial = Tensor::full_on(&[count], 0.0, DType::F32, device)?;
    let factor = Tensor::full_on(&[1], 1.0, DType::F32, device)?;
    let unread = Tensor::full_on(&[1], 0.0, DType::F32, device)?;
    let (pp, fp) = (scalar_ptr(&partial)?, scalar_ptr(&factor)?);
    let ptrs = device_ptrs(grads)?;
    let k = dev.kernels();
    cuda_norm::sq_norm_partials(k, &ptrs, &sizes, pp)?;
    cuda_norm::clip_factor(k, pp, count, max_norm, eps, fp)?;
    cuda_amp::unscale_and_check_by(k, &ptrs, &sizes, fp, scalar_ptr(&unread)?)?;
    Ok(())
}
