//! A gradient bucket staged in host memory for MPI: the packed gradients (`send`) and the sums
//! MPI writes (`recv`), both kept from one update to the next, so a step neither allocates nor
//! page-faults 2 × the gradients' bytes, and each gradient is read once to pack and written once
//! to unpack (the average's division fused into that write).

use crate::Result;
use kiln_engine::{no_grad, DType, Device, Storage, Tensor};

/// One bucket's host buffers.
#[derive(Debug, Default)]
pub struct HostBucket {
    /// This rank's gradients, flat, in the bucket's parameter order.
    pub send: Vec<f32>,
    /// The all-reduced values (written by MPI).
    pub recv: Vec<f32>,
    /// What `recv` is divided by on unpacking (the world size for an average, else 1).
    pub divide_by: usize,
}

impl HostBucket {
    /// Buffers for `len` floats (allocated on first use, then reused).
    pub fn with_len(len: usize) -> HostBucket {
        HostBucket {
            send: vec![0.0; len],
            recv: vec![0.0; len],
            divide_by: 1,
        }
    }

    /// A bucket holding the flat f32 tensor `flat` (any device).
    pub fn from_tensor(flat: &Tensor) -> Result<HostBucket> {
        let send = flat.to_vec_f32()?;
        Ok(HostBucket {
            recv: vec![0.0; send.len()],
            send,
            divide_by: 1,
        })
    }

    /// Copies the gradients of `params` into `send` (zeros where a parameter has none).
    pub fn pack(&mut self, params: &[Tensor]) -> Result<()> {
        let mut at = 0;
        for p in params {
            let dst = &mut self.send[at..at + p.numel()];
            match p.grad() {
                Some(g) => copy_values(&g, dst)?,
                None => dst.fill(0.0),
            }
            at += p.numel();
        }
        Ok(())
    }

    /// The reduced values as a flat f32 tensor on `device`.
    pub fn to_tensor(&self, device: Device) -> Result<Tensor> {
        let values: Vec<f32> = self.reduced(0..self.recv.len()).collect();
        Ok(Tensor::from_vec(values, &[self.recv.len()])?.to_device(device)?)
    }

    /// Sets each parameter's gradient to its slice of the reduced values, in the gradient's
    /// dtype and on the parameter's device.
    pub fn unpack(&self, params: &[Tensor]) -> Result<()> {
        let _no_grad = no_grad();
        let mut at = 0;
        for p in params {
            let n = p.numel();
            let values: Vec<f32> = self.reduced(at..at + n).collect();
            let dtype = p.grad().map_or(p.dtype(), |g| g.dtype());
            let g = Tensor::from_vec(values, p.shape())?
                .to_dtype(dtype)?
                .to_device(p.device())?;
            p.set_grad(Some(g));
            at += n;
        }
        Ok(())
    }

    fn reduced(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = f32> + '_ {
        let n = self.divide_by as f32;
        self.recv[range].iter().map(move |v| v / n)
    }
}

/// `t`'s elements in row-major order as f32 into `dst`: straight from the storage for a
/// contiguous f32 host tensor, else through a converted copy.
fn copy_values(t: &Tensor, dst: &mut [f32]) -> Result<()> {
    if t.dtype() == DType::F32 && t.is_contiguous() {
        if let Storage::Cpu(s) = &*t.storage() {
            let start = t.layout().offset();
            dst.copy_from_slice(&s.as_slice::<f32>("ddp pack")?[start..start + dst.len()]);
            return Ok(());
        }
    }
    dst.copy_from_slice(&t.to_vec_f32()?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_then_unpack_averages_each_gradient_into_its_own_shape() {
        let a = Tensor::zeros(&[2, 3], DType::F32).unwrap();
        let b = Tensor::zeros(&[2, 2], DType::F32).unwrap();
        let c = Tensor::zeros(&[1], DType::F32).unwrap();
        let grad_a: Vec<f32> = (0..6).map(|i| i as f32).collect();
        a.set_grad(Some(Tensor::from_vec(grad_a, &[2, 3]).unwrap()));
        // A transposed (non-contiguous) gradient goes through the converted copy.
        let grad_b = Tensor::from_vec(vec![10.0f32, 11.0, 12.0, 13.0], &[2, 2]).unwrap();
        b.set_grad(Some(grad_b.transpose(0, 1).unwrap()));
        let params = [a.clone(), b.clone(), c.clone()];

        let mut bucket = HostBucket::with_len(11);
        bucket.pack(&params).unwrap();
        assert_eq!(
            bucket.send,
            [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 12.0, 11.0, 13.0, 0.0]
        );
        bucket.recv = bucket.send.iter().map(|v| 3.0 * v).collect();
        bucket.divide_by = 2;
        bucket.unpack(&params).unwrap();
        let grad = |t: &Tensor| t.grad().unwrap().to_vec::<f32>().unwrap();
        assert_eq!(grad(&a), [0.0, 1.5, 3.0, 4.5, 6.0, 7.5]);
        assert_eq!(a.grad().unwrap().shape(), [2, 3]);
        assert_eq!(grad(&b), [15.0, 18.0, 16.5, 19.5]);
        assert_eq!(grad(&c), [0.0]);
    }
}
