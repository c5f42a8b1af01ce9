//! gemm_tc.cu (tensor cores through mma.sync, ldmatrix and a 3-stage cp.async pipeline) against
//! an f64 reference on the rounded inputs: edge tiles in m, n and k, one row, k = 0, k spanning
//! many pipeline stages, both dtypes; against gemm.cu's SIMT tiles on 256³; and the shapes and
//! dtypes the launcher refuses.

mod common;
use common::gpu;
use half::{bf16, f16};
use kiln_kernels::cuda::gemm::{gemm_tiled, GemmArgs, Tile};
use kiln_kernels::cuda::gemm_tc::{gemm_tc, TcArgs};

/// Deterministic values in [-1, 1] with three decimals.
fn values(len: usize, seed: usize) -> Vec<f64> {
    (0..len)
        .map(|i| ((i * 7919 + seed * 104_729) % 2001) as f64 / 1000.0 - 1.0)
        .collect()
}

/// Runs one m×n×k product of `ty` and checks every element of C against Σ a·b in f64, within
/// f32 accumulation's error bound (k roundings of at most 2^-24 of the running |sum|).
fn check(ty: &str, m: usize, n: usize, k: usize) {
    let Some(g) = gpu() else { return };
    let kern = g.kernels();
    // Round through the dtype so the reference multiplies exactly the stored values.
    let (a, b, a_bits, b_bits): (Vec<f64>, Vec<f64>, Vec<u16>, Vec<u16>) = if ty == "f16" {
        let a: Vec<f16> = values(m * k, 1).into_iter().map(f16::from_f64).collect();
        let b: Vec<f16> = values(k * n, 2).into_iter().map(f16::from_f64).collect();
        (
            a.iter().map(|v| v.to_f64()).collect(),
            b.iter().map(|v| v.to_f64()).collect(),
            a.iter().map(|v| v.to_bits()).collect(),
            b.iter().map(|v| v.to_bits()).collect(),
        )
    } else {
        let a: Vec<bf16> = values(m * k, 1).into_iter().map(bf16::from_f64).collect();
        let b: Vec<bf16> = values(k * n, 2).into_iter().map(bf16::from_f64).collect();
        (
            a.iter().map(|v| v.to_f64()).collect(),
            b.iter().map(|v| v.to_f64()).collect(),
            a.iter().map(|v| v.to_bits()).collect(),
            b.iter().map(|v| v.to_bits()).collect(),
        )
    };
    let (da, db) = (g.upload(&a_bits), g.upload(&b_bits));
    let dc = g.upload(&vec![f32::NAN; m * n]);
    let args = TcArgs {
        m,
        n,
        k,
        a: g.ptr(&da),
        b: g.ptr(&db),
        c: g.ptr(&dc),
    };
    gemm_tc(&kern, ty, &args).unwrap();
    let got = g.stream.clone_dtoh(&dc).unwrap();
    for i in 0..m {
        for j in 0..n {
            let (mut sum, mut mag) = (0.0, 0.0);
            for l in 0..k {
                sum += a[i * k + l] * b[l * n + j];
                mag += (a[i * k + l] * b[l * n + j]).abs();
            }
            let v = f64::from(got[i * n + j]);
            let tol = (k as f64 + 1.0) * 6e-8 * mag + 1e-30;
            assert!(
                (v - sum).abs() <= tol,
                "{ty} {m}x{n}x{k} C[{i},{j}]: got {v}, want {sum} (tol {tol:e})"
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
    ] {
        check("f16", m, n, k);
    }
}

#[test]
fn gemm_tc_bf16_matches_f64_on_edge_tiles() {
    for (m, n, k) in [(77, 40, 72), (65, 72, 104), (5, 8, 0)] {
        check("bf16", m, n, k);
    }
}

#[test]
fn gemm_tc_refuses_what_it_cannot_run() {
    let Some(g) = gpu() else { return };
    let kern = g.kernels();
    let ok = TcArgs {
        m: 8,
        n: 8,
        k: 8,
        a: 0,
        b: 0,
        c: 0,
    };
    for (ty, args, text) in [
        ("f32", ok, "no f32 kernel"),
        ("f16", TcArgs { n: 12, ..ok }, "multiples of 8"),
        ("bf16", TcArgs { k: 20, ..ok }, "multiples of 8"),
    ] {
        let e = gemm_tc(&kern, ty, &args).unwrap_err().to_string();
        assert!(e.contains(text), "{ty} {args:?}: {e}");
    }
}

/// 256³ in f16 through gemm_tc and through both SIMT tiles of gemm.cu (f16 out): the tensor-core
/// result rounded to f16 is within one f16 rounding of theirs. With `KILN_EMU_STATS` set, the
/// emulator's counters of the three launches compare their instructions and traffic.
#[test]
fn gemm_tc_agrees_with_the_simt_gemm() {
    let Some(g) = gpu() else { return };
    let kern = g.kernels();
    let s = 256;
    let a: Vec<f16> = values(s * s, 4).into_iter().map(f16::from_f64).collect();
    let b: Vec<f16> = values(s * s, 5).into_iter().map(f16::from_f64).collect();
    let (da, db) = (g.upload(&a), g.upload(&b));
    let tc = g.zeros::<f32>(s * s);
    let args = TcArgs {
        m: s,
        n: s,
        k: s,
        a: g.ptr(&da),
        b: g.ptr(&db),
        c: g.ptr(&tc),
    };
    gemm_tc(&kern, "f16", &args).unwrap();
    let tc = g.stream.clone_dtoh(&tc).unwrap();
    for tile in [Tile::T64, Tile::T128] {
        let simt = g.zeros::<f16>(s * s);
        let dense = [s * s, s, 1];
        let ga = GemmArgs {
            batch: 1,
            m: s,
            n: s,
            k: s,
            a: g.ptr(&da),
            a_strides: dense,
            b: g.ptr(&db),
            b_strides: dense,
            c: g.ptr(&simt),
            c_strides: dense,
            alpha: 1.0,
            beta: 0.0,
        };
        gemm_tiled(&kern, "f16", &ga, tile).unwrap();
        let simt = g.stream.clone_dtoh(&simt).unwrap();
        for (i, (t, v)) in tc.iter().zip(&simt).enumerate() {
            let (t, v) = (f64::from(*t), v.to_f64());
            let tol = 1e-3 * t.abs().max(v.abs()) + 1e-3;
            assert!(
                (t - v).abs() <= tol,
                "{tile:?} C[{i}]: tensor cores {t}, SIMT {v}"
            );
        }
    }
}
