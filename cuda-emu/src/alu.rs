//! Value semantics of PTX arithmetic on raw register bits: integers, floats (with rounding,
//! ftz and sat), packed halves, comparisons, conversions and bit manipulation.

use crate::float::{saturate, two_sum, Fmt, Rnd};
use crate::program::{AtomOp, CarryOp, Cmp, FloatOp, IntOp, UnOp};
use crate::ty::{mask, sext, Ty};

/// The float format and lane count of a float type.
pub fn lanes(ty: Ty) -> (Fmt, u32) {
    match ty {
        Ty::F16 => (Fmt::F16, 1),
        Ty::F16x2 => (Fmt::F16, 2),
        Ty::Bf16 => (Fmt::Bf16, 1),
        Ty::Bf16x2 => (Fmt::Bf16, 2),
        Ty::F64 => (Fmt::F64, 1),
        _ => (Fmt::F32, 1),
    }
}

/// Applies `f` to each lane of packed operands.
fn per_lane(ty: Ty, a: u64, b: u64, c: u64, f: impl Fn(Fmt, u64, u64, u64) -> u64) -> u64 {
    let (fmt, n) = lanes(ty);
    let w = fmt.bits();
    (0..n).fold(0, |out, l| {
        let sh = l * w;
        let m = mask(w);
        out | (f(fmt, (a >> sh) & m, (b >> sh) & m, (c >> sh) & m) & m) << sh
    })
}

fn finish(fmt: Fmt, r: u64, ftz: bool, sat: bool) -> u64 {
    let r = if sat {
        fmt.from_f64(saturate(fmt.to_f64(r)))
    } else {
        r
    };
    if ftz {
        fmt.ftz(r)
    } else {
        r
    }
}

fn flush(fmt: Fmt, x: u64, ftz: bool) -> f64 {
    fmt.to_f64(if ftz { fmt.ftz(x) } else { x })
}

/// Float min/max with PTX's NaN rule (a NaN operand yields the other) and -0 < +0.
fn min_max(fmt: Fmt, x: u64, y: u64, max: bool) -> u64 {
    let (a, b) = (fmt.to_f64(x), fmt.to_f64(y));
    match (a.is_nan(), b.is_nan()) {
        (true, true) => fmt.from_f64(f64::NAN),
        (true, false) => y,
        (false, true) => x,
        _ if a == b => {
            let a_neg = a.is_sign_negative();
            if a_neg == max {
                y
            } else {
                x
            }
        }
        _ if (a < b) != max => x,
        _ => y,
    }
}

/// A float binary op on every lane.
pub fn float_op(op: FloatOp, ty: Ty, rnd: Rnd, ftz: bool, sat: bool, a: u64, b: u64) -> u64 {
    if ty == Ty::F32 && rnd == Rnd::Rn && !ftz && !sat {
        let (x, y) = (f32::from_bits(a as u32), f32::from_bits(b as u32));
        let r = match op {
            FloatOp::Add => Some(x + y),
            FloatOp::Sub => Some(x - y),
            FloatOp::Mul => Some(x * y),
            FloatOp::Div => Some(x / y),
            _ => None,
        };
        if let Some(r) = r {
            return u64::from(r.to_bits());
        }
    }
    per_lane(ty, a, b, 0, |fmt, x, y, _| {
        let (xa, ya) = (flush(fmt, x, ftz), flush(fmt, y, ftz));
        let (hi, lo) = match op {
            FloatOp::Add => two_sum(xa, ya),
            FloatOp::Sub => two_sum(xa, -ya),
            FloatOp::Mul if fmt == Fmt::F64 => {
                let p = xa * ya;
                (p, xa.mul_add(ya, -p))
            }
            FloatOp::Mul => (xa * ya, 0.0),
            FloatOp::Div if fmt == Fmt::F64 => {
                // The residual a - q*b is exact with an fma; its sign (over b's) is the error's.
                let q = xa / ya;
                (q, (-q).mul_add(ya, xa) / ya)
            }
            FloatOp::Div => (xa / ya, 0.0),
            FloatOp::Min | FloatOp::Max => {
                let r = min_max(fmt, x, y, op == FloatOp::Max);
                return finish(fmt, r, ftz, sat);
            }
            FloatOp::Copysign => (ya.abs().copysign(xa), 0.0),
        };
        finish(fmt, fmt.round(hi, lo, rnd), ftz, sat)
    })
}

/// Fused multiply-add `a * b + c` on every lane, rounded once.
pub fn fma(ty: Ty, rnd: Rnd, ftz: bool, sat: bool, a: u64, b: u64, c: u64) -> u64 {
    if ty == Ty::F32 && rnd == Rnd::Rn && !ftz && !sat {
        let f = |v: u64| f32::from_bits(v as u32);
        return u64::from(f(a).mul_add(f(b), f(c)).to_bits());
    }
    per_lane(ty, a, b, c, |fmt, x, y, z| {
        let (xa, ya, za) = (flush(fmt, x, ftz), flush(fmt, y, ftz), flush(fmt, z, ftz));
        let r = match (fmt, rnd) {
            (Fmt::F64, _) => xa.mul_add(ya, za).to_bits(),
            (Fmt::F32, Rnd::Rn) => u64::from((xa as f32).mul_add(ya as f32, za as f32).to_bits()),
            _ => {
                let (hi, lo) = two_sum(xa * ya, za);
                fmt.round(hi, lo, rnd)
            }
        };
        finish(fmt, r, ftz, sat)
    })
}

/// An integer or bitwise binary op.
pub fn int_op(op: IntOp, ty: Ty, sat: bool, a: u64, b: u64) -> u64 {
    let w = ty.bits();
    let m = mask(w);
    let (ua, ub) = (a & m, b & m);
    let (sa, sb) = (sext(a, w), sext(b, w));
    let signed = ty.is_signed();
    match op {
        IntOp::Add | IntOp::Sub if sat && signed => {
            let r = if op == IntOp::Add {
                i128::from(sa) + i128::from(sb)
            } else {
                i128::from(sa) - i128::from(sb)
            };
            let lim = 1i128 << (w - 1);
            r.clamp(-lim, lim - 1) as u64 & m
        }
        IntOp::Add => ua.wrapping_add(ub) & m,
        IntOp::Sub => ua.wrapping_sub(ub) & m,
        IntOp::MulLo => ua.wrapping_mul(ub) & m,
        IntOp::MulHi if signed => ((i128::from(sa) * i128::from(sb)) >> w) as u64 & m,
        IntOp::MulHi => ((u128::from(ua) * u128::from(ub)) >> w) as u64 & m,
        IntOp::MulWide if signed => (i128::from(sa) * i128::from(sb)) as u64 & mask(2 * w),
        IntOp::MulWide => (u128::from(ua) * u128::from(ub)) as u64 & mask(2 * w),
        IntOp::Div if ub == 0 => m,
        IntOp::Div if signed => sa.wrapping_div(sb) as u64 & m,
        IntOp::Div => ua / ub,
        IntOp::Rem if ub == 0 => ua,
        IntOp::Rem if signed => sa.wrapping_rem(sb) as u64 & m,
        IntOp::Rem => ua % ub,
        IntOp::Min if signed => sa.min(sb) as u64 & m,
        IntOp::Min => ua.min(ub),
        IntOp::Max if signed => sa.max(sb) as u64 & m,
        IntOp::Max => ua.max(ub),
        IntOp::And => ua & ub,
        IntOp::Or => ua | ub,
        IntOp::Xor => ua ^ ub,
        IntOp::Shl => {
            let n = b & 0xffff_ffff;
            if n >= u64::from(w) {
                0
            } else {
                (ua << n) & m
            }
        }
        IntOp::Shr => {
            let n = b & 0xffff_ffff;
            if signed {
                (sa >> n.min(63)) as u64 & m
            } else if n >= u64::from(w) {
                0
            } else {
                ua >> n
            }
        }
    }
}

/// A unary op (integer or float by type).
pub fn unary(op: UnOp, ty: Ty, ftz: bool, rnd: Rnd, a: u64) -> u64 {
    if ty.is_float() {
        return per_lane(ty, a, 0, 0, |fmt, x, _, _| {
            float_unary(op, fmt, ftz, rnd, x)
        });
    }
    let w = ty.bits();
    let m = mask(w);
    let ua = a & m;
    match op {
        UnOp::Abs => sext(a, w).wrapping_abs() as u64 & m,
        UnOp::Neg => ua.wrapping_neg() & m,
        UnOp::Not => !ua & m,
        UnOp::Cnot => u64::from(ua == 0),
        UnOp::Popc => u64::from(ua.count_ones()),
        UnOp::Clz => u64::from(ua.leading_zeros() - (64 - w)),
        UnOp::Brev => ua.reverse_bits() >> (64 - w),
        UnOp::Bfind(shiftamt) => {
            let v = if ty.is_signed() && sext(a, w) < 0 {
                !ua & m
            } else {
                ua
            };
            match v {
                0 => 0xffff_ffff,
                _ => {
                    let pos = 63 - u64::from(v.leading_zeros());
                    if shiftamt {
                        u64::from(w) - 1 - pos
                    } else {
                        pos
                    }
                }
            }
        }
        _ => ua,
    }
}

/// A float unary op; directed rounding (f16/bf16/f32 only) rounds the f64 result.
fn float_unary(op: UnOp, fmt: Fmt, ftz: bool, rnd: Rnd, x: u64) -> u64 {
    let sign = 1u64 << (fmt.bits() - 1);
    let x = if ftz { fmt.ftz(x) } else { x };
    let v = fmt.to_f64(x);
    let r = match op {
        UnOp::Abs => return x & !sign,
        UnOp::Neg => return x ^ sign,
        UnOp::Sqrt => v.sqrt(),
        UnOp::Rsqrt => 1.0 / v.sqrt(),
        UnOp::Rcp => 1.0 / v,
        UnOp::Ex2 => v.exp2(),
        UnOp::Lg2 => v.log2(),
        UnOp::Sin => v.sin(),
        UnOp::Cos => v.cos(),
        UnOp::Tanh => v.tanh(),
        _ => v,
    };
    finish(fmt, fmt.round(r, 0.0, rnd), ftz, false)
}

/// `setp` comparison.
pub fn compare(cmp: Cmp, unordered: bool, ty: Ty, ftz: bool, a: u64, b: u64) -> bool {
    if ty.is_float() {
        let (fmt, _) = lanes(ty);
        let (x, y) = (
            flush(fmt, a & mask(fmt.bits()), ftz),
            flush(fmt, b & mask(fmt.bits()), ftz),
        );
        let nan = x.is_nan() || y.is_nan();
        return match cmp {
            Cmp::Num => !nan,
            Cmp::Nan => nan,
            _ if nan => unordered,
            _ => ordered(cmp, x.partial_cmp(&y).expect("not NaN")),
        };
    }
    let w = ty.bits();
    let ord = if ty.is_signed() {
        sext(a, w).cmp(&sext(b, w))
    } else {
        (a & mask(w)).cmp(&(b & mask(w)))
    };
    ordered(cmp, ord)
}

fn ordered(cmp: Cmp, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match cmp {
        Cmp::Eq => o == Equal,
        Cmp::Ne => o != Equal,
        Cmp::Lt => o == Less,
        Cmp::Le => o != Greater,
        Cmp::Gt => o == Greater,
        Cmp::Ge => o != Less,
        Cmp::Num | Cmp::Nan => false,
    }
}

fn int_range(ty: Ty) -> (i128, i128) {
    let w = ty.bits();
    if ty.is_signed() {
        (-(1i128 << (w - 1)), (1i128 << (w - 1)) - 1)
    } else {
        (0, (1i128 << w) - 1)
    }
}

/// `cvt` between any two scalar types.
pub fn convert(dst: Ty, src: Ty, rnd: Rnd, int_rnd: bool, sat: bool, ftz: bool, a: u64) -> u64 {
    let value = if src.is_float() {
        let (fs, _) = lanes(src);
        Ok(flush(fs, a & mask(fs.bits()), ftz))
    } else if src.is_signed() {
        Err(i128::from(sext(a, src.bits())))
    } else {
        Err(i128::from(a & mask(src.bits())))
    };
    match (value, dst.is_float()) {
        (Ok(v), true) => {
            let fd = lanes(dst).0;
            let r = if int_rnd {
                fd.from_f64(round_int(v, rnd))
            } else {
                fd.round(v, 0.0, rnd)
            };
            finish(fd, r, ftz, sat)
        }
        (Ok(v), false) => {
            let (lo, hi) = int_range(dst);
            if v.is_nan() {
                0
            } else {
                (round_int(v, rnd) as i128).clamp(lo, hi) as u64 & dst.mask()
            }
        }
        (Err(i), true) => {
            let fd = lanes(dst).0;
            let r = match (fd, rnd) {
                (Fmt::F32, Rnd::Rn) => u64::from((i as f32).to_bits()),
                (Fmt::F64, Rnd::Rn) => (i as f64).to_bits(),
                _ => {
                    let hi = i as f64;
                    fd.round(hi, (i - hi as i128) as f64, rnd)
                }
            };
            finish(fd, r, false, sat)
        }
        (Err(i), false) => {
            let (lo, hi) = int_range(dst);
            let v = (if sat { i.clamp(lo, hi) } else { i }) as u64 & dst.mask();
            // An s8/s16 result is sign-extended to the (possibly wider) register.
            if dst.is_signed() && dst.bits() < 32 {
                sext(v, dst.bits()) as u64 & 0xffff_ffff
            } else {
                v
            }
        }
    }
}

fn round_int(v: f64, rnd: Rnd) -> f64 {
    match rnd {
        Rnd::Rn => v.round_ties_even(),
        Rnd::Rz => v.trunc(),
        Rnd::Rm => v.floor(),
        Rnd::Rp => v.ceil(),
    }
}

/// `bfe`: extracts `len` bits from `pos`, sign-filling for signed types.
pub fn bfe(ty: Ty, a: u64, pos: u64, len: u64) -> u64 {
    let w = u64::from(ty.bits());
    let (pos, len) = (pos & 0xff, len & 0xff);
    let m = ty.mask();
    if len == 0 {
        return 0;
    }
    let field = if pos >= w { 0 } else { (a & m) >> pos };
    let field = field & mask(len.min(64) as u32);
    let sbit = ty.is_signed() && {
        let top = (pos + len - 1).min(w - 1);
        (a >> top) & 1 == 1
    };
    if sbit && len < w {
        (field | (m & !mask(len as u32))) & m
    } else {
        field
    }
}

/// `bfi`: inserts the low `len` bits of `a` into `b` at `pos`.
pub fn bfi(ty: Ty, a: u64, b: u64, pos: u64, len: u64) -> u64 {
    let w = u64::from(ty.bits());
    let (pos, len) = (pos & 0xff, len & 0xff);
    if len == 0 || pos >= w {
        return b & ty.mask();
    }
    let fm = mask(len.min(w - pos) as u32) << pos;
    ((b & !fm) | ((a << pos) & fm)) & ty.mask()
}

/// `prmt.b32` in the default mode.
pub fn prmt(a: u64, b: u64, sel: u64) -> u64 {
    let bytes = ((b & 0xffff_ffff) << 32) | (a & 0xffff_ffff);
    (0..4).fold(0, |out, i| {
        let s = (sel >> (4 * i)) & 0xf;
        let byte = (bytes >> (8 * (s & 7))) & 0xff;
        let byte = if s & 8 != 0 {
            if byte & 0x80 != 0 {
                0xff
            } else {
                0
            }
        } else {
            byte
        };
        out | byte << (8 * i)
    })
}

/// `shf.{l,r}.{wrap,clamp}.b32`: funnel shift of `b:a` by `n`.
pub fn shf(left: bool, clamp: bool, a: u64, b: u64, n: u64) -> u64 {
    let n = if clamp {
        (n & 0xffff_ffff).min(32)
    } else {
        n & 31
    };
    let both = ((b & 0xffff_ffff) << 32) | (a & 0xffff_ffff);
    if left {
        ((both << n) >> 32) & 0xffff_ffff
    } else {
        (both >> n) & 0xffff_ffff
    }
}

/// The new value of an atomic location holding `old`.
pub fn atom(op: AtomOp, ty: Ty, old: u64, b: u64, c: u64) -> u64 {
    let m = ty.mask();
    match op {
        AtomOp::Add if ty.is_float() => float_op(FloatOp::Add, ty, Rnd::Rn, false, false, old, b),
        AtomOp::Min if ty.is_float() => float_op(FloatOp::Min, ty, Rnd::Rn, false, false, old, b),
        AtomOp::Max if ty.is_float() => float_op(FloatOp::Max, ty, Rnd::Rn, false, false, old, b),
        AtomOp::Add => int_op(IntOp::Add, ty, false, old, b),
        AtomOp::Min => int_op(IntOp::Min, ty, false, old, b),
        AtomOp::Max => int_op(IntOp::Max, ty, false, old, b),
        AtomOp::And => old & b & m,
        AtomOp::Or => (old | b) & m,
        AtomOp::Xor => (old ^ b) & m,
        AtomOp::Exch => b & m,
        AtomOp::Cas => {
            if old & m == b & m {
                c & m
            } else {
                old & m
            }
        }
        AtomOp::Inc => {
            if old & m >= b & m {
                0
            } else {
                (old + 1) & m
            }
        }
        AtomOp::Dec => {
            if old & m == 0 || old & m > b & m {
                b & m
            } else {
                (old - 1) & m
            }
        }
    }
}

/// Extended-precision arithmetic: returns (result, carry or borrow out).
pub fn carry(op: CarryOp, ty: Ty, a: u64, b: u64, c: u64, cin: u64) -> (u64, u64) {
    let w = ty.bits();
    let m = mask(w);
    let (ua, ub, uc) = (i128::from(a & m), i128::from(b & m), i128::from(c & m));
    let cin = i128::from(cin & 1);
    let r = match op {
        CarryOp::Add => ua + ub + cin,
        CarryOp::Sub => ua - ub - cin,
        CarryOp::MadLo | CarryOp::MadHi => {
            let p = if ty.is_signed() {
                i128::from(sext(a, w)) * i128::from(sext(b, w))
            } else {
                ua * ub
            };
            let part = if op == CarryOp::MadHi {
                (p >> w) & i128::from(m)
            } else {
                p & i128::from(m)
            };
            part + uc + cin
        }
    };
    let out = if op == CarryOp::Sub {
        u64::from(r < 0)
    } else {
        ((r >> w) & 1) as u64
    };
    (r as u64 & m, out)
}

/// `lop3`: each result bit is bit `(a << 2) | (b << 1) | c` of `lut`.
pub fn lop3(a: u64, b: u64, c: u64, lut: u64) -> u64 {
    (0..8).filter(|i| lut >> i & 1 == 1).fold(0, |d, i| {
        let pick = |v: u64, bit: u32| if i >> bit & 1 == 1 { v } else { !v };
        d | (pick(a, 2) & pick(b, 1) & pick(c, 0))
    }) & 0xffff_ffff
}

/// `dp4a`: the dot product of the four bytes of `a` and `b`, plus `c`.
pub fn dp4a(a_signed: bool, b_signed: bool, a: u64, b: u64, c: u64) -> u64 {
    let byte = |v: u64, k: u32, signed: bool| {
        let x = (v >> (8 * k)) & 0xff;
        if signed {
            sext(x, 8)
        } else {
            x as i64
        }
    };
    let dot: i64 = (0..4)
        .map(|k| byte(a, k, a_signed) * byte(b, k, b_signed))
        .sum();
    (dot + sext(c, 32)) as u64 & 0xffff_ffff
}

/// `testp`: classifies a float (kinds as in [`crate::program::Op::Testp`]).
pub fn testp(kind: u8, ty: Ty, a: u64) -> bool {
    let (fmt, _) = lanes(ty);
    let v = fmt.to_f64(a & mask(fmt.bits()));
    let subnormal = v != 0.0 && fmt.ftz(a & mask(fmt.bits())) != a & mask(fmt.bits());
    match kind {
        0 => v.is_finite(),
        1 => v.is_infinite(),
        2 => !v.is_nan(),
        3 => v.is_nan(),
        4 => v.is_finite() && v != 0.0 && !subnormal,
        _ => subnormal,
    }
}
