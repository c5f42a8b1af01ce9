//! bce.cu (through its launchers) against the CPU twin: class-index targets with and without
//! smoothing, soft targets, a threshold and a positive weight, on a warp-per-row shape and a
//! block-per-row shape, forward and backward.

mod common;
use common::gpu;
use common::loss::{assert_rows_f64, scales, Batch, SHAPES};
use kiln_kernels::cpu::bce::{self as cpu, BceOpts};
use kiln_kernels::cpu::softmax_xent::Targets;
use kiln_kernels::cuda::bce as cuda;
use kiln_kernels::cuda::softmax_xent::XentTargets;
use kiln_kernels::cuda::RowDims;

/// The logits' spread (see `common::loss::logits`).
const SPREAD: f32 = 41.0;

#[test]
fn bce_matches_the_cpu_for_every_target_kind() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for (rows, len) in SHAPES {
        let b = Batch::f32(&g, (rows, len), SPREAD);
        let soft: Vec<f32> = (0..rows * len)
            .map(|i| (i * 13 % 11) as f32 / 10.0)
            .collect();
        let scale = scales(rows);
        let (dsoft, dscale) = (g.upload(&soft), g.upload(&scale));
        let probs = XentTargets::Soft {
            probs: g.ptr(&dsoft),
        };
        let weighted = BceOpts {
            threshold: None,
            pos_weight: Some(2.5),
        };
        let thresholded = BceOpts {
            threshold: Some(0.45),
            pos_weight: Some(0.5),
        };
        let cases = [
            ("hard", b.hard(&g, 0.0), BceOpts::default()),
            ("smoothed weighted", b.hard(&g, 0.1), weighted),
            ("smoothed thresholded", b.hard(&g, 0.3), thresholded),
            ("soft", (Targets::Soft(&soft), probs), weighted),
            (
                "soft thresholded",
                (Targets::Soft(&soft), probs),
                thresholded,
            ),
        ];
        for (name, (ct, gt), o) in cases {
            let what = format!("{name} {rows}x{len}");
            let mut loss = vec![0f32; rows];
            cpu::bce_fwd(&b.x, len, ct, o, &mut loss);
            let dloss = g.zeros::<f32>(rows);
            let (px, pl) = (g.ptr(&b.dx), g.ptr(&dloss));
            cuda::bce_fwd(&k, "f32", px, RowDims { rows, len }, gt, o, pl).unwrap();
            g.assert_close(&format!("loss {what}"), &dloss, &loss, 1e-5, 1e-5);
            let mut want_dx = vec![0f32; rows * len];
            cpu::bce_bwd(&b.x, len, ct, o, &scale, &mut want_dx);
            let dx = g.zeros::<f32>(rows * len);
            let (psc, pdx) = (g.ptr(&dscale), g.ptr(&dx));
            cuda::bce_bwd(&k, "f32", px, RowDims { rows, len }, gt, o, (psc, pdx)).unwrap();
            g.assert_close(&format!("dx {what}"), &dx, &want_dx, 1e-7, 1e-5);
        }
    }
}

#[test]
fn bce_in_f64_matches_the_cpu() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let b = Batch::f64(&g, SPREAD);
    let (rows, len, (ct, gt)) = (b.rows, b.len, b.hard(&g, 0.2));
    let o = BceOpts {
        threshold: None,
        pos_weight: Some(3.0),
    };
    let mut loss = vec![0f64; rows];
    cpu::bce_fwd(&b.x, len, ct, o, &mut loss);
    let dloss = g.zeros::<f64>(rows);
    let (px, pl) = (g.ptr(&b.dx), g.ptr(&dloss));
    cuda::bce_fwd(&k, "f64", px, RowDims { rows, len }, gt, o, pl).unwrap();
    assert_rows_f64("loss", &g.download(&dloss), &loss);
}
