//! gemm_tc.cu (tensor cores through mma.sync, ldmatrix and a 3-stage cp.async pipeline) against
//! an f64 reference on the rounded inputs: edge tiles in m, n and k, one row, k = 0, k spanning
//! many pipeline stages, 16-byte copies and register gathers, both dtypes; against gemm.cu's SIMT
//! tiles on 256³; and the dtypes the launcher refuses. Strided, transposed and broadcast operands
//! run through tests/gemm.rs's harness.

mod common;
use common::elem::{values, Elem};
use common::gpu;
use half::{bf16, f16};
use kiln_kernels::cuda::gemm::{gemm_tiled, GemmArgs, Tile};
use kiln_kernels::cuda::gemm_tc::{gemm_tc, gemm_tc_tiled, stagings};

/// Dense row-major A [m, k], B [k, n] and C [m, n] at `a`, `b`, `c`.
fn dense(m: usize, n: usize, k: usize, a: u64, b: u64, c: u64) -> GemmArgs {
    GemmArgs {
        batch: 1,
        m,
        n,
        k,
        a,
        a_strides: [m * k, k, 1],
        b,
        b_strides: [k * n, n, 1],
        c,
        c_strides: [m * n, n, 1],
        alpha: 1.0,
        beta: 0.0,
    }
}

/// `v` rounded to the 16-bit float `T`: the rounded values (exactly, in f64) and their `bits`.
fn rounded<T: Elem>(v: Vec<f64>, bits: fn(T) -> u16) -> (Vec<f64>, Vec<u16>) {
    let r: Vec<T> = v.into_iter().map(T::enc).collect();
    (
        r.iter().map(|&x| x.dec()).collect(),
        r.iter().map(|&x| bits(x)).collect(),
    )
}

/// Runs one m×n×k product of `ty` in both tensor-core tiles and checks every element of C against Σ a·b in f64: within
/// f32 accumulation's error bound (k roundings of at most 2^-24 of the running |sum|) plus one
/// rounding to `ty` (2^-11 relative for f16, 2^-8 for bf16). k and n multiples of 8 make both
/// operands come through 16-byte copies; the others are gathered.
fn check(ty: &str, m: usize, n: usize, k: usize) {
    let Some(g) = gpu() else { return };
    let kern = g.kernels();
    // Round through the dtype so the reference multiplies exactly the stored values.
    let (a, b) = (values(m * k, 1), values(k * n, 2));
    let ((a, a_bits), (b, b_bits)) = if ty == "f16" {
        (rounded(a, f16::to_bits), rounded(b, f16::to_bits))
    } else {
        (rounded(a, bf16::to_bits), rounded(b, bf16::to_bits))
    };
    let (da, db) = (g.upload(&a_bits), g.upload(&b_bits));
    let nan = if ty == "f16" { 0x7e00u16 } else { 0x7fc0 };
    let mut dc = g.upload(&vec![nan; m * n]);
    let args = dense(m, n, k, g.ptr(&da), g.ptr(&db), g.ptr(&dc));
    let copies = k.is_multiple_of(8) && n.is_multiple_of(8);
    assert_eq!(
        stagings(&args).map(|s| s.copies),
        [copies; 2],
        "{m}x{n}x{k}"
    );
    for tile in [Tile::T64, Tile::T128] {
        g.stream.memcpy_htod(&vec![nan; m * n], &mut dc).unwrap();
        gemm_tc_tiled(&kern, ty, &args, tile).unwrap();
        compare(
            ty,
            (m, n, k),
            (&a, &b),
            &g.stream.clone_dtoh(&dc).unwrap(),
            tile,
        );
    }
}

/// C (`got`, bits of `ty`) against Σ a·b in f64 (see `check`).
fn compare(
    ty: &str,
    (m, n, k): (usize, usize, usize),
    (a, b): (&[f64], &[f64]),
    got: &[u16],
    tile: Tile,
) {
    let (eps, tiny) = if ty == "f16" {
        (2f64.powi(-11), 2f64.powi(-25))
    } else {
        (2f64.powi(-8), 2f64.powi(-134))
    };
    for i in 0..m {
        for j in 0..n {
            let (mut sum, mut mag) = (0.0, 0.0);
            for l in 0..k {
                sum += a[i * k + l] * b[l * n + j];
                mag += (a[i * k + l] * b[l * n + j]).abs();
            }
            let bits = got[i * n + j];
            let v = if ty == "f16" {
                f16::from_bits(bits).to_f64()
            } else {
                bf16::from_bits(bits).to_f64()
            };
            let acc = (k as f64 + 1.0) * 6e-8 * mag;
            let tol = acc + eps * (sum.abs() + acc) + tiny;
            assert!(
                (v - sum).abs() <= tol,
                "{ty} {tile:?} {m}x{n}x{k} C[{i},{j}]: got {v}, want {sum} (tol {tol:e})"
            );
        }
    }
}

#[test]
fn gemm_tc_f16_matches_f64_on_edge_tiles() {
    for (m, n, k) in [
        (77, 40, 72),
        (64, 64, 32),
        (1, 8, 8),
        (130, 136, 200),
        (33, 200, 16),
        (45, 37, 19),
        (3, 5, 70),
    ] {
        check("f16", m, n, k);
    }
}

#[test]
fn gemm_tc_bf16_matches_f64_on_edge_tiles() {
    for (m, n, k) in [(77, 40, 72), (65, 72, 104), (5, 8, 0), (66, 13, 41)] {
        check("bf16", m, n, k);
    }
}

#[test]
fn gemm_tc_refuses_what_it_cannot_run() {
    let Some(g) = gpu() else { return };
    let kern = g.kernels();
    for ty in ["f32", "f64"] {
        let e = gemm_tc(&kern, ty, &dense(8, 8, 8, 0, 0, 0))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("no {ty} kernel")), "{ty}: {e}");
    }
}

/// 256³ in f16 through gemm_tc and through both SIMT tiles of gemm.cu (f16 out): the results are
/// within one f16 rounding of each other. With `KILN_EMU_STATS` set, the
/// emulator's counters of the three launches compare their instructions and traffic.
#[test]
fn gemm_tc_agrees_with_the_simt_gemm() {
    let Some(g) = gpu() else { return };
    let kern = g.kernels();
    let s = 256;
    let a: Vec<f16> = values(s * s, 4).into_iter().map(f16::from_f64).collect();
    let b: Vec<f16> = values(s * s, 5).into_iter().map(f16::from_f64).collect();
    let (da, db) = (g.upload(&a), g.upload(&b));
    let tc = g.zeros::<f16>(s * s);
    let args = dense(s, s, s, g.ptr(&da), g.ptr(&db), g.ptr(&tc));
    gemm_tc(&kern, "f16", &args).unwrap();
    let tc = g.stream.clone_dtoh(&tc).unwrap();
    for tile in [Tile::T64, Tile::T128] {
        let simt = g.zeros::<f16>(s * s);
        let ga = dense(s, s, s, g.ptr(&da), g.ptr(&db), g.ptr(&simt));
        gemm_tiled(&kern, "f16", &ga, tile).unwrap();
        let simt = g.stream.clone_dtoh(&simt).unwrap();
        for (i, (t, v)) in tc.iter().zip(&simt).enumerate() {
            let (t, v) = (t.to_f64(), v.to_f64());
            let tol = 1e-3 * t.abs().max(v.abs()) + 1e-3;
            assert!(
                (t - v).abs() <= tol,
                "{tile:?} C[{i}]: tensor cores {t}, SIMT {v}"
            );
        }
    }
}
