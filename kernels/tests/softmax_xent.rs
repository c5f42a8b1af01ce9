//! softmax_xent.cu (through its launchers) against the CPU twin: softmax and log-softmax both
//! ways, and the fused cross-entropy with hard labels (with and without smoothing) and soft
//! targets, on a warp-per-row shape and a block-per-row shape.

mod common;
use common::{assert_close, gpu};
use kiln_kernels::cpu::softmax_xent::{self as cpu, Targets};
use kiln_kernels::cuda::softmax_xent::{self as cuda, XentTargets};

/// (rows, len): a warp per row, then a block per row.
const SHAPES: [(usize, usize); 2] = [(19, 77), (3, 1301)];

fn logits(rows: usize, len: usize) -> Vec<f32> {
    (0..rows * len)
        .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 61.0)
        .collect()
}

#[test]
fn softmax_and_log_softmax_match_the_cpu_both_ways() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for (rows, len) in SHAPES {
        let x = logits(rows, len);
        let dy: Vec<f32> = (0..rows * len)
            .map(|i| ((i % 11) as f32 - 5.0) / 7.0)
            .collect();
        let (dx_in, ddy) = (g.upload(&x), g.upload(&dy));
        for log in [false, true] {
            let what = format!("{rows}x{len} log={log}");
            let mut want = vec![0f32; rows * len];
            cpu::softmax_rows(&x, len, log, &mut want);
            let y = g.zeros::<f32>(rows * len);
            cuda::softmax_rows(&k, "f32", g.ptr(&dx_in), g.ptr(&y), rows, len, log).unwrap();
            assert_close(&format!("y {what}"), &g.download(&y), &want, 1e-6, 1e-5);
            let mut want_dx = vec![0f32; rows * len];
            cpu::softmax_rows_bwd(&want, &dy, len, log, &mut want_dx);
            let dx = g.zeros::<f32>(rows * len);
            let (py, pdy, pdx) = (g.ptr(&y), g.ptr(&ddy), g.ptr(&dx));
            cuda::softmax_rows_bwd(&k, "f32", py, pdy, pdx, rows, len, log).unwrap();
            assert_close(
                &format!("dx {what}"),
                &g.download(&dx),
                &want_dx,
                1e-5,
                1e-4,
            );
        }
    }
}

#[test]
fn cross_entropy_matches_the_cpu_for_hard_and_soft_targets() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for (rows, len) in SHAPES {
        let x = logits(rows, len);
        let labels: Vec<i64> = (0..rows).map(|r| ((r * 31 + 5) % len) as i64).collect();
        let soft: Vec<f32> = (0..rows * len)
            .map(|i| ((i * 13 % 7) as f32 + 0.5) / (3.5 * len as f32))
            .collect();
        let scale: Vec<f32> = (0..rows).map(|r| 1.0 / (r + 2) as f32).collect();
        let (dx_in, dlab, dsoft, dscale) = (
            g.upload(&x),
            g.upload(&labels),
            g.upload(&soft),
            g.upload(&scale),
        );
        let cases = [
            (
                "hard",
                Targets::Hard(&labels, 0.0),
                XentTargets::Hard {
                    labels: g.ptr(&dlab),
                    smoothing: 0.0,
                },
            ),
            (
                "smoothed",
                Targets::Hard(&labels, 0.1),
                XentTargets::Hard {
                    labels: g.ptr(&dlab),
                    smoothing: 0.1,
                },
            ),
            (
                "soft",
                Targets::Soft(&soft),
                XentTargets::Soft {
                    probs: g.ptr(&dsoft),
                },
            ),
        ];
        for (name, ct, gt) in cases {
            let what = format!("{name} {rows}x{len}");
            let (mut loss, mut lse) = (vec![0f32; rows], vec![0f32; rows]);
            cpu::xent_fwd(&x, len, ct, &mut loss, &mut lse);
            let (dloss, dlse) = (g.zeros::<f32>(rows), g.zeros::<f32>(rows));
            let (px, pl, ps) = (g.ptr(&dx_in), g.ptr(&dloss), g.ptr(&dlse));
            cuda::xent_fwd(&k, "f32", px, len, rows, gt, pl, ps).unwrap();
            assert_close(
                &format!("loss {what}"),
                &g.download(&dloss),
                &loss,
                1e-5,
                1e-5,
            );
            assert_close(&format!("lse {what}"), &g.download(&dlse), &lse, 1e-5, 1e-6);
            let mut want_dx = vec![0f32; rows * len];
            cpu::xent_bwd(&x, len, ct, &lse, &scale, &mut want_dx);
            let dx = g.zeros::<f32>(rows * len);
            let (psc, pdx) = (g.ptr(&dscale), g.ptr(&dx));
            cuda::xent_bwd(&k, "f32", px, len, rows, gt, ps, psc, pdx).unwrap();
            assert_close(
                &format!("dx {what}"),
                &g.download(&dx),
                &want_dx,
                1e-7,
                1e-4,
            );
        }
    }
}

#[test]
fn cross_entropy_in_f64_matches_the_cpu() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let (rows, len) = (7, 45);
    let x: Vec<f64> = logits(rows, len).iter().map(|&v| v as f64 * 3.0).collect();
    let labels: Vec<i64> = (0..rows).map(|r| (r * 17 % len) as i64).collect();
    let (mut loss, mut lse) = (vec![0f64; rows], vec![0f64; rows]);
    cpu::xent_fwd(&x, len, Targets::Hard(&labels, 0.2), &mut loss, &mut lse);
    let (dx_in, dlab) = (g.upload(&x), g.upload(&labels));
    let (dloss, dlse) = (g.zeros::<f64>(rows), g.zeros::<f64>(rows));
    let t = XentTargets::Hard {
        labels: g.ptr(&dlab),
        smoothing: 0.2,
    };
    let (px, pl, ps) = (g.ptr(&dx_in), g.ptr(&dloss), g.ptr(&dlse));
    cuda::xent_fwd(&k, "f64", px, len, rows, t, pl, ps).unwrap();
    for (r, (a, b)) in g.download(&dloss).iter().zip(&loss).enumerate() {
        assert!(
            (a - b).abs() <= 1e-12 * b.abs().max(1.0),
            "loss[{r}]: {a} vs {b}"
        );
    }
    for (r, (a, b)) in g.download(&dlse).iter().zip(&lse).enumerate() {
        assert!(
            (a - b).abs() <= 1e-12 * b.abs().max(1.0),
            "lse[{r}]: {a} vs {b}"
        );
    }
}
