//! The Mersenne Twister (mt19937) both of kiln's generator twins run on: PyTorch's CPU generator
//! seeds it with `init_genrand` (a 32-bit seed), Python's `random.Random` with `init_by_array`
//! (the seed's 32-bit words). Twist and tempering are the reference ones.

/// The state length.
const N: usize = 624;
/// The twist's middle offset.
const M: usize = 397;

/// An mt19937 engine: its state and the next word to temper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mt19937 {
    state: [u32; N],
    /// Next state word to temper; `N` means the state must be twisted first.
    next: usize,
}

impl Mt19937 {
    /// `init_genrand(seed)`: the linear seeding of the reference (C++'s `std::mt19937(seed)`).
    pub fn from_u32(seed: u32) -> Self {
        let mut state = [0u32; N];
        state[0] = seed;
        for j in 1..N {
            let prev = state[j - 1];
            state[j] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(j as u32);
        }
        Mt19937 { state, next: N }
    }

    /// `init_by_array(key)`: the reference's seeding from many words (Python's `random.seed`).
    pub fn from_key(key: &[u32]) -> Self {
        let key = if key.is_empty() { &[0u32][..] } else { key };
        let mut mt = Self::from_u32(19_650_218).state;
        let mix = |mt: &[u32; N], i: usize, mul: u32| {
            let prev = mt[i - 1];
            mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(mul)
        };
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            mt[i] = mix(&mt, i, 1_664_525)
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            (i, j) = (i + 1, (j + 1) % key.len());
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        for _ in 0..N - 1 {
            mt[i] = mix(&mt, i, 1_566_083_941).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        Mt19937 { state: mt, next: N }
    }

    /// The next 32-bit output.
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

    /// Regenerates the whole state (the standard recurrence).
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

    /// The state words and the position, as a checkpoint keeps them.
    pub fn words(&self) -> (Vec<u32>, usize) {
        (self.state.to_vec(), self.next)
    }

    /// The engine `words` described; none when the words are not a state.
    pub fn from_words(words: &[u32], next: usize) -> Option<Self> {
        let state: [u32; N] = words.try_into().ok()?;
        (next <= N).then_some(Mt19937 { state, next })
    }
}

#[cfg(test)]
mod tests {
    use super::Mt19937;

    /// The 10000th output of mt19937 seeded with 5489 is 4123659995 (C++11's check value).
    #[test]
    fn mt19937_check_value() {
        let mut g = Mt19937::from_u32(5489);
        let last = (0..10_000).map(|_| g.next_u32()).last();
        assert_eq!(last, Some(4_123_659_995));
    }

    /// The reference mt19937ar.c, `init_by_array({0x123, 0x234, 0x345, 0x456})`: its first
    /// outputs are 1067595299 955945823 477289528.
    #[test]
    fn init_by_array_reference_outputs() {
        let mut g = Mt19937::from_key(&[0x123, 0x234, 0x345, 0x456]);
        let first: Vec<u32> = (0..3).map(|_| g.next_u32()).collect();
        assert_eq!(first, [1_067_595_299, 955_945_823, 477_289_528]);
    }
}
