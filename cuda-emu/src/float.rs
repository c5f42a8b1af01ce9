//! Float formats as raw bits: conversion through f64, PTX rounding modes, ftz and sat.

use half::{bf16, f16};

/// A floating-point storage format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
    /// IEEE single.
    F32,
    /// IEEE double.
    F64,
}

/// PTX rounding modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rnd {
    /// To nearest, ties to even (the default).
    Rn,
    /// Toward zero.
    Rz,
    /// Toward minus infinity.
    Rm,
    /// Toward plus infinity.
    Rp,
}

impl Fmt {
    /// Width in bits.
    pub fn bits(self) -> u32 {
        match self {
            Fmt::F16 | Fmt::Bf16 => 16,
            Fmt::F32 => 32,
            Fmt::F64 => 64,
        }
    }

    /// The value of `bits` (low bits used).
    pub fn to_f64(self, bits: u64) -> f64 {
        match self {
            Fmt::F16 => f16::from_bits(bits as u16).to_f64(),
            Fmt::Bf16 => bf16::from_bits(bits as u16).to_f64(),
            Fmt::F32 => f64::from(f32::from_bits(bits as u32)),
            Fmt::F64 => f64::from_bits(bits),
        }
    }

    /// `v` rounded to nearest-even in this format.
    pub fn from_f64(self, v: f64) -> u64 {
        match self {
            Fmt::F16 => u64::from(f16::from_f64(v).to_bits()),
            Fmt::Bf16 => u64::from(bf16::from_f64(v).to_bits()),
            Fmt::F32 => u64::from((v as f32).to_bits()),
            Fmt::F64 => v.to_bits(),
        }
    }

    /// Rounds the exact value `hi + lo` (with `|lo|` tiny against `hi`) by `rnd`.
    pub fn round(self, hi: f64, lo: f64, rnd: Rnd) -> u64 {
        let r = self.from_f64(hi);
        let rv = self.to_f64(r);
        if rnd == Rnd::Rn || rv.is_nan() || hi.is_infinite() {
            return r;
        }
        let d = (hi - rv) + lo;
        let up = match rnd {
            Rnd::Rm if d < 0.0 => false,
            Rnd::Rp if d > 0.0 => true,
            Rnd::Rz if rv > 0.0 && d < 0.0 => false,
            Rnd::Rz if rv < 0.0 && d > 0.0 => true,
            _ => return r,
        };
        self.step(r, up)
    }

    /// The next representable value above (`up`) or below `bits`.
    fn step(self, bits: u64, up: bool) -> u64 {
        let sign = 1u64 << (self.bits() - 1);
        let mag = bits & (sign - 1);
        let neg = bits & sign != 0;
        if mag == 0 {
            return if up { 1 } else { sign | 1 };
        }
        if neg == up {
            bits - 1
        } else {
            bits + 1
        }
    }

    /// Flushes a subnormal to zero of the same sign.
    pub fn ftz(self, bits: u64) -> u64 {
        let (exp_mask, sign) = match self {
            Fmt::F16 => (0x7c00, 0x8000),
            Fmt::Bf16 => (0x7f80, 0x8000),
            Fmt::F32 => (0x7f80_0000, 0x8000_0000),
            Fmt::F64 => (0x7ff0_0000_0000_0000, 1 << 63),
        };
        if bits & exp_mask == 0 {
            bits & sign
        } else {
            bits
        }
    }
}

/// `.sat` for floats: clamps to [0, 1], NaN to 0.
pub fn saturate(v: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(0.0, 1.0)
    }
}

/// Exact error of `a + b`: returns (sum, error) with `sum + error == a + b`.
pub fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directed_rounding_of_an_inexact_sum() {
        // 1 + 2^-30 is not an f32: it lies between 1 and the next f32 up.
        let (hi, lo) = two_sum(1.0, 2f64.powi(-30));
        let up = u64::from(1.0f32.to_bits()) + 1;
        let one = u64::from(1.0f32.to_bits());
        assert_eq!(Fmt::F32.round(hi, lo, Rnd::Rn), one);
        assert_eq!(Fmt::F32.round(hi, lo, Rnd::Rz), one);
        assert_eq!(Fmt::F32.round(hi, lo, Rnd::Rm), one);
        assert_eq!(Fmt::F32.round(hi, lo, Rnd::Rp), up);
        let neg_one = u64::from((-1.0f32).to_bits());
        assert_eq!(
            Fmt::F32.round(-hi, -lo, Rnd::Rm),
            u64::from((-1.0f32).to_bits()) + 1
        );
        assert_eq!(Fmt::F32.round(-hi, -lo, Rnd::Rz), neg_one);
    }

    #[test]
    fn halves_round_to_nearest_even_and_flush() {
        assert_eq!(Fmt::F16.from_f64(1.0 + 2f64.powi(-11)), 0x3c00);
        assert_eq!(Fmt::F16.round(1.0 + 2f64.powi(-12), 0.0, Rnd::Rp), 0x3c01);
        assert_eq!(Fmt::Bf16.from_f64(1.0), 0x3f80);
        assert_eq!(Fmt::F32.ftz(1), 0);
        assert_eq!(Fmt::F32.ftz(0x8000_0001), 0x8000_0000);
        assert_eq!(saturate(f64::NAN), 0.0);
        assert_eq!(saturate(-3.0), 0.0);
    }
}
