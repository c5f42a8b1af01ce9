//! reduce.cu (through its launchers) against the CPU twin, warp-per-row and block-per-row shapes.

mod common;
use common::elem::Elem;
use common::{assert_close, gpu, Gpu};
use kiln_kernels::cpu::reduce::{self as cpu, ReduceOp};
use kiln_kernels::cpu::Real;
use kiln_kernels::cuda::reduce as cuda;
use kiln_kernels::cuda::Kernels;

/// A deterministic, sign-mixed row-major matrix.
fn matrix(rows: usize, len: usize) -> Vec<f32> {
    (0..rows * len)
        .map(|i| ((i * 7919 % 1009) as f32 - 504.0) / 97.0)
        .collect()
}

/// `op` over each row (`len` elements) of `x`: the kernel's result and the CPU twin's.
fn reduce<T: Elem + Real>(
    g: &Gpu,
    k: &Kernels,
    op: ReduceOp,
    x: &[T],
    len: usize,
) -> (Vec<T>, Vec<T>) {
    let rows = x.len() / len;
    let mut want = vec![T::default(); rows];
    cpu::reduce_rows(op, x, len, &mut want);
    let (dx, out) = (g.upload(x), g.zeros::<T>(rows));
    cuda::reduce_rows(k, T::TY, op, g.ptr(&dx), g.ptr(&out), rows, len).unwrap();
    (g.download(&out), want)
}

#[test]
fn reduce_rows_matches_the_cpu_for_short_and_long_rows() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    // (rows, len): a warp per row (incl. len 1), then a block per row.
    for (rows, len) in [(37, 45), (5, 1), (3, 1500)] {
        let x = matrix(rows, len);
        for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min] {
            let (got, want) = reduce(&g, &k, op, &x, len);
            let what = format!("{} {rows}x{len}", op.name());
            assert_close(&what, &got, &want, 1e-4, 1e-5);
        }
    }
}

#[test]
fn reduce_rows_in_f64_and_nan_propagates() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let (rows, len) = (6, 1100);
    let mut x: Vec<f64> = matrix(rows, len).iter().map(|&v| v as f64).collect();
    x[2 * len + 777] = f64::NAN;
    for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min] {
        let (got, want) = reduce(&g, &k, op, &x, len);
        for (r, (a, b)) in got.iter().zip(&want).enumerate() {
            let ok = (a - b).abs() <= 1e-10 * b.abs().max(1.0) || (a.is_nan() && b.is_nan());
            assert!(ok, "{} row {r}: got {a}, want {b}", op.name());
        }
    }
}

#[test]
fn argmax_rows_takes_the_first_max_and_the_first_nan() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for (rows, len) in [(29, 67), (2, 3000)] {
        // Values repeat (i * 7919 % 1009), so rows hold ties; one row gets two NaNs.
        let mut x = matrix(rows, len);
        x[len + len / 2] = f32::NAN;
        x[len + len / 3] = f32::NAN;
        x[len - 1] = 100.0;
        let mut want = vec![0i64; rows];
        cpu::argmax_rows(&x, len, &mut want);
        let dx = g.upload(&x);
        let out = g.zeros::<i64>(rows);
        cuda::argmax_rows(&k, "f32", g.ptr(&dx), g.ptr(&out), rows, len).unwrap();
        assert_eq!(g.download(&out), want, "{rows}x{len}");
    }
}
