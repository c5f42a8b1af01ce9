//! The storage dtypes of the tests that compare kernels with an f64 reference: each one's kernel
//! suffix and its rounding from and to f64, and the deterministic inputs those tests share.

use cudarc::driver::{DeviceRepr, ValidAsZeroBits};
use half::{bf16, f16};

/// A storage dtype: its kernel suffix and its conversions from and to f64.
pub trait Elem: DeviceRepr + ValidAsZeroBits + Default + Clone + Copy + Unpin {
    /// The launchers' dtype name ("f32", "f64", "f16", "bf16").
    const TY: &'static str;
    /// `v` rounded to this dtype.
    fn enc(v: f64) -> Self;
    /// The value, exactly, in f64.
    fn dec(self) -> f64;
    /// This dtype's entry of `per`.
    fn of<V: Copy>(per: &PerDtype<V>) -> V;
}

/// One value per storage dtype (a tolerance, say), picked with [`Elem::of`].
#[derive(Debug, Clone, Copy)]
pub struct PerDtype<V> {
    /// For f32.
    pub f32: V,
    /// For f64.
    pub f64: V,
    /// For f16.
    pub f16: V,
    /// For bf16.
    pub bf16: V,
}

/// `impl Elem for $t`, given how a value is rounded to `$t` and read back.
macro_rules! elem {
    ($t:ident, |$v:ident| $enc:expr, |$s:ident| $dec:expr) => {
        impl Elem for $t {
            const TY: &'static str = stringify!($t);
            fn enc($v: f64) -> Self {
                $enc
            }
            fn dec(self) -> f64 {
                let $s = self;
                $dec
            }
            fn of<V: Copy>(per: &PerDtype<V>) -> V {
                per.$t
            }
        }
    };
}

elem!(f32, |v| v as f32, |s| s as f64);
elem!(f64, |v| v, |s| s);
elem!(f16, |v| f16::from_f64(v), |s| s.to_f64());
elem!(bf16, |v| bf16::from_f64(v), |s| s.to_f64());

/// Deterministic values in [-1, 1] with three decimals.
pub fn values(len: usize, seed: usize) -> Vec<f64> {
    (0..len)
        .map(|i| ((i * 7919 + seed * 104_729) % 2001) as f64 / 1000.0 - 1.0)
        .collect()
}
