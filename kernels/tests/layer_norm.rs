//! layer_norm.cu (through its launchers) against the CPU twin: forward, dx, dγ and dβ, with and
//! without the affine parameters, on a warp-per-row shape, a block-per-row shape and a shape whose
//! rows span several bands of the dγ/dβ kernel. (f16/bf16 are covered by the engine's conformance
//! suite.)

mod common;
use common::{assert_close, gpu, Gpu};
use kiln_kernels::cpu::layer_norm as cpu;
use kiln_kernels::cuda::layer_norm::{self as cuda, LnInputs};
use kiln_kernels::cuda::RowDims;

/// (rows, len): a warp per row, a block per row, and 3 bands of 64 rows.
const SHAPES: [(usize, usize); 3] = [(19, 77), (3, 1301), (150, 33)];

fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 7919 + seed * 104_729) % 1013) as f32 - 506.0) / 97.0 + 0.3)
        .collect()
}

/// What the twin computes: (y, mean, rstd, dx, dγ, dβ).
type Twin = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

fn cpu_twin(x: &[f32], dy: &[f32], len: usize, affine: Option<(&[f32], &[f32])>) -> Twin {
    let rows = x.len() / len;
    let (mut y, mut mean, mut rstd) = (vec![0.0; x.len()], vec![0.0; rows], vec![0.0; rows]);
    let (g, b) = (affine.map(|a| a.0), affine.map(|a| a.1));
    cpu::layer_norm_fwd(x, len, (g, b), 1e-5, &mut y, (&mut mean, &mut rstd));
    let mut dx = vec![0.0; x.len()];
    let (dg, db) = cpu::layer_norm_bwd(x, dy, len, g, (&mean, &rstd), &mut dx);
    (y, mean, rstd, dx, dg, db)
}

fn cuda_run(g: &Gpu, x: &[f32], dy: &[f32], len: usize, affine: Option<(&[f32], &[f32])>) -> Twin {
    let k = g.kernels();
    let rows = x.len() / len;
    let dims = RowDims { rows, len };
    let (dx_in, ddy) = (g.upload(x), g.upload(dy));
    let (dgam, dbet) = affine.map_or((None, None), |(a, b)| {
        (Some(g.upload(a)), Some(g.upload(b)))
    });
    let opt = |d: &Option<_>| d.as_ref().map_or(0, |d| g.ptr(d));
    let inp = LnInputs {
        x: g.ptr(&dx_in),
        gamma: opt(&dgam),
        beta: opt(&dbet),
    };
    let (y, mean, rstd) = (
        g.zeros::<f32>(x.len()),
        g.zeros::<f32>(rows),
        g.zeros::<f32>(rows),
    );
    let stats = (g.ptr(&mean), g.ptr(&rstd));
    cuda::layer_norm_fwd(&k, "f32", inp, g.ptr(&y), stats, dims, 1e-5).unwrap();
    let dx = g.zeros::<f32>(x.len());
    let xg = (inp.x, inp.gamma);
    cuda::layer_norm_bwd_dx(&k, "f32", xg, g.ptr(&ddy), stats, g.ptr(&dx), dims).unwrap();
    let scratch_len = cuda::params_scratch_len(rows, len);
    let (pg, pb) = (g.zeros::<f32>(scratch_len), g.zeros::<f32>(scratch_len));
    let (dgo, dbo) = (g.zeros::<f32>(len), g.zeros::<f32>(len));
    cuda::layer_norm_bwd_params(
        &k,
        "f32",
        (inp.x, g.ptr(&ddy)),
        stats,
        (g.ptr(&pg), g.ptr(&pb)),
        (g.ptr(&dgo), g.ptr(&dbo)),
        dims,
    )
    .unwrap();
    let d = |s| g.download(s);
    (d(&y), d(&mean), d(&rstd), d(&dx), d(&dgo), d(&dbo))
}

#[test]
fn layer_norm_matches_the_cpu_forward_and_backward() {
    let Some(g) = gpu() else { return };
    for (rows, len) in SHAPES {
        let (x, dy) = (values(rows * len, 1), values(rows * len, 2));
        let (gamma, beta) = (values(len, 3), values(len, 4));
        for affine in [None, Some((&gamma[..], &beta[..]))] {
            let what = format!("{rows}x{len} affine={}", affine.is_some());
            let want = cpu_twin(&x, &dy, len, affine);
            let got = cuda_run(&g, &x, &dy, len, affine);
            assert_close(&format!("y {what}"), &got.0, &want.0, 1e-5, 1e-5);
            assert_close(&format!("mean {what}"), &got.1, &want.1, 1e-6, 1e-5);
            assert_close(&format!("rstd {what}"), &got.2, &want.2, 1e-6, 1e-5);
            assert_close(&format!("dx {what}"), &got.3, &want.3, 1e-4, 1e-4);
            assert_close(&format!("dgamma {what}"), &got.4, &want.4, 1e-3, 1e-4);
            assert_close(&format!("dbeta {what}"), &got.5, &want.5, 1e-3, 1e-4);
        }
    }
}
