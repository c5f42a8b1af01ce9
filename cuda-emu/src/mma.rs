//! `mma.sync.aligned.m16n8k{16,8}.row.col.f32.{f16,bf16}.{f16,bf16}.f32`: the warp's fragments
//! gathered into A (16×K), B (K×8) and C (16×8) as the PTX ISA's "Matrix Fragments for
//! mma.m16n8k16 / mma.m16n8k8" tables place them, D = A·B + C, scattered back into the lanes.
//!
//! Accumulation order (the ISA leaves it unspecified): each D element starts from C and adds the
//! K products in increasing k, each step `acc = fma(a, b, acc)` in f32, i.e. the exact product
//! (f16·f16 and bf16·bf16 fit in f32's significand; fma also keeps bf16 products that would
//! underflow or overflow f32) plus the accumulator, rounded once to nearest even. Subnormal inputs
//! and outputs are kept, NaN and infinity propagate as IEEE arithmetic gives them.

use crate::program::Arg;
use crate::thread::{BlockCtx, Thread};

/// M and N of the two shapes.
const M: usize = 16;
const N: usize = 8;

/// Lane `lane`'s groupID and threadID_in_group.
fn group(lane: usize) -> (usize, usize) {
    (lane >> 2, lane % 4)
}

/// (row, column) in A of element `i` (two per `.b32` register, low half first) of a lane.
fn a_at(lane: usize, i: usize) -> (usize, usize) {
    let (g, t) = group(lane);
    let row = if (i >> 1) & 1 == 0 { g } else { g + 8 };
    (row, 2 * t + (i & 1) + 8 * (i >> 2))
}

/// (row k, column n) in B of element `i` of a lane.
fn b_at(lane: usize, i: usize) -> (usize, usize) {
    let (g, t) = group(lane);
    (2 * t + (i & 1) + 8 * (i >> 1), g)
}

/// (row, column) in C and D of element `i` (one per `.f32` register) of a lane.
fn c_at(lane: usize, i: usize) -> (usize, usize) {
    let (g, t) = group(lane);
    (g + 8 * (i >> 1), 2 * t + (i & 1))
}

/// A 16-bit float's value in f32 (exact for both formats).
fn widen(bits: u16, bf16: bool) -> f32 {
    if bf16 {
        f32::from_bits(u32::from(bits) << 16)
    } else {
        half::f16::from_bits(bits).to_f32()
    }
}

/// The `.b32` registers of vector operand `arg` of one lane.
fn regs(t: &Thread, arg: &Arg, cx: &BlockCtx<'_>) -> Vec<u64> {
    match arg {
        Arg::Vec(v) => v.iter().map(|a| t.get(a, cx)).collect(),
        _ => Vec::new(),
    }
}

/// Runs one `mma` (K = `k`) for the 32 lanes of `warp`; `args` are d, a, b, c.
pub fn mma(cx: &BlockCtx<'_>, warp: &mut [Thread], args: &[Arg], k: usize, bf16: bool) {
    let mut a = vec![[0f32; 16]; M];
    let mut b = vec![[0f32; N]; k];
    let mut c = [[0f32; N]; M];
    for (lane, t) in warp.iter().enumerate() {
        let halves = |arg: &Arg| {
            regs(t, arg, cx)
                .into_iter()
                .flat_map(|r| [r as u16, (r >> 16) as u16])
                .map(|h| widen(h, bf16))
                .collect::<Vec<f32>>()
        };
        for (i, v) in halves(&args[1]).into_iter().enumerate() {
            let (r, col) = a_at(lane, i);
            a[r][col] = v;
        }
        for (i, v) in halves(&args[2]).into_iter().enumerate() {
            let (r, col) = b_at(lane, i);
            b[r][col] = v;
        }
        for (i, v) in regs(t, &args[3], cx).into_iter().enumerate() {
            let (r, col) = c_at(lane, i);
            c[r][col] = f32::from_bits(v as u32);
        }
    }
    for (lane, t) in warp.iter_mut().enumerate() {
        let Arg::Vec(d) = &args[0] else { return };
        for (i, dst) in d.iter().enumerate() {
            let (r, col) = c_at(lane, i);
            let v = (0..k).fold(c[r][col], |acc, kk| a[r][kk].mul_add(b[kk][col], acc));
            t.set(dst, u64::from(v.to_bits()));
        }
    }
}
