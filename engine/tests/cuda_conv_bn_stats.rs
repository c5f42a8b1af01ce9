//! BatchNorm statistics from the convolution's epilogue: `conv2d_with_stats` on kiln's
//! tensor-core forward (`conv_tc_fwd_stats_*`) hands a training BN per-channel partials that
//! `bn_finalize_tiles_f32` turns into the batch mean and variance, so `bn_partials` (a full read
//! of the conv output) does not run. Checked against statistics computed on the host from the
//! stored output in f64, against the unfused path (`KILN_CONV_BN_STATS` off) and against the CPU
//! backend, forward and backward, f16 and bf16, NCHW and NHWC, on shapes that leave partial
//! pixel and channel tiles. On the emulator the launches are counted (`KILN_EMU_STATS`) to prove
//! which path ran; on a GPU (cuDNN switched off so kiln's kernels serve) only values are checked.

use kiln_engine::{ChannelStats, Conv2dParams, DType, Device, MemoryFormat, Tensor};

mod common;
use common::conv_bn::{close_scaled, conv_params, setup, values, Bn};
use common::{kernel, launches};

const CUDA: Device = Device::Cuda(0);

/// `t` on the GPU in `format`.
fn gpu(t: &Tensor, format: MemoryFormat) -> Tensor {
    t.to_device(CUDA).unwrap().to_memory_format(format).unwrap()
}

fn format(channels_last: bool) -> MemoryFormat {
    if channels_last {
        MemoryFormat::ChannelsLast
    } else {
        MemoryFormat::Contiguous
    }
}

/// Kernel names of `lines`.
fn names(lines: &[String]) -> Vec<String> {
    lines.iter().map(|l| kernel(l).to_owned()).collect()
}

/// Per-channel mean and biased variance of an [N, C, H, W] tensor, in f64 on the host.
fn naive_stats(y: &Tensor) -> (Vec<f64>, Vec<f64>) {
    let s = y.shape().to_vec();
    let (n, c, hw) = (s[0], s[1], s[2] * s[3]);
    let v = y.contiguous().unwrap().to_vec_f32().unwrap();
    let mut mean = vec![0.0; c];
    let mut var = vec![0.0; c];
    for ch in 0..c {
        let vals: Vec<f64> = (0..n)
            .flat_map(|i| (0..hw).map(move |p| (i * c + ch) * hw + p))
            .map(|k| v[k] as f64)
            .collect();
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        mean[ch] = m;
        var[ch] = vals.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / vals.len() as f64;
    }
    (mean, var)
}

/// Asserts |got - want| <= atol + rtol·|want| element-wise, naming the first mismatches.
fn close(what: &str, got: &[f32], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let bad: Vec<String> = got
        .iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (g, w))| (**g as f64 - **w).abs() > atol + rtol * w.abs())
        .take(5)
        .map(|(i, (g, w))| format!("[{i}] {g} vs {w}"))
        .collect();
    assert!(bad.is_empty(), "{what}: {bad:?}");
}

/// A convolution case: x and w shapes, parameters.
struct Case {
    x: [usize; 4],
    w: [usize; 4],
    p: Conv2dParams,
}

fn cases() -> Vec<Case> {
    let p = conv_params;
    vec![
        // 297 pixels (a partial 41-pixel tile), 24 channels (a partial channel tile).
        Case {
            x: [3, 16, 9, 11],
            w: [24, 16, 3, 3],
            p: p(1, 1, 1),
        },
        // Two groups of 35 output channels, stride 2: 50 pixels, channel offsets per group.
        Case {
            x: [2, 32, 10, 10],
            w: [70, 16, 1, 1],
            p: p(2, 0, 2),
        },
        // 400 pixels: six whole tiles and one of 16; 64 channels, one whole channel tile.
        Case {
            x: [1, 24, 20, 20],
            w: [64, 24, 3, 3],
            p: p(1, 1, 1),
        },
    ]
}

#[test]
fn epilogue_statistics_equal_the_stored_outputs_statistics() {
    let Some((stats, _lock)) = setup("conv-bn") else {
        return;
    };
    for (ci, case) in cases().iter().enumerate() {
        for dtype in [DType::F16, DType::BF16] {
            for channels_last in [false, true] {
                let what = format!("case {ci} {dtype:?} channels_last={channels_last}");
                let fmt = format(channels_last);
                let (xc, wc) = (
                    values(&case.x, 10 + ci as u64, dtype),
                    values(&case.w, 20, dtype),
                );
                let (x, w) = (gpu(&xc, fmt), gpu(&wc, fmt));
                let bn = Bn::new(case.w[0], CUDA, (0.0, 1.0), 1.0);
                let mut out = None;
                let lines = launches(&stats, || {
                    let (y, s) = x.conv2d_with_stats(&w, case.p).unwrap();
                    let z = y
                        .batch_norm_act_with_stats(bn.args(), None, false, None, s.as_ref())
                        .unwrap();
                    out = Some((y, s.is_some(), z));
                });
                let (y, had_stats, z) = out.unwrap();
                assert!(
                    had_stats,
                    "{what}: no statistics from the tensor-core forward"
                );
                let layout = if channels_last { "nhwc" } else { "nchw" };
                let ty = if dtype == DType::F16 { "f16" } else { "bf16" };
                let ran = names(&lines);
                println!("{what}: {ran:?}");
                if !ran.is_empty() {
                    let conv = format!("conv_tc_fwd_stats_{layout}_{ty}");
                    // Either tensor-core tile (`_t128`: the 128×128 one).
                    let conv_ran = ran.iter().any(|k| k.replace("_t128", "") == conv);
                    assert!(conv_ran, "{what}: {ran:?}");
                    assert!(ran.iter().any(|k| k == "bn_finalize_tiles_f32"), "{ran:?}");
                    assert!(!ran.iter().any(|k| k.starts_with("bn_partials")), "{ran:?}");
                }
                // y itself against the CPU's f32 convolution of the same (rounded) values.
                let want = xc
                    .to_dtype(DType::F32)
                    .unwrap()
                    .conv2d(&wc.to_dtype(DType::F32).unwrap(), None, case.p)
                    .unwrap();
                let tol = if dtype == DType::F16 { 2e-3 } else { 1.6e-2 };
                close_scaled(
                    &format!("{what}: y"),
                    &y.to_dtype(DType::F32).unwrap(),
                    &want,
                    tol,
                );
                // The statistics against those of the stored y (momentum 1: the running buffers
                // are the batch mean and the unbiased variance).
                let (mean, var) = naive_stats(&y);
                let m = (case.x[0] * y.shape()[2] * y.shape()[3]) as f64;
                let unbiased: Vec<f64> = var.iter().map(|v| v * m / (m - 1.0)).collect();
                close(
                    &format!("{what}: mean"),
                    &bn.mean.to_vec_f32().unwrap(),
                    &mean,
                    1e-6,
                    1e-5,
                );
                close(
                    &format!("{what}: var"),
                    &bn.var.to_vec_f32().unwrap(),
                    &unbiased,
                    1e-6,
                    1e-5,
                );
                // The normalized output against BN's own statistics pass over the same y.
                let bn2 = Bn::new(case.w[0], CUDA, (0.0, 1.0), 1.0);
                let z2 = y.batch_norm(bn2.args()).unwrap();
                let z_tol = if dtype == DType::F16 { 2e-3 } else { 1.6e-2 };
                close_scaled(&format!("{what}: BN(y)"), &z, &z2, z_tol);
            }
        }
    }
}

/// conv → BN + residual + ReLU → Σ(out·seed), backward: outputs and every gradient.
struct Run {
    out: Tensor,
    grads: Vec<Tensor>,
    running: [Tensor; 2],
}

fn conv_bn_step(
    x: &Tensor,
    w: &Tensor,
    res: &Tensor,
    seed: &Tensor,
    p: Conv2dParams,
    dev: Device,
    fused: bool,
) -> Run {
    let bn = Bn::new(w.shape()[0], dev, (0.0, 1.0), 1.0);
    let (y, stats): (Tensor, Option<ChannelStats>) = if fused {
        x.conv2d_with_stats(w, p).unwrap()
    } else {
        (x.conv2d(w, None, p).unwrap(), None)
    };
    let out = y
        .batch_norm_act_with_stats(bn.args(), Some(res), true, None, stats.as_ref())
        .unwrap();
    out.to_dtype(DType::F32)
        .unwrap()
        .mul(seed)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let grads = [x, w, &bn.gamma, &bn.beta]
        .iter()
        .map(|t| t.grad().expect("a gradient"))
        .collect();
    Run {
        out,
        grads,
        running: [bn.mean.clone(), bn.var.clone()],
    }
}

#[test]
fn bn_through_epilogue_statistics_matches_unfused_and_cpu_forward_and_backward() {
    let Some((stats, _lock)) = setup("conv-bn") else {
        return;
    };
    let case = &cases()[0];
    let (n, oc) = (case.x[0], case.w[0]);
    let out_shape = [n, oc, case.x[2], case.x[3]];
    for dtype in [DType::F16, DType::BF16] {
        for channels_last in [false, true] {
            let what = format!("{dtype:?} channels_last={channels_last}");
            let fmt = format(channels_last);
            let (xc, wc, rc) = (
                values(&case.x, 1, dtype),
                values(&case.w, 2, dtype),
                values(&out_shape, 3, dtype),
            );
            let seedc = values(&out_shape, 4, DType::F32);
            let leaf = |t: &Tensor| {
                let t = gpu(t, fmt);
                t.requires_grad_(true);
                t
            };
            let seed = gpu(&seedc, fmt);
            let res = gpu(&rc, fmt);
            let (x, w) = (leaf(&xc), leaf(&wc));
            let mut fused = None;
            let fused_lines = launches(&stats, || {
                fused = Some(conv_bn_step(&x, &w, &res, &seed, case.p, CUDA, true))
            });
            // The same through BN's own statistics pass, with the switch off.
            kiln_engine::cuda::set_conv_bn_stats_enabled(false);
            let (x2, w2) = (leaf(&xc), leaf(&wc));
            let mut off = None;
            let off_lines = launches(&stats, || {
                off = Some(conv_bn_step(&x2, &w2, &res, &seed, case.p, CUDA, true))
            });
            kiln_engine::cuda::set_conv_bn_stats_enabled(true);
            let (fused, off) = (fused.unwrap(), off.unwrap());
            let (ran, ran_off) = (names(&fused_lines), names(&off_lines));
            println!("{what}: fused {ran:?}\n  unfused {ran_off:?}");
            if !ran.is_empty() {
                let partials =
                    |r: &[String]| r.iter().filter(|k| k.starts_with("bn_partials")).count();
                let stats_conv =
                    |r: &[String]| r.iter().any(|k| k.starts_with("conv_tc_fwd_stats"));
                // Only the backward's reduction reads activations; the forward's is gone.
                assert_eq!(partials(&ran), 1, "{what}: {ran:?}");
                assert_eq!(partials(&ran_off), 2, "{what}: {ran_off:?}");
                assert!(
                    stats_conv(&ran) && !stats_conv(&ran_off),
                    "{ran:?} / {ran_off:?}"
                );
            }
            // The CPU backend in f32 on the same rounded values.
            let cpu_leaf = |t: &Tensor| {
                let t = t.to_dtype(DType::F32).unwrap();
                t.requires_grad_(true);
                t
            };
            let (xc32, wc32) = (cpu_leaf(&xc), cpu_leaf(&wc));
            let cpu = conv_bn_step(
                &xc32,
                &wc32,
                &rc.to_dtype(DType::F32).unwrap(),
                &seedc,
                case.p,
                Device::Cpu,
                false,
            );
            let (tight, loose) = if dtype == DType::F16 {
                (4e-3, 2e-2)
            } else {
                (2e-2, 8e-2)
            };
            let names = ["dx", "dw", "dγ", "dβ"];
            let as_f32 = |t: &Tensor| {
                t.to_device(Device::Cpu)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap()
            };
            close_scaled(
                &format!("{what}: out vs unfused"),
                &as_f32(&fused.out),
                &as_f32(&off.out),
                tight,
            );
            close_scaled(
                &format!("{what}: out vs cpu"),
                &as_f32(&fused.out),
                &cpu.out,
                loose,
            );
            for (i, name) in names.iter().enumerate() {
                let g = as_f32(&fused.grads[i]);
                close_scaled(
                    &format!("{what}: {name} vs unfused"),
                    &g,
                    &as_f32(&off.grads[i]),
                    tight,
                );
                close_scaled(&format!("{what}: {name} vs cpu"), &g, &cpu.grads[i], loose);
            }
            for (i, name) in ["running mean", "running var"].iter().enumerate() {
                let r = as_f32(&fused.running[i]);
                close_scaled(
                    &format!("{what}: {name} vs unfused"),
                    &r,
                    &as_f32(&off.running[i]),
                    1e-5,
                );
                close_scaled(
                    &format!("{what}: {name} vs cpu"),
                    &r,
                    &cpu.running[i],
                    loose,
                );
            }
        }
    }
}

#[test]
fn no_statistics_where_the_epilogue_does_not_serve() {
    let Some((_stats, _lock)) = setup("conv-bn") else {
        return;
    };
    let p = conv_params(1, 1, 1);
    // f32 runs the SIMT kernels; a depthwise conv its own kernel; the CPU has no epilogue.
    let (x, w) = (
        values(&[2, 16, 5, 5], 5, DType::F32),
        values(&[24, 16, 3, 3], 6, DType::F32),
    );
    let (_, s) = gpu(&x, MemoryFormat::Contiguous)
        .conv2d_with_stats(&gpu(&w, MemoryFormat::Contiguous), p)
        .unwrap();
    assert!(s.is_none(), "f32");
    let dw = values(&[16, 1, 3, 3], 7, DType::F16);
    let p_dw = Conv2dParams { groups: 16, ..p };
    let x16 = gpu(&x.to_dtype(DType::F16).unwrap(), MemoryFormat::Contiguous);
    let (_, s) = x16
        .conv2d_with_stats(&gpu(&dw, MemoryFormat::Contiguous), p_dw)
        .unwrap();
    assert!(s.is_none(), "depthwise");
    let (_, s) = x
        .to_dtype(DType::F16)
        .unwrap()
        .conv2d_with_stats(&w.to_dtype(DType::F16).unwrap(), p)
        .unwrap();
    assert!(s.is_none(), "cpu");
    // Statistics of one tensor do not apply to another: the BN computes its own.
    let w16 = gpu(&w.to_dtype(DType::F16).unwrap(), MemoryFormat::Contiguous);
    let (y, s) = x16.conv2d_with_stats(&w16, p).unwrap();
    let s = s.expect("the tensor-core forward's statistics");
    assert!(s.describes(&y));
    let other = y.mul_scalar(2.0).unwrap();
    assert!(!s.describes(&other));
    let (bn, bn2) = (
        Bn::new(24, CUDA, (0.0, 1.0), 1.0),
        Bn::new(24, CUDA, (0.0, 1.0), 1.0),
    );
    other
        .batch_norm_act_with_stats(bn.args(), None, false, None, Some(&s))
        .unwrap();
    other.batch_norm(bn2.args()).unwrap();
    close_scaled("foreign statistics ignored", &bn.var, &bn2.var, 1e-6);
}

/// One process's "all-reduce": the sum over a job of one is the values themselves.
#[derive(Debug)]
struct OneProcess;

impl kiln_engine::CrossReplicaSum for OneProcess {
    fn sum(&self, _values: &mut [f64]) -> kiln_engine::Result<()> {
        Ok(())
    }
}

#[test]
fn synced_bn_takes_the_epilogue_statistics() {
    let Some((stats, _lock)) = setup("conv-bn") else {
        return;
    };
    let case = &cases()[0];
    let fmt = MemoryFormat::ChannelsLast;
    let (x, w) = (
        gpu(&values(&case.x, 7, DType::F16), fmt),
        gpu(&values(&case.w, 8, DType::F16), fmt),
    );
    let sync: Option<std::sync::Arc<dyn kiln_engine::CrossReplicaSum>> =
        Some(std::sync::Arc::new(OneProcess));
    let (y, s) = x.conv2d_with_stats(&w, case.p).unwrap();
    let (bn, own) = (
        Bn::new(case.w[0], CUDA, (0.0, 1.0), 1.0),
        Bn::new(case.w[0], CUDA, (0.0, 1.0), 1.0),
    );
    let mut z = None;
    let lines = launches(&stats, || {
        z = Some(
            y.batch_norm_act_with_stats(bn.args(), None, true, sync.clone(), s.as_ref())
                .unwrap(),
        )
    });
    let ran = names(&lines);
    if !ran.is_empty() {
        assert!(ran.iter().any(|k| k == "bn_finalize_tiles_f32"), "{ran:?}");
        assert!(!ran.iter().any(|k| k.starts_with("bn_partials")), "{ran:?}");
    }
    let z2 = y
        .batch_norm_act_synced(own.args(), None, true, sync)
        .unwrap();
    let as_f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
    close_scaled("synced BN(y)", &as_f32(&z.unwrap()), &as_f32(&z2), 2e-3);
    close_scaled("synced running mean", &bn.mean, &own.mean, 1e-5);
    close_scaled("synced running var", &bn.var, &own.var, 1e-5);
}
