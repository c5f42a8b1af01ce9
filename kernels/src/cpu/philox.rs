//! Philox4x32-10, the counter-based generator both backends use, so a seed gives the same
//! dropout masks and initial weights on CPU and GPU. Twin of `cuda/rng.cu`.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Four 32-bit random words for `counter` under `key` (10 rounds).
#[inline]
pub fn philox4x32(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut ctr, mut k) = (counter, key);
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let p0 = (M0 as u64) * (ctr[0] as u64);
        let p1 = (M1 as u64) * (ctr[2] as u64);
        ctr = [
            ((p1 >> 32) as u32) ^ ctr[1] ^ k[0],
            p1 as u32,
            ((p0 >> 32) as u32) ^ ctr[3] ^ k[1],
            p0 as u32,
        ];
    }
    ctr
}

/// Element `i`'s 32 random bits in the stream of (`seed`, `offset`): element i uses word i % 4
/// of block i / 4, so any element can be drawn independently (as a GPU thread does).
#[inline]
pub fn bits(seed: u64, offset: u64, i: u64) -> u32 {
    let block = offset + i / 4;
    let words = philox4x32(
        [block as u32, (block >> 32) as u32, 0, 0],
        [seed as u32, (seed >> 32) as u32],
    );
    words[(i % 4) as usize]
}

/// A uniform float in [0, 1) from 32 random bits (24 significant bits, as curand).
#[inline]
pub fn uniform(bits: u32) -> f64 {
    (bits >> 8) as f64 * (1.0 / (1u64 << 24) as f64)
}

/// A standard normal for element `i` (Box-Muller over two uniforms from elements 2i, 2i+1).
/// The radius's uniform is 1 − u, in (0, 1]: a u of 0 (one draw in 2²⁴) would otherwise become
/// the smallest positive double and a 37σ outlier; this way no draw lies beyond √(48·ln 2) =
/// 5.77σ, which a normal exceeds once in 10⁸ draws.
#[inline]
pub fn normal(seed: u64, offset: u64, i: u64) -> f64 {
    let u1 = 1.0 - uniform(bits(seed, offset, 2 * i));
    let u2 = uniform(bits(seed, offset, 2 * i + 1));
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The draws whose radius uniform is 0 (one in 2²⁴) stay within the 5.77σ bound: the first
    /// few such draws of a stream, found by scanning it.
    #[test]
    fn a_zero_uniform_gives_a_bounded_normal() {
        let zero_radius = (0..1u64 << 27).filter(|&i| uniform(bits(7, 0, 2 * i)) == 0.0);
        let found: Vec<f64> = zero_radius.take(3).map(|i| normal(7, 0, i)).collect();
        assert!(!found.is_empty(), "no zero uniform in the first 2^27 pairs");
        let bound = (48.0 * std::f64::consts::LN_2).sqrt();
        for z in found {
            assert!(z.abs() <= bound, "a normal of {z}");
        }
    }

    /// Known-answer vectors from the Random123 distribution (kat_vectors, philox4x32_10).
    #[test]
    fn philox_matches_random123_known_answers() {
        assert_eq!(
            philox4x32([0, 0, 0, 0], [0, 0]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32([0xffffffff; 4], [0xffffffff; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }
}
