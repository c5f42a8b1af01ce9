//! bn_relu.cu (through its launchers) against the CPU twin: statistics, the fused forward with a
//! residual and ReLU, and the fused backward in training and eval, NCHW and NHWC, on shapes that
//! split each channel across several blocks and cross a 32-channel tile.

mod common;
use common::elem::Elem;
use common::{assert_close, gpu, Gpu};
use cudarc::driver::CudaSlice;
use kiln_kernels::cpu::bn_relu::{self as cpu, BnBackward, ChannelDims};
use kiln_kernels::cuda::bn_relu::{self as cuda, BnBwd};
use kiln_kernels::cuda::Kernels;

/// (n, c, hw): 3 channels of 2185 elements (several splits), then 37 channels of 70.
/// Odd channel counts take the scalar kernels; 64, 96 and 1024 channels-last f32 the packed ones
/// (4 channels a load; 96 leaves 16 threads of a block idle, 1024 fills a 256-thread block with
/// one pixel's packs; each thread walks several pixels).
const SHAPES: [(usize, usize, usize); 5] = [
    (5, 3, 23 * 19),
    (2, 37, 5 * 7),
    (3, 64, 5 * 7),
    (3, 96, 5 * 7),
    (2, 1024, 5 * 7),
];

fn data(len: usize, salt: usize, offset: f32) -> Vec<f32> {
    (0..len)
        .map(|i| offset + ((i * 7919 + salt) % 1009) as f32 / 400.0 - 1.2)
        .collect()
}

fn as_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// The kernel's per-channel batch mean and variance of `x` (no running buffers, no affine
/// outputs).
fn batch_stats<T: Elem>(
    g: &Gpu,
    k: &Kernels,
    x: &CudaSlice<T>,
    d: ChannelDims,
) -> (Vec<T>, Vec<T>) {
    let (gm, gv) = (g.zeros::<T>(d.c), g.zeros::<T>(d.c));
    let (none, no_aff) = (cuda::BnRunning::default(), cuda::BnAffine::default());
    let out = (g.ptr(&gm), g.ptr(&gv));
    cuda::bn_stats(k, T::TY, g.ptr(x), d, out, &none, &no_aff).unwrap();
    (g.download(&gm), g.download(&gv))
}

fn check_layout(channels_last: bool) {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for (n, c, hw) in SHAPES {
        let d = ChannelDims {
            n,
            c,
            hw,
            channels_last,
        };
        let what = format!("{n}x{c}x{hw} channels_last={channels_last}");
        let total = n * c * hw;
        // A mean far from zero checks that the statistics do not cancel.
        let x = data(total, 1, 50.0);
        let res = data(total, 2, 0.0);
        let dy = data(total, 3, 0.0);
        let (dx_, dres_, ddy) = (g.upload(&x), g.upload(&res), g.upload(&dy));

        let (mean, var) = cpu::bn_stats(&x, d);
        let (gm, gv) = batch_stats(&g, &k, &dx_, d);
        let (mean32, var32): (Vec<f32>, Vec<f32>) = (
            mean.iter().map(|&v| v as f32).collect(),
            var.iter().map(|&v| v as f32).collect(),
        );
        assert_close(&format!("mean {what}"), &gm, &mean32, 0.0, 1e-6);
        assert_close(&format!("var {what}"), &gv, &var32, 1e-6, 1e-4);

        // γ and β cycle every 37 channels, so wide shapes keep the magnitudes of narrow ones.
        let gamma: Vec<f32> = (0..c).map(|i| 0.5 + (i % 37) as f32 / 7.0).collect();
        let beta: Vec<f32> = (0..c).map(|i| (i % 37) as f32 / 11.0 - 0.3).collect();
        let invstd: Vec<f32> = var32.iter().map(|v| 1.0 / (v + 1e-5).sqrt()).collect();
        let scale: Vec<f32> = gamma.iter().zip(&invstd).map(|(a, b)| a * b).collect();
        let shift: Vec<f32> = (0..c).map(|i| beta[i] - mean32[i] * scale[i]).collect();
        let (dmean, dinv, dgam, dscale, dshift) = (
            g.upload(&mean32),
            g.upload(&invstd),
            g.upload(&gamma),
            g.upload(&scale),
            g.upload(&shift),
        );

        let mut y = vec![0f32; total];
        cpu::bn_act_fwd(&x, Some(&res), &scale, &shift, true, d, &mut y);
        let gy = g.zeros::<f32>(total);
        let (px, pr, ps, pt, py) = (
            g.ptr(&dx_),
            g.ptr(&dres_),
            g.ptr(&dscale),
            g.ptr(&dshift),
            g.ptr(&gy),
        );
        cuda::bn_act_fwd(&k, "f32", (px, Some(pr)), (ps, pt), true, d, py).unwrap();
        // x·scale ≈ ±200 cancels against shift: allow that magnitude's rounding (FMA on the GPU).
        assert_close(&format!("y {what}"), &g.download(&gy), &y, 1e-4, 1e-5);
        // Use the CPU's y on both sides so the ReLU masks agree exactly.
        let dyv = g.upload(&y);

        for (relu, training) in [(true, true), (false, false)] {
            let what = format!("{what} relu={relu} training={training}");
            let s = BnBackward {
                x: &x,
                y: &y,
                mean: &as_f64(&mean32),
                invstd: &as_f64(&invstd),
                gamma: &as_f64(&gamma),
                relu,
                training,
            };
            let (mut want_dx, mut want_dres) = (vec![0f32; total], vec![0f32; total]);
            let dres_arg = relu.then_some(&mut want_dres[..]);
            let (dgamma, dbeta) = cpu::bn_act_bwd(&dy, &s, d, &mut want_dx, dres_arg);
            let sb = BnBwd {
                x: g.ptr(&dx_),
                y: g.ptr(&dyv),
                scale: 0,
                shift: 0,
                mean: g.ptr(&dmean),
                invstd: g.ptr(&dinv),
                gamma: g.ptr(&dgam),
                relu,
                training,
            };
            let (gdx, gdres) = (g.zeros::<f32>(total), g.zeros::<f32>(total));
            let (gdg, gdb) = (g.zeros::<f32>(c), g.zeros::<f32>(c));
            let dres_ptr = relu.then(|| g.ptr(&gdres));
            let (pdy, pdx, pdg, pdb) = (g.ptr(&ddy), g.ptr(&gdx), g.ptr(&gdg), g.ptr(&gdb));
            cuda::bn_act_bwd(&k, "f32", pdy, &sb, d, (pdx, dres_ptr), (pdg, pdb)).unwrap();
            let to32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
            g.assert_close(&format!("dbeta {what}"), &gdb, &to32(&dbeta), 1e-3, 1e-4);
            g.assert_close(&format!("dgamma {what}"), &gdg, &to32(&dgamma), 1e-3, 1e-4);
            g.assert_close(&format!("dx {what}"), &gdx, &want_dx, 1e-5, 1e-3);
            if relu {
                assert_eq!(g.download(&gdres), want_dres, "dres {what}");
            }
        }
    }
}

#[test]
fn bn_relu_matches_the_cpu_nchw() {
    check_layout(false);
}

#[test]
fn bn_relu_matches_the_cpu_nhwc() {
    check_layout(true);
}

#[test]
fn bn_stats_in_f64_matches_the_cpu() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let d = ChannelDims {
        n: 3,
        c: 5,
        hw: 41,
        channels_last: true,
    };
    let x: Vec<f64> = as_f64(&data(d.n * d.c * d.hw, 4, -1e3));
    let (mean, var) = cpu::bn_stats(&x, d);
    let (gm, gv) = batch_stats(&g, &k, &g.upload(&x), d);
    for (got, want) in [(gm, mean), (gv, var)] {
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
}

/// The statistics launch also updates the running mean/var (momentum rule, unbiased variance),
/// counts the batch and writes invstd, scale and shift, as the CPU twin's `update_running` and
/// `affine_from_stats` do; twice, so the count goes up by 2.
#[test]
fn bn_stats_updates_running_buffers_like_the_cpu() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for channels_last in [false, true] {
        let (n, c, hw) = SHAPES[1];
        let d = ChannelDims {
            n,
            c,
            hw,
            channels_last,
        };
        let x = data(n * c * hw, 5, 3.0);
        let (mut rm, mut rv) = (data(c, 6, 0.0), data(c, 7, 2.0));
        let (gx, grm, grv) = (g.upload(&x), g.upload(&rm), g.upload(&rv));
        let batches = g.upload(&[41i64]);
        let (gm, gv) = (g.zeros::<f32>(c), g.zeros::<f32>(c));
        let run = cuda::BnRunning {
            mean: g.ptr(&grm),
            var: g.ptr(&grv),
            batches: g.ptr(&batches),
            momentum: 0.3,
        };
        let (gamma, beta) = (data(c, 8, 0.5), data(c, 9, 0.0));
        let (ggamma, gbeta) = (g.upload(&gamma), g.upload(&beta));
        let outs = [g.zeros::<f32>(c), g.zeros::<f32>(c), g.zeros::<f32>(c)];
        let aff = cuda::BnAffine {
            gamma: g.ptr(&ggamma),
            beta: g.ptr(&gbeta),
            invstd: g.ptr(&outs[0]),
            scale: g.ptr(&outs[1]),
            shift: g.ptr(&outs[2]),
            eps: 1e-3,
        };
        let stats = cpu::bn_stats(&x, d);
        let (g64, b64) = (as_f64(&gamma), as_f64(&beta));
        let want = cpu::affine_from_stats((&stats.0, &stats.1), Some(&g64), Some(&b64), 1e-3);
        for _ in 0..2 {
            let (pm, pv) = (g.ptr(&gm), g.ptr(&gv));
            cuda::bn_stats(&k, "f32", g.ptr(&gx), d, (pm, pv), &run, &aff).unwrap();
            cpu::update_running(
                (&stats.0, &stats.1),
                n * hw,
                0.3,
                Some(&mut rm),
                Some(&mut rv),
            );
        }
        let what = format!("channels_last={channels_last}");
        g.assert_close(&format!("running mean {what}"), &grm, &rm, 1e-6, 1e-6);
        g.assert_close(&format!("running var {what}"), &grv, &rv, 1e-6, 1e-6);
        assert_eq!(g.download(&batches), vec![43], "num_batches_tracked {what}");
        for (name, got, want) in [
            ("invstd", &outs[0], &want[0]),
            ("scale", &outs[1], &want[1]),
            ("shift", &outs[2], &want[2]),
        ] {
            let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
            g.assert_close(&format!("{name} {what}"), got, &want, 1e-5, 1e-5);
        }
    }
}
