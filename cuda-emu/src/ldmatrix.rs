//! `ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{.trans}{.shared{::cta}}.b16`: loads one, two or four
//! 8×8 matrices of 16-bit elements from shared memory, rows addressed by the lanes as the PTX
//! ISA maps them (lanes 8i..8i+7 give rows 0..7 of matrix i; the other lanes' addresses are
//! unused), and hands lane l, in its register i, the pair (row l/4, columns 2(l%4), 2(l%4)+1) of
//! matrix i, low half first; with `.trans`, the pair (rows 2(l%4), 2(l%4)+1, column l/4).

use crate::error::FaultKind;
use crate::program::{Arg, SHARED_WINDOW, WINDOW_SIZE};
use crate::ptx::ast::Space;
use crate::thread::{fault, BlockCtx, Fault, Thread};

/// Bytes in one row: eight `.b16` elements.
const ROW: u64 = 16;

/// Reads the eight elements of the row lane `t` addresses (16-byte aligned, in shared memory).
fn row(t: &mut Thread, cx: &mut BlockCtx<'_>, space: Space, addr: u64) -> Result<[u16; 8], Fault> {
    if !addr.is_multiple_of(ROW) {
        let d = format!("ldmatrix row address {addr:#x} is not 16-byte aligned");
        return Err(fault(FaultKind::Misaligned, d));
    }
    let window = SHARED_WINDOW..SHARED_WINDOW + WINDOW_SIZE;
    let shared = match space {
        Space::Generic if window.contains(&addr) => addr - SHARED_WINDOW,
        Space::Generic => {
            let d = format!("ldmatrix generic address {addr:#x} is not shared memory");
            return Err(fault(FaultKind::OutOfBounds, d));
        }
        _ => addr,
    };
    let mut out = [0u16; 8];
    for half in 0..2 {
        let v = t.load(cx, Space::Shared, shared + 8 * half, 8, 8)?;
        for e in 0..4 {
            out[4 * half as usize + e] = (v >> (16 * e)) as u16;
        }
    }
    Ok(out)
}

/// Runs one `ldmatrix` of `n` matrices for the 32 lanes of `warp`; `args` are the destination
/// vector and the address. A fault comes with the lane whose row address caused it.
pub fn ldmatrix(
    cx: &mut BlockCtx<'_>,
    warp: &mut [Thread],
    args: &[Arg],
    n: usize,
    trans: bool,
    space: Space,
) -> Result<(), (usize, Fault)> {
    let mut m = vec![[[0u16; 8]; 8]; n];
    for (lane, t) in warp.iter_mut().enumerate().take(8 * n) {
        let addr = t.addr(&args[1]);
        m[lane / 8][lane % 8] = row(t, cx, space, addr).map_err(|f| (lane, f))?;
    }
    let Arg::Vec(dst) = &args[0] else {
        return Ok(());
    };
    for (lane, t) in warp.iter_mut().enumerate() {
        let (g, c) = (lane / 4, 2 * (lane % 4));
        for (i, d) in dst.iter().enumerate() {
            let (lo, hi) = if trans {
                (m[i][c][g], m[i][c + 1][g])
            } else {
                (m[i][g][c], m[i][g][c + 1])
            };
            t.set(d, u64::from(lo) | u64::from(hi) << 16);
        }
    }
    Ok(())
}
