//! PyTorch's CPU generator (`torch.Generator()` on the CPU), bit for bit: the mt19937 engine, and
//! the transforms `torch.randn(1)` and `torch.rand(1)` apply to it, so timm's lr noise (drawn from
//! a generator seeded with `seed + t`) comes out as timm's.
//!
//! The references are ATen's `core/MT19937RNGEngine.h` (engine), `CPUGeneratorImpl` (`random64`
//! joins two draws, the first as the high word) and `core/DistributionsHelper.h`: a uniform double
//! takes the low 53 bits of `random64`, a uniform float the low 24 bits of one draw, and a normal
//! is Box–Muller over two uniform doubles, `r = sqrt(-2 log1p(-u2))`, returning `r cos(2πu1)` and
//! caching `r sin(2πu1)` for the next normal draw. Tensors of fewer than 16 elements take this
//! serial path; `randn(1)` then rounds the double to the tensor's f32.

/// The Mersenne Twister's state length.
const N: usize = 624;
/// The twist's middle offset.
const M: usize = 397;

/// `torch.Generator()` (CPU) after `manual_seed(seed)`.
#[derive(Debug, Clone)]
pub struct TorchGenerator {
    state: [u32; N],
    /// Next state word to temper; `N` means the state must be twisted first.
    next: usize,
    /// The second Box–Muller value, returned by the next normal draw.
    cached_normal: Option<f64>,
}

impl TorchGenerator {
    /// A generator after `torch.Generator().manual_seed(seed)` (the engine sees the low 32 bits).
    pub fn new(seed: u64) -> Self {
        let mut state = [0u32; N];
        state[0] = seed as u32;
        for j in 1..N {
            let prev = state[j - 1];
            state[j] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(j as u32);
        }
        TorchGenerator {
            state,
            next: N,
            cached_normal: None,
        }
    }

    /// The engine's next 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.next >= N {
            self.twist();
        }
        let mut y = self.state[self.next];
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// Regenerates the whole state (the standard mt19937 recurrence).
    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        for i in 0..N {
            let y = (self.state[i] & UPPER) | (self.state[(i + 1) % N] & LOWER);
            let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
            self.state[i] = self.state[(i + M) % N] ^ (y >> 1) ^ mag;
        }
        self.next = 0;
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
        const MASK: u32 = (1 << 24) - 1;
        f64::from((self.next_u32() & MASK) as f32 / (1u32 << 24) as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::TorchGenerator;

    /// The 10000th output of mt19937 seeded with 5489 is 4123659995 (C++11's check value).
    #[test]
    fn mt19937_check_value() {
        let mut g = TorchGenerator::new(5489);
        let last = (0..10_000).map(|_| g.next_u32()).last();
        assert_eq!(last, Some(4_123_659_995));
    }
}
