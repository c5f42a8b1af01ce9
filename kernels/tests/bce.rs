//! bce.cu (through its launchers) against the CPU twin: class-index targets with and without
//! smoothing, soft targets, a threshold and a positive weight, on a warp-per-row shape and a
//! block-per-row shape, forward and backward.

mod common;
use common::{assert_close, gpu};
use kiln_kernels::cpu::bce::{self as cpu, BceOpts};
use kiln_kernels::cpu::softmax_xent::Targets;
use kiln_kernels::cuda::bce as cuda;
use kiln_kernels::cuda::softmax_xent::XentTargets;

/// (rows, len): a warp per row, then a block per row.
const SHAPES: [(usize, usize); 2] = [(19, 77), (3, 1301)];

fn logits(rows: usize, len: usize) -> Vec<f32> {
    (0..rows * len)
        .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 41.0)
        .collect()
}

#[test]
fn bce_matches_the_cpu_for_every_target_kind() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for (rows, len) in SHAPES {
        let x = logits(rows, len);
        let labels: Vec<i64> = (0..rows).map(|r| ((r * 31 + 5) % len) as i64).collect();
        let soft: Vec<f32> = (0..rows * len)
            .map(|i| (i * 13 % 11) as f32 / 10.0)
            .collect();
        let scale: Vec<f32> = (0..rows).map(|r| 1.0 / (r + 2) as f32).collect();
        let (dx_in, dlab, dsoft, dscale) = (
            g.upload(&x),
            g.upload(&labels),
            g.upload(&soft),
            g.upload(&scale),
        );
        let hard = |s| {
            let t = XentTargets::Hard {
                labels: g.ptr(&dlab),
                smoothing: s,
            };
            (Targets::Hard(&labels, s), t)
        };
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
            ("hard", hard(0.0), BceOpts::default()),
            ("smoothed weighted", hard(0.1), weighted),
            ("smoothed thresholded", hard(0.3), thresholded),
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
            cpu::bce_fwd(&x, len, ct, o, &mut loss);
            let dloss = g.zeros::<f32>(rows);
            let (px, pl) = (g.ptr(&dx_in), g.ptr(&dloss));
            cuda::bce_fwd(&k, "f32", px, len, rows, gt, o, pl).unwrap();
            assert_close(
                &format!("loss {what}"),
                &g.download(&dloss),
                &loss,
                1e-5,
                1e-5,
            );
            let mut want_dx = vec![0f32; rows * len];
            cpu::bce_bwd(&x, len, ct, o, &scale, &mut want_dx);
            let dx = g.zeros::<f32>(rows * len);
            let (psc, pdx) = (g.ptr(&dscale), g.ptr(&dx));
            cuda::bce_bwd(&k, "f32", px, len, rows, gt, o, psc, pdx).unwrap();
            assert_close(
                &format!("dx {what}"),
                &g.download(&dx),
                &want_dx,
                1e-7,
                1e-5,
            );
        }
    }
}

#[test]
fn bce_in_f64_matches_the_cpu() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let (rows, len) = (7, 45);
    let x: Vec<f64> = logits(rows, len).iter().map(|&v| v as f64 * 3.0).collect();
    let labels: Vec<i64> = (0..rows).map(|r| (r * 17 % len) as i64).collect();
    let o = BceOpts {
        threshold: None,
        pos_weight: Some(3.0),
    };
    let mut loss = vec![0f64; rows];
    cpu::bce_fwd(&x, len, Targets::Hard(&labels, 0.2), o, &mut loss);
    let (dx_in, dlab) = (g.upload(&x), g.upload(&labels));
    let dloss = g.zeros::<f64>(rows);
    let t = XentTargets::Hard {
        labels: g.ptr(&dlab),
        smoothing: 0.2,
    };
    let (px, pl) = (g.ptr(&dx_in), g.ptr(&dloss));
    cuda::bce_fwd(&k, "f64", px, len, rows, t, o, pl).unwrap();
    for (r, (a, b)) in g.download(&dloss).iter().zip(&loss).enumerate() {
        assert!(
            (a - b).abs() <= 1e-12 * b.abs().max(1.0),
            "row {r}: {a} vs {b}"
        );
    }
}
