//! Python's `random.Random(seed)`, draw for draw: mt19937 seeded by `init_by_array` of the
//! seed's 32-bit words (least significant first), `random()` as 53 bits from two draws,
//! `getrandbits(k)` for k ≤ 32 as a draw's top k bits, and `randint` by rejection over
//! `getrandbits(bit_length)` (CPython's `_randbelow_with_getrandbits`). timm's kron optimizer
//! draws its balance coin and its deterministic seeds from one.

use super::mt19937::Mt19937;

/// `random.Random(seed)` for a non-negative integer seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyRandom {
    engine: Mt19937,
}

impl PyRandom {
    /// `random.Random(seed)` (CPython seeds with `abs(seed)`'s words; the seed here is ≥ 0).
    pub fn new(seed: u128) -> Self {
        let mut key = Vec::new();
        let mut rest = seed;
        while rest > 0 {
            key.push(rest as u32);
            rest >>= 32;
        }
        PyRandom {
            engine: Mt19937::from_key(&key),
        }
    }

    /// A generator in the state `engine` holds (a restored checkpoint).
    pub fn from_engine(engine: Mt19937) -> Self {
        PyRandom { engine }
    }

    /// The engine, for checkpoints.
    pub fn engine(&self) -> &Mt19937 {
        &self.engine
    }

    /// `random()`: a uniform double in [0, 1) from 27 + 26 bits of two draws.
    pub fn random(&mut self) -> f64 {
        let a = f64::from(self.engine.next_u32() >> 5);
        let b = f64::from(self.engine.next_u32() >> 6);
        (a * 67_108_864.0 + b) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `getrandbits(k)` for 0 ≤ k ≤ 32: the top k bits of one draw (none drawn for k = 0).
    pub fn getrandbits(&mut self, k: u32) -> u32 {
        match k {
            0 => 0,
            1..=32 => self.engine.next_u32() >> (32 - k),
            _ => panic!("getrandbits({k}): kiln's twin draws at most 32 bits"),
        }
    }

    /// `randint(a, b)` for `b - a < 2^32`: `a` plus a rejection-sampled draw below `b - a + 1`.
    pub fn randint(&mut self, a: u64, b: u64) -> u64 {
        let n = b - a + 1;
        let k = u64::BITS - n.leading_zeros();
        assert!(
            k <= 32,
            "randint({a}, {b}): kiln's twin spans at most 2^32 values"
        );
        loop {
            let r = u64::from(self.getrandbits(k));
            if r < n {
                return a + r;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PyRandom;

    /// `[random.Random(s).randint(a, b) for _ in range(n)]` from CPython 3.11, for seeds of one
    /// and two 32-bit words.
    #[test]
    fn randint_matches_cpython() {
        let draws = |seed: u128, a: u64, b: u64, n: usize| {
            let mut r = PyRandom::new(seed);
            (0..n).map(|_| r.randint(a, b)).collect::<Vec<_>>()
        };
        assert_eq!(draws(42, 0, 9, 8), [1, 0, 4, 3, 3, 2, 1, 8]);
        assert_eq!(draws(0, 0, 1000, 6), [864, 394, 776, 911, 430, 41]);
        assert_eq!(
            draws(1 << 40 | 7, 3, 70_000, 4),
            [62383, 32881, 16616, 67742]
        );
    }
}
