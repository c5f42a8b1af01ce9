//! BatchNorm apply + ReLU in the next convolution's prologue: `bn_act_conv2d` on kiln's
//! tensor-core kernels (`conv_tc_fwd_bnact_*`, `conv_tc_bwd_filter_bnact_*`, the BN backward
//! recomputing the ReLU mask from its input) against the unfused path (`KILN_CONV_BN_PROLOGUE`
//! off: `bn_act_fwd` then the convolution) and the CPU backend in f32: the output, every
//! gradient and the running statistics; f16 and bf16, NCHW and NHWC, stride 1 and 2, padding
//! (where the convolution's zeros are h's, not act(0·scale + shift)), partial tiles, groups, 1x1.
//! On the emulator the launches prove which path ran; on a GPU (cuDNN off) only values are checked.

use kiln_engine::{BatchNormArgs, Conv2dParams, DType, Device, MemoryFormat, Tensor};

mod common;
use common::conv_bn::{close_scaled, conv_params, setup, values, Bn};
use common::{kernel, launches};

const CUDA: Device = Device::Cuda(0);

/// z = conv(act(BN(y)), w), loss Σ(z·seed), backward: z, [dy, dw, dγ, dβ], running mean and
/// var. `fused`: through `bn_act_conv2d`; else BN then conv2d.
fn step(
    y: &Tensor,
    w: &Tensor,
    seed: &Tensor,
    p: Conv2dParams,
    relu: bool,
    fused: bool,
) -> Vec<Tensor> {
    let bn = Bn::new(y.shape()[1], y.device(), (0.1, 0.9), 0.3);
    let z = if fused {
        y.bn_act_conv2d(bn.args(), relu, None, w, p).unwrap().0
    } else {
        let h = y.batch_norm_act(bn.args(), None, relu).unwrap();
        h.conv2d(w, None, p).unwrap()
    };
    let loss = z
        .to_dtype(DType::F32)
        .unwrap()
        .mul(seed)
        .unwrap()
        .sum_all()
        .unwrap();
    loss.backward().unwrap();
    let mut out = vec![z];
    out.extend([y, w, &bn.gamma, &bn.beta].map(|t| t.grad().expect("a gradient")));
    out.extend([bn.mean.clone(), bn.var.clone()]);
    out
}

struct Case {
    y: [usize; 4],
    w: [usize; 4],
    p: Conv2dParams,
    relu: bool,
}

fn cases() -> Vec<Case> {
    let p = conv_params;
    vec![
        // 297 output pixels (a partial tile), 24 output channels (a partial channel tile).
        Case {
            y: [3, 16, 9, 11],
            w: [24, 16, 3, 3],
            p: p(1, 1, 1),
            relu: true,
        },
        // Stride 2 with padding: 25 output pixels, every one near a border; no ReLU, so the
        // padding's zeros differ from act(0·scale + shift) = shift everywhere.
        Case {
            y: [2, 24, 9, 9],
            w: [40, 24, 3, 3],
            p: p(2, 1, 1),
            relu: false,
        },
        // Two groups of 16 input and 24 output channels.
        Case {
            y: [2, 32, 6, 7],
            w: [48, 16, 3, 3],
            p: p(1, 1, 2),
            relu: true,
        },
        // A 1x1 convolution (a bottleneck's bn2 → conv3): 30 pixels, 40 output channels.
        Case {
            y: [2, 32, 5, 6],
            w: [40, 32, 1, 1],
            p: p(1, 0, 1),
            relu: true,
        },
    ]
}

#[test]
fn bn_prologue_matches_unfused_and_cpu_forward_and_backward() {
    let Some((stats, _lock)) = setup("bn-prologue") else {
        return;
    };
    let names = ["z", "dy", "dw", "dγ", "dβ", "running mean", "running var"];
    for (ci, case) in cases().iter().enumerate() {
        for dtype in [DType::F16, DType::BF16] {
            for channels_last in [false, true] {
                let what = format!("case {ci} {dtype:?} channels_last={channels_last}");
                let fmt = if channels_last {
                    MemoryFormat::ChannelsLast
                } else {
                    MemoryFormat::Contiguous
                };
                let (yc, wc) = (
                    values(&case.y, 10 + ci as u64, dtype),
                    values(&case.w, 20, dtype),
                );
                let z_shape = {
                    let probe = yc.to_dtype(DType::F32).unwrap();
                    let wp = wc.to_dtype(DType::F32).unwrap();
                    probe.conv2d(&wp, None, case.p).unwrap().shape().to_vec()
                };
                let seedc = values(&z_shape, 30, DType::F32);
                let seed = seedc
                    .to_device(CUDA)
                    .unwrap()
                    .to_memory_format(fmt)
                    .unwrap();
                let leaf = |t: &Tensor| {
                    let t = t.to_device(CUDA).unwrap().to_memory_format(fmt).unwrap();
                    t.requires_grad_(true);
                    t
                };
                let (y, w) = (leaf(&yc), leaf(&wc));
                let mut fused = None;
                let lines = launches(&stats, || {
                    fused = Some(step(&y, &w, &seed, case.p, case.relu, true));
                });
                kiln_engine::cuda::set_conv_bn_prologue_enabled(false);
                let (y2, w2) = (leaf(&yc), leaf(&wc));
                let mut off = None;
                let off_lines = launches(&stats, || {
                    off = Some(step(&y2, &w2, &seed, case.p, case.relu, true));
                });
                kiln_engine::cuda::set_conv_bn_prologue_enabled(true);
                // The module's own unfused composition (BN, then conv2d) too.
                let (y3, w3) = (leaf(&yc), leaf(&wc));
                let plain = step(&y3, &w3, &seed, case.p, case.relu, false);
                let (fused, off) = (fused.unwrap(), off.unwrap());
                let ran: Vec<&str> = lines.iter().map(|l| kernel(l)).collect();
                let ran_off: Vec<&str> = off_lines.iter().map(|l| kernel(l)).collect();
                println!("{what}: fused {ran:?}\n  unfused {ran_off:?}");
                if !ran.is_empty() {
                    let layout = if channels_last { "nhwc" } else { "nchw" };
                    let ty = if dtype == DType::F16 { "f16" } else { "bf16" };
                    // The packed NHWC BN kernels stand for the plain ones, the 128×128
                    // tensor-core tile's (`_t128`) for the 64×64 one's.
                    let plain = |n: &str| n.replace("_packed_", "_").replace("_t128", "");
                    let has = |r: &[&str], k: &str| r.iter().any(|n| plain(n) == k);
                    let fwd = format!("conv_tc_fwd_bnact_{layout}_{ty}");
                    let bwd = format!("conv_tc_bwd_filter_bnact_{layout}_{ty}");
                    assert!(has(&ran, &fwd) && has(&ran, &bwd), "{what}: {ran:?}");
                    let act_fwd = format!("bn_act_fwd_{ty}");
                    assert!(!has(&ran, &act_fwd), "{what}: h was stored: {ran:?}");
                    assert!(
                        has(&ran_off, &act_fwd) && !has(&ran_off, &fwd),
                        "{ran_off:?}"
                    );
                }
                // The CPU backend in f32 on the same rounded values.
                let cpu_leaf = |t: &Tensor| {
                    let t = t.to_dtype(DType::F32).unwrap();
                    t.requires_grad_(true);
                    t
                };
                let cpu = step(
                    &cpu_leaf(&yc),
                    &cpu_leaf(&wc),
                    &seedc,
                    case.p,
                    case.relu,
                    true,
                );
                let (tight, loose) = if dtype == DType::F16 {
                    (4e-3, 2e-2)
                } else {
                    (2e-2, 8e-2)
                };
                for (i, name) in names.iter().enumerate() {
                    let g = &fused[i];
                    close_scaled(&format!("{what}: {name} vs switch off"), g, &off[i], tight);
                    close_scaled(
                        &format!("{what}: {name} vs BN, conv2d"),
                        g,
                        &plain[i],
                        tight,
                    );
                    close_scaled(&format!("{what}: {name} vs cpu"), g, &cpu[i], loose);
                }
            }
        }
    }
}

#[test]
fn eval_mode_and_f32_take_the_unfused_path() {
    let Some((stats, _lock)) = setup("bn-prologue") else {
        return;
    };
    let case = &cases()[0];
    let (yc, wc) = (
        values(&case.y, 5, DType::F16),
        values(&case.w, 6, DType::F16),
    );
    for (dtype, training) in [(DType::F16, false), (DType::F32, true)] {
        let (y, w) = (
            yc.to_dtype(dtype).unwrap().to_device(CUDA).unwrap(),
            wc.to_dtype(dtype).unwrap().to_device(CUDA).unwrap(),
        );
        let bn = Bn::new(case.y[1], CUDA, (0.1, 0.9), 0.3);
        let args = BatchNormArgs {
            training,
            ..bn.args()
        };
        let mut z = None;
        let lines = launches(&stats, || {
            z = Some(y.bn_act_conv2d(args, true, None, &w, case.p).unwrap().0);
        });
        let ran: Vec<&str> = lines.iter().map(|l| kernel(l)).collect();
        assert!(
            !ran.iter().any(|k| k.contains("bnact")),
            "{dtype:?}: {ran:?}"
        );
        let want = y
            .batch_norm_act(args, None, true)
            .unwrap()
            .conv2d(&w, None, case.p)
            .unwrap();
        close_scaled(
            &format!("{dtype:?} training={training}"),
            &z.unwrap(),
            &want,
            1e-6,
        );
    }
}
