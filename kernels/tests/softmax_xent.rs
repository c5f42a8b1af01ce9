//! softmax_xent.cu (through its launchers) against the CPU twin: softmax and log-softmax both
//! ways, and the fused cross-entropy with hard labels (with and without smoothing) and soft
//! targets, on a warp-per-row shape and a block-per-row shape.

mod common;
use common::loss::{assert_rows_f64, logits, scales, Batch, SHAPES};
use common::{assert_close, gpu};
use kiln_kernels::cpu::softmax_xent::{self as cpu, Targets};
use kiln_kernels::cuda::softmax_xent::{self as cuda, XentTargets};
use kiln_kernels::cuda::RowDims;

/// The logits' spread (see `common::loss::logits`).
const SPREAD: f32 = 61.0;

#[test]
fn softmax_and_log_softmax_match_the_cpu_both_ways() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for (rows, len) in SHAPES {
        let x = logits(rows, len, SPREAD);
        let dy: Vec<f32> = (0..rows * len)
            .map(|i| ((i % 11) as f32 - 5.0) / 7.0)
            .collect();
        let (dx_in, ddy) = (g.upload(&x), g.upload(&dy));
        for log in [false, true] {
            let what = format!("{rows}x{len} log={log}");
            let dims = RowDims { rows, len };
            let mut want = vec![0f32; rows * len];
            cpu::softmax_rows(&x, len, log, &mut want);
            let y = g.zeros::<f32>(rows * len);
            cuda::softmax_rows(&k, "f32", g.ptr(&dx_in), g.ptr(&y), dims, log).unwrap();
            assert_close(&format!("y {what}"), &g.download(&y), &want, 1e-6, 1e-5);
            let mut want_dx = vec![0f32; rows * len];
            cpu::softmax_rows_bwd(&want, &dy, len, log, &mut want_dx);
            let dx = g.zeros::<f32>(rows * len);
            let (py, pdy, pdx) = (g.ptr(&y), g.ptr(&ddy), g.ptr(&dx));
            cuda::softmax_rows_bwd(&k, "f32", (py, pdy), pdx, dims, log).unwrap();
            g.assert_close(&format!("dx {what}"), &dx, &want_dx, 1e-5, 1e-4);
        }
    }
}

#[test]
fn cross_entropy_matches_the_cpu_for_hard_and_soft_targets() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for (rows, len) in SHAPES {
        let b = Batch::f32(&g, (rows, len), SPREAD);
        let soft: Vec<f32> = (0..rows * len)
            .map(|i| ((i * 13 % 7) as f32 + 0.5) / (3.5 * len as f32))
            .collect();
        let scale = scales(rows);
        let (dsoft, dscale) = (g.upload(&soft), g.upload(&scale));
        let probs = XentTargets::Soft {
            probs: g.ptr(&dsoft),
        };
        let cases = [
            ("hard", b.hard(&g, 0.0)),
            ("smoothed", b.hard(&g, 0.1)),
            ("soft", (Targets::Soft(&soft), probs)),
        ];
        for (name, (ct, gt)) in cases {
            let what = format!("{name} {rows}x{len}");
            let (mut loss, mut lse) = (vec![0f32; rows], vec![0f32; rows]);
            cpu::xent_fwd(&b.x, len, ct, &mut loss, &mut lse);
            let (dloss, dlse) = (g.zeros::<f32>(rows), g.zeros::<f32>(rows));
            let (px, pl, ps) = (g.ptr(&b.dx), g.ptr(&dloss), g.ptr(&dlse));
            cuda::xent_fwd(&k, "f32", px, RowDims { rows, len }, gt, (pl, ps)).unwrap();
            g.assert_close(&format!("loss {what}"), &dloss, &loss, 1e-5, 1e-5);
            assert_close(&format!("lse {what}"), &g.download(&dlse), &lse, 1e-5, 1e-6);
            let mut want_dx = vec![0f32; rows * len];
            cpu::xent_bwd(&b.x, len, ct, &lse, &scale, &mut want_dx);
            let dx = g.zeros::<f32>(rows * len);
            let (psc, pdx) = (g.ptr(&dscale), g.ptr(&dx));
            cuda::xent_bwd(&k, "f32", px, RowDims { rows, len }, gt, (ps, psc), pdx).unwrap();
            g.assert_close(&format!("dx {what}"), &dx, &want_dx, 1e-7, 1e-4);
        }
    }
}

#[test]
fn cross_entropy_in_f64_matches_the_cpu() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let b = Batch::f64(&g, SPREAD);
    let (rows, len, (ct, gt)) = (b.rows, b.len, b.hard(&g, 0.2));
    let (mut loss, mut lse) = (vec![0f64; rows], vec![0f64; rows]);
    cpu::xent_fwd(&b.x, len, ct, &mut loss, &mut lse);
    let (dloss, dlse) = (g.zeros::<f64>(rows), g.zeros::<f64>(rows));
    let (px, pl, ps) = (g.ptr(&b.dx), g.ptr(&dloss), g.ptr(&dlse));
    cuda::xent_fwd(&k, "f64", px, RowDims { rows, len }, gt, (pl, ps)).unwrap();
    assert_rows_f64("loss", &g.download(&dloss), &loss);
    assert_rows_f64("lse", &g.download(&dlse), &lse);
}
