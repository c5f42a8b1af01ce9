//! Seeded random streams: every sample, batch and epoch gets its own, derived from a tuple of ids.
use rand::SeedableRng;

/// The random generator every transform draws from (ChaCha8: reproducible across platforms).
pub type AugRng = rand_chacha::ChaCha8Rng;

/// A generator seeded from `parts` (e.g. seed, epoch, rank, sample index) by SplitMix64 mixing,
/// so nearby tuples give unrelated streams.
pub fn derive_rng(parts: &[u64]) -> AugRng {
    let mut h = 0x9E37_79B9_7F4A_7C15u64;
    for &p in parts {
        h = splitmix(h ^ splitmix(p));
    }
    AugRng::seed_from_u64(h)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
