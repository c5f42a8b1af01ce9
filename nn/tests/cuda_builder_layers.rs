//! The EfficientNet/MobileNet builder's and ConvNeXt V2's composed layers on the CUDA backend (the
//! emulator in CI) against the CPU backend, forward and backward, NCHW and channels-last:
//! MixedConv2d (the channel split as strided views, one conv per group, the concatenation),
//! MultiQueryAttention2d (one key and value head expanded over the query heads into the fused
//! attention, after a strided depthwise conv and BatchNorm) and GlobalResponseNorm (spatial
//! norms from squares, sums and a masked square root, their mean over the channels). Whole models are left to the model
//! steps of cuda_resnet.rs: at the emulator's 32² inputs the ReLU models' train-mode BatchNorms
//! over 4 values flip ReLU gates on rounding, so their gradients differ by 1e-1 even between the
//! CPU's own two layouts (mixnet_s's `bn2.bias`, measured).
//!
//! Tolerance: 1e-5 of each tensor's largest value; these layers sum at most a few hundred
//! products per output, in different orders on the two backends. A gradient that vanishes
//! analytically (the keys' BatchNorm bias: a shift of every key leaves the softmax unchanged) is
//! rounding noise on both and is held to the largest gradient's scale instead.

use kiln_engine::{DType, Device, Generator, MemoryFormat, Tensor};
use kiln_nn::layers::{GlobalResponseNorm, MixedConv2d, MqaCfg, MultiQueryAttention2d, PadType};
use kiln_nn::Module;
use std::io::Write;

const TOL: f64 = 1e-5;
/// A tensor this far below the largest gradient has vanished analytically.
const VANISHING: f64 = 1e-4;

fn largest(v: &[f32]) -> f64 {
    v.iter().fold(1e-12f64, |m, v| m.max(v.abs() as f64))
}

/// Output, input gradient and parameter gradients of `m` for input `x` and the loss
/// Σ y · `w`, all on the host.
fn run(m: &dyn Module, x: &Tensor, w: &Tensor) -> Vec<(String, Vec<f32>)> {
    let x = x.detach();
    x.requires_grad_(true);
    let y = m.forward(&x).unwrap();
    y.mul(&w.to_device(y.device()).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let mut out = vec![
        ("output".to_string(), y.to_vec_f32().unwrap()),
        (
            "input grad".to_string(),
            x.grad().unwrap().to_vec_f32().unwrap(),
        ),
    ];
    for t in m.named_parameters() {
        out.push((t.name, t.tensor.grad().unwrap().to_vec_f32().unwrap()));
    }
    out
}

/// `build` twice from one seed, one copy on the device; both runs agree within [`TOL`].
fn backends_agree<M: Module>(
    what: &str,
    build: &dyn Fn() -> M,
    shape: &[usize],
    w_shape: &[usize],
) {
    if let Err(e) = kiln_engine::cuda::device(0) {
        let _ = writeln!(std::io::stderr(), "skipped: {e}");
        return;
    }
    let mut g = Generator::new(11);
    let x = g.normal(shape, 0.0, 1.0, DType::F32).unwrap();
    let w = g.normal(w_shape, 0.0, 1.0, DType::F32).unwrap();
    for format in [MemoryFormat::Contiguous, MemoryFormat::ChannelsLast] {
        // this thread's own stream: tests run in parallel
        kiln_engine::manual_seed_thread(0);
        let mut cpu = build();
        kiln_engine::manual_seed_thread(0);
        let mut gpu = build();
        cpu.set_memory_format(format).unwrap();
        gpu.set_memory_format(format).unwrap();
        gpu.to_device(Device::Cuda(0)).unwrap();
        let x = x.to_memory_format(format).unwrap();
        let want = run(&cpu, &x, &w);
        let got = run(&gpu, &x.to_device(Device::Cuda(0)).unwrap(), &w);
        let grads = want
            .iter()
            .skip(1)
            .map(|(_, b)| largest(b))
            .fold(0.0, f64::max);
        for ((name, a), (_, b)) in got.iter().zip(&want) {
            let vanished = largest(b) < VANISHING * grads;
            let scale = if vanished { grads } else { largest(b) };
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let err = (*x as f64 - *y as f64).abs() / scale;
                assert!(
                    err <= TOL,
                    "{what} {format:?} {name}[{i}]: cuda {x}, cpu {y} ({err:.1e})"
                );
            }
        }
    }
}

#[test]
fn mixed_conv2d_matches_the_cpu() {
    // mixnet's depthwise 3/5/7 split of 20 channels (8, 6, 6) at stride 2, and its grouped
    // pointwise conv (two dense 1×1 halves)
    backends_agree(
        "depthwise k3.5.7",
        &|| MixedConv2d::new(20, 20, &[3, 5, 7], 2, PadType::Symmetric, true).unwrap(),
        &[2, 20, 9, 9],
        &[2, 20, 5, 5],
    );
    backends_agree(
        "pointwise a1.1",
        &|| MixedConv2d::new(20, 30, &[1, 1], 1, PadType::Same, false).unwrap(),
        &[2, 20, 6, 6],
        &[2, 30, 6, 6],
    );
}

#[test]
fn multi_query_attention2d_matches_the_cpu() {
    // mobilenetv4_hybrid_medium's stage-2 attention at a quarter of its width: 4 query heads of
    // 16 over one shared key and value head, keys and values downsampled by a 3×3 stride-2
    // depthwise conv and BatchNorm (train mode: batch statistics)
    let cfg = MqaCfg {
        dim: 40,
        dim_out: 40,
        num_heads: 4,
        key_dim: 16,
        kv_stride: 2,
        dw_kernel: 3,
        pad: PadType::Symmetric,
        bn_eps: 1e-5,
    };
    backends_agree(
        "mqa kv_stride 2",
        &|| MultiQueryAttention2d::new(&cfg).unwrap(),
        &[2, 40, 6, 6],
        &[2, 40, 6, 6],
    );
    let plain = MqaCfg {
        kv_stride: 1,
        ..cfg
    };
    backends_agree(
        "mqa kv_stride 1",
        &|| MultiQueryAttention2d::new(&plain).unwrap(),
        &[2, 40, 4, 4],
        &[2, 40, 4, 4],
    );
}

#[test]
fn global_response_norm_matches_the_cpu() {
    // convnextv2_atto's first-stage MLP width at a quarter (40 hidden channels), γ and β drawn
    // rather than timm's zeros so that the normalized branch counts
    let grn = |channels_last: bool| {
        let mut g = GlobalResponseNorm::new(40, channels_last).unwrap();
        g.weight = Tensor::randn(&[40], DType::F32, 21).unwrap();
        g.bias = Tensor::randn(&[40], DType::F32, 22).unwrap();
        g.weight.requires_grad_(true);
        g.bias.requires_grad_(true);
        g
    };
    // the 1×1-conv MLP's form, [N, C, H, W] in either memory format
    backends_agree("grn nchw", &|| grn(false), &[2, 40, 6, 5], &[2, 40, 6, 5]);
    // the linear MLP's form, [N, H, W, C]
    backends_agree("grn nhwc", &|| grn(true), &[2, 6, 5, 40], &[2, 6, 5, 40]);
}
