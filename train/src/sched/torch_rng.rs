//! PyTorch's CPU generator (`torch.Generator()` on the CPU), bit for bit: the mt19937 engine, and
//! the transforms `torch.randn(1)` and `torch.rand(1)` apply to it, so timm's lr noise (drawn from
//! a generator seeded with `seed + t`) comes out as timm's.
//!
//! The references are ATen's `core/MT19937RNGEngine.h` (engine), `CPUGeneratorImpl` (`random64`
//! joins two draws, the first as the high word) and `core/DistributionsHelper.h`: a uniform double
//! takes the low 53 bits of `random64`, a uniform float the low 24 bits of one draw, and a normal
//! is Box–Muller over two uniform doubles, `r = sqrt(-2 log1p(-u2))`, returning `r cos(2πu1)` and
//! caching `r sin(2πu1)` for the next normal draw. Tensors of fewer than 16 elements take this
//! serial path; `randn(1)` then rounds the double to the tensor's f32. f32 tensors of 16 elements
//! and more take `DistributionKernels.cpp`'s `normal_fill_AVX2` instead (the venv's torch runs it
//! on this AVX512 machine; the fixture shows it by its f32 angle): one uniform float per element,
//! Box–Muller in f32 over blocks of 16 (the first 8 as `1 − u` under the log, the last 8 as the
//! angle), and a tail block redrawn and recomputed over the last 16 elements.

use super::mt19937::Mt19937;

/// `torch.Generator()` (CPU) after `manual_seed(seed)`.
#[derive(Debug, Clone)]
pub struct TorchGenerator {
    engine: Mt19937,
    /// The second Box–Muller value, returned by the next normal draw.
    cached_normal: Option<f64>,
}

impl TorchGenerator {
    /// A generator after `torch.Generator().manual_seed(seed)` (the engine sees the low 32 bits).
    pub fn new(seed: u64) -> Self {
        TorchGenerator {
            engine: Mt19937::from_u32(seed as u32),
            cached_normal: None,
        }
    }

    /// A generator in a saved state: its engine and the cached second normal.
    pub fn from_state(engine: Mt19937, cached_normal: Option<f64>) -> Self {
        TorchGenerator {
            engine,
            cached_normal,
        }
    }

    /// The engine and the cached second normal, for checkpoints.
    pub fn state(&self) -> (&Mt19937, Option<f64>) {
        (&self.engine, self.cached_normal)
    }

    /// The engine's next 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        self.engine.next_u32()
    }

    /// ATen's `random64`: two draws, the first in the high word.
    fn next_u64(&mut self) -> u64 {
        let hi = u64::from(self.next_u32());
        let lo = u64::from(self.next_u32());
        (hi << 32) | lo
    }

    /// A uniform double in [0, 1) (`uniform_real_distribution<double>`).
    fn uniform_f64(&mut self) -> f64 {
        const MASK: u64 = (1 << 53) - 1;
        (self.next_u64() & MASK) as f64 / (1u64 << 53) as f64
    }

    /// A uniform float in [0, 1) (`uniform_real_distribution<float>`): the low 24 bits of a draw.
    fn uniform_f32(&mut self) -> f32 {
        const MASK: u32 = (1 << 24) - 1;
        (self.next_u32() & MASK) as f32 / (1u32 << 24) as f32
    }

    /// `torch.randn(1, generator=g).item()`: a standard normal, rounded to f32.
    pub fn randn(&mut self) -> f64 {
        let z = match self.cached_normal.take() {
            Some(z) => z,
            None => {
                let u1 = self.uniform_f64();
                let u2 = self.uniform_f64();
                let r = (-2.0 * (-u2).ln_1p()).sqrt();
                let theta = 2.0 * std::f64::consts::PI * u1;
                self.cached_normal = Some(r * theta.sin());
                r * theta.cos()
            }
        };
        f64::from(z as f32)
    }

    /// `torch.rand(1, generator=g).item()`: a uniform f32 in [0, 1), the low 24 bits of one draw.
    pub fn rand(&mut self) -> f64 {
        f64::from(self.uniform_f32())
    }

    /// `torch.randn(n, generator=g)` in f32 (contiguous): the serial path below 16 elements,
    /// `normal_fill` from 16 on.
    pub fn randn_f32(&mut self, n: usize) -> Vec<f32> {
        if n < 16 {
            return (0..n).map(|_| self.randn() as f32).collect();
        }
        let mut data: Vec<f32> = (0..n).map(|_| self.uniform_f32()).collect();
        data.chunks_exact_mut(16).for_each(normal_fill_16);
        if !n.is_multiple_of(16) {
            let tail = &mut data[n - 16..];
            tail.iter_mut().for_each(|v| *v = self.uniform_f32());
            normal_fill_16(tail);
        }
        data
    }
}

/// ATen's `normal_fill_16_AVX2` (mean 0, std 1): uniforms in, eight Box–Muller pairs out, all
/// in f32 (the angle as `f32(2π)·u`). ATen's vector log and sincos (avx_mathfun's) are within an
/// ulp of these.
fn normal_fill_16(block: &mut [f32]) {
    const TWO_PI: f32 = 2.0 * std::f32::consts::PI;
    for j in 0..8 {
        let u1 = 1.0 - block[j];
        let u2 = block[j + 8];
        let radius = (-2.0 * u1.ln()).sqrt();
        let theta = TWO_PI * u2;
        block[j] = radius * theta.cos();
        block[j + 8] = radius * theta.sin();
    }
}
