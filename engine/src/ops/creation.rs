//! Tensor creation: constants, ranges and Philox random numbers.

use crate::cpu::elementwise::cast;
use crate::{CpuStorage, DType, Device, Layout, Result, Storage, Tensor};
use kiln_kernels::cpu::philox;
use rayon::prelude::*;

impl Tensor {
    /// A tensor of `shape` filled with `value`.
    pub fn full(shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
        Tensor::full_on(shape, value, dtype, Device::Cpu)
    }

    /// A tensor of `shape` filled with `value`, on `device`.
    pub fn full_on(shape: &[usize], value: f64, dtype: DType, device: Device) -> Result<Tensor> {
        Tensor::full_laid_out(Layout::contiguous(shape), value, dtype, device)
    }

    /// A tensor under the dense `layout` (offset 0) filled with `value`, on `device`.
    pub(crate) fn full_laid_out(
        layout: Layout,
        value: f64,
        dtype: DType,
        device: Device,
    ) -> Result<Tensor> {
        let storage = Storage::full(device, dtype, layout.numel(), value)?;
        Ok(Tensor::plain(storage, layout))
    }

    /// Zeros.
    pub fn zeros(shape: &[usize], dtype: DType) -> Result<Tensor> {
        Tensor::full(shape, 0.0, dtype)
    }

    /// Ones.
    pub fn ones(shape: &[usize], dtype: DType) -> Result<Tensor> {
        Tensor::full(shape, 1.0, dtype)
    }

    /// Zeros with this tensor's shape, dtype and device.
    pub fn zeros_like(t: &Tensor) -> Result<Tensor> {
        Tensor::full_on(t.shape(), 0.0, t.dtype(), t.device())
    }

    /// Ones with this tensor's shape, dtype and device.
    pub fn ones_like(t: &Tensor) -> Result<Tensor> {
        Tensor::full_on(t.shape(), 1.0, t.dtype(), t.device())
    }

    /// start, start+step, ... up to (excluding) end, as a 1-d tensor.
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
        let n = if step == 0.0 {
            0
        } else {
            ((end - start) / step).ceil().max(0.0) as usize
        };
        let v: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
        let l = Layout::contiguous(&[n]);
        let (s, l) = cast(&CpuStorage::F64(v), &l, dtype)?;
        Ok(Tensor::plain(Storage::Cpu(s), l))
    }

    /// Uniform [0, 1) numbers from the Philox stream of `seed`.
    pub fn rand(shape: &[usize], dtype: DType, seed: u64) -> Result<Tensor> {
        Generator::new(seed).uniform(shape, 0.0, 1.0, dtype)
    }

    /// Standard normal numbers from the Philox stream of `seed`.
    pub fn randn(shape: &[usize], dtype: DType, seed: u64) -> Result<Tensor> {
        Generator::new(seed).normal(shape, 0.0, 1.0, dtype)
    }
}

/// A Philox4x32-10 stream: a seed and an offset that advances with every draw, so successive
/// draws differ and the same seed replays the same sequence on any backend.
#[derive(Debug, Clone)]
pub struct Generator {
    seed: u64,
    offset: u64,
}

impl Generator {
    /// A stream starting at offset 0.
    pub fn new(seed: u64) -> Generator {
        Generator { seed, offset: 0 }
    }

    /// A stream resumed at `offset` (as saved from [`Generator::offset`]).
    pub fn resume(seed: u64, offset: u64) -> Generator {
        Generator { seed, offset }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The current offset (in Philox blocks).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reserves `words` random words and returns the offset where they start.
    pub fn advance(&mut self, words: u64) -> u64 {
        let start = self.offset;
        self.offset += words.div_ceil(4);
        start
    }

    fn fill(
        &mut self,
        shape: &[usize],
        dtype: DType,
        words_per: u64,
        f: impl Fn(u64, u64, u64) -> f64 + Sync,
    ) -> Result<Tensor> {
        let l = Layout::contiguous(shape);
        let (seed, offset) = (self.seed, self.advance(words_per * l.numel() as u64));
        let v: Vec<f64> = (0..l.numel() as u64)
            .into_par_iter()
            .map(|i| f(seed, offset, i))
            .collect();
        let (s, l) = cast(&CpuStorage::F64(v), &l, dtype)?;
        Ok(Tensor::plain(Storage::Cpu(s), l))
    }

    /// Uniform numbers in [lo, hi).
    pub fn uniform(&mut self, shape: &[usize], lo: f64, hi: f64, dtype: DType) -> Result<Tensor> {
        self.fill(shape, dtype, 1, |s, o, i| {
            lo + (hi - lo) * philox::uniform(philox::bits(s, o, i))
        })
    }

    /// Normal numbers with `mean` and `std`.
    pub fn normal(&mut self, shape: &[usize], mean: f64, std: f64, dtype: DType) -> Result<Tensor> {
        self.fill(shape, dtype, 2, |s, o, i| {
            mean + std * philox::normal(s, o, i)
        })
    }

    /// Normal numbers with `mean` and `std`, redrawn until inside [lo, hi] (timm's trunc_normal_).
    pub fn trunc_normal(
        &mut self,
        shape: &[usize],
        mean: f64,
        std: f64,
        lo: f64,
        hi: f64,
        dtype: DType,
    ) -> Result<Tensor> {
        self.fill(shape, dtype, 64, |s, o, i| {
            (0..32)
                .map(|k| mean + std * philox::normal(s, o, i * 32 + k))
                .find(|v| (lo..=hi).contains(v))
                .unwrap_or(mean.clamp(lo, hi))
        })
    }
}
