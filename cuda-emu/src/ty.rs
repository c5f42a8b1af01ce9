//! PTX scalar types and their bit widths.

/// A PTX scalar (or packed pair) type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// Untyped bits, `.b8` .. `.b128`; the width in bits.
    B(u8),
    /// Unsigned integer of the given width.
    U(u8),
    /// Signed integer of the given width.
    S(u8),
    /// IEEE half.
    F16,
    /// Two packed halves.
    F16x2,
    /// bfloat16.
    Bf16,
    /// Two packed bfloat16.
    Bf16x2,
    /// IEEE single.
    F32,
    /// IEEE double.
    F64,
    /// A predicate.
    Pred,
}

impl Ty {
    /// Parses a type name without the dot (`u32`, `f16x2`).
    pub fn parse(s: &str) -> Option<Ty> {
        Some(match s {
            "f16" => Ty::F16,
            "f16x2" => Ty::F16x2,
            "bf16" => Ty::Bf16,
            "bf16x2" => Ty::Bf16x2,
            "f32" => Ty::F32,
            "f64" => Ty::F64,
            "pred" => Ty::Pred,
            _ => {
                let bits: u8 = s.get(1..)?.parse().ok()?;
                if !matches!(bits, 8 | 16 | 32 | 64 | 128) {
                    return None;
                }
                match s.as_bytes()[0] {
                    b'b' => Ty::B(bits),
                    b'u' => Ty::U(bits),
                    b's' => Ty::S(bits),
                    _ => return None,
                }
            }
        })
    }

    /// Width in bits (1 for predicates).
    pub fn bits(self) -> u32 {
        match self {
            Ty::B(b) | Ty::U(b) | Ty::S(b) => u32::from(b),
            Ty::F16 | Ty::Bf16 => 16,
            Ty::F16x2 | Ty::Bf16x2 | Ty::F32 => 32,
            Ty::F64 => 64,
            Ty::Pred => 1,
        }
    }

    /// Width in bytes in memory.
    pub fn bytes(self) -> u32 {
        self.bits().div_ceil(8)
    }

    /// Signed integer type.
    pub fn is_signed(self) -> bool {
        matches!(self, Ty::S(_))
    }

    /// Any floating-point type, packed or not.
    pub fn is_float(self) -> bool {
        matches!(
            self,
            Ty::F16 | Ty::F16x2 | Ty::Bf16 | Ty::Bf16x2 | Ty::F32 | Ty::F64
        )
    }

    /// Mask of the low `bits()` bits.
    pub fn mask(self) -> u64 {
        mask(self.bits())
    }
}

/// Mask of the low `bits` bits.
pub fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Sign-extends the low `bits` bits of `v`.
pub fn sext(v: u64, bits: u32) -> i64 {
    if bits >= 64 {
        v as i64
    } else {
        let sh = 64 - bits;
        ((v << sh) as i64) >> sh
    }
}
