//! Python's `random.Random` (MT19937) as far as webdataset's shuffles use it: seeding from a
//! non-negative integer and `randint`, bit for bit, so kiln's shard and sample orders are the ones
//! timm's `reader_wds` draws from the same seeds.

const N: usize = 624;
const M: usize = 397;

/// A Mersenne Twister seeded and drawn from as CPython's `random.Random` is.
#[derive(Debug, Clone)]
pub struct PyRandom {
    mt: [u32; N],
    index: usize,
}

impl PyRandom {
    /// `random.Random(seed)`: CPython's `init_by_array` over the 32-bit words of `seed`, low
    /// word first (`[0]` for zero).
    pub fn new(seed: u64) -> Self {
        let mut key = vec![seed as u32];
        if seed >> 32 != 0 {
            key.push((seed >> 32) as u32);
        }
        let mut r = PyRandom::genrand(19_650_218);
        let mt = &mut r.mt;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            (i, j) = (i + 1, j + 1);
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        r
    }

    /// `init_genrand(s)`.
    fn genrand(s: u32) -> Self {
        let mut mt = [0u32; N];
        mt[0] = s;
        for i in 1..N {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        PyRandom { mt, index: N }
    }

    /// The next 32-bit output (`genrand_uint32`).
    fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        for k in 0..N {
            let y = (self.mt[k] & UPPER) | (self.mt[(k + 1) % N] & LOWER);
            let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
            self.mt[k] = self.mt[(k + M) % N] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }

    /// `getrandbits(k)` for 1 ≤ k ≤ 32.
    fn bits(&mut self, k: u32) -> u32 {
        self.next_u32() >> (32 - k)
    }

    /// `randint(a, b)`: uniform in `a..=b` by `_randbelow_with_getrandbits` (rejection sampling
    /// on `bit_length(b - a + 1)` bits). `b - a` must be below 2³².
    pub fn randint(&mut self, a: usize, b: usize) -> usize {
        let n = (b - a + 1) as u64;
        let k = 64 - n.leading_zeros();
        loop {
            let r = u64::from(self.bits(k));
            if r < n {
                return a + r as usize;
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
    fn matches_cpython() {
        let mut r = PyRandom::new(42);
        let got: Vec<usize> = (0..8).map(|_| r.randint(0, 9)).collect();
        assert_eq!(got, [1, 0, 4, 3, 3, 2, 1, 8]);
        let mut r = PyRandom::new(0);
        let got: Vec<usize> = (0..6).map(|_| r.randint(0, 1000)).collect();
        assert_eq!(got, [864, 394, 776, 911, 430, 41]);
        let mut r = PyRandom::new(1 << 40 | 7);
        let got: Vec<usize> = (0..4).map(|_| r.randint(3, 70_000)).collect();
        assert_eq!(got, [62383, 32881, 16616, 67742]);
    }
}
