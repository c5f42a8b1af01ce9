//! Engine benchmarks: matmul, conv2d on ResNet layer shapes (NCHW and NHWC), fused vs unfused
//! BN+ReLU, fused vs unfused attention at vit_tiny's shape, resnet18/resnet50 forward and training
//! steps (forward, backward, SGD step), and training steps of one small model per timm family
//! (`models`). With
//! feature `libtorch` each group also runs the same shapes through libtorch in this process
//! (`libtorch/...` ids; `scripts/bench/libtorch.sh` runs it and prints the ratios for BENCHMARKS.md).

use criterion::measurement::WallTime;
use criterion::{criterion_group, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use kiln::engine::{BatchNormArgs, Conv2dParams, DType, MemoryFormat, Tensor};
use kiln::nn::{create_model, Model, ModelArgs};
use kiln::train::optim::{create_optimizer, OptimizerConfig};
use std::time::Duration;

#[cfg(feature = "libtorch")]
mod libtorch;

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, DType::F32, seed).unwrap()
}

fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul");
    for n in [512, 1024, 2048] {
        let (a, b) = (randn(&[n, n], 1), randn(&[n, n], 2));
        g.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| a.matmul(&b).unwrap())
        });
        #[cfg(feature = "libtorch")]
        libtorch::matmul(&mut g, n);
    }
    g.finish();
}

/// (name, channels, spatial, kernel, stride, padding, input channels) for batch 32.
const CONV_SHAPES: [(&str, usize, usize, usize, usize, usize, usize); 5] = [
    ("stem7x7s2", 64, 224, 7, 2, 3, 3),
    ("64ch56", 64, 56, 3, 1, 1, 64),
    ("128ch28", 128, 28, 3, 1, 1, 128),
    ("256ch14", 256, 14, 3, 1, 1, 256),
    ("512ch7", 512, 7, 3, 1, 1, 512),
];

fn conv(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    for (name, oc, hw, k, s, p, ic) in CONV_SHAPES {
        let params = Conv2dParams {
            stride: [s, s],
            padding: [p, p],
            ..Default::default()
        };
        for format in [MemoryFormat::Contiguous, MemoryFormat::ChannelsLast] {
            let tag = if format == MemoryFormat::ChannelsLast {
                "nhwc"
            } else {
                "nchw"
            };
            let x = randn(&[32, ic, hw, hw], 3)
                .to_memory_format(format)
                .unwrap();
            let w = randn(&[oc, ic, k, k], 4).to_memory_format(format).unwrap();
            g.bench_function(format!("fwd/{name}/{tag}"), |b| {
                b.iter(|| x.conv2d(&w, None, params).unwrap())
            });
            let (xg, wg) = (x.detach(), w.detach());
            xg.requires_grad_(true);
            wg.requires_grad_(true);
            g.bench_function(format!("fwd_bwd/{name}/{tag}"), |b| {
                b.iter(|| {
                    let y = xg.conv2d(&wg, None, params).unwrap();
                    y.sum_all().unwrap().backward().unwrap();
                })
            });
            #[cfg(feature = "libtorch")]
            libtorch::conv(
                &mut g,
                libtorch::ConvCase {
                    name,
                    dims: [oc, ic, hw, k, s, p],
                    nhwc: format == MemoryFormat::ChannelsLast,
                },
            );
        }
    }
    g.finish();
}

fn bn_relu(c: &mut Criterion) {
    let mut g = c.benchmark_group("bn_relu");
    g.sample_size(20);
    let x = randn(&[32, 64, 56, 56], 5)
        .to_memory_format(MemoryFormat::ChannelsLast)
        .unwrap();
    x.requires_grad_(true);
    let (w, b) = (randn(&[64], 6), randn(&[64], 7));
    let args = BatchNormArgs::batch_stats(Some(&w), Some(&b));
    g.bench_function("fused_fwd_bwd", |bench| {
        bench.iter(|| {
            x.bn_relu(args)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
        })
    });
    g.bench_function("unfused_fwd_bwd", |bench| {
        bench.iter(|| {
            x.batch_norm(args)
                .unwrap()
                .relu()
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
        })
    });
    #[cfg(feature = "libtorch")]
    libtorch::bn_relu(&mut g);
    g.finish();
}

/// Fused `scaled_dot_product_attention` against the matmul + softmax + matmul it replaced in
/// nn's ViT, at vit_tiny's per-block shape q, k, v [8, 3, 197, 64] f32.
fn attention(c: &mut Criterion) {
    let mut g = c.benchmark_group("attention");
    g.sample_size(20);
    let shape = [8, 3, 197, 64];
    let (q, k, v) = (randn(&shape, 9), randn(&shape, 10), randn(&shape, 11));
    let unfused = |q: &Tensor, k: &Tensor, v: &Tensor| {
        q.mul_scalar(0.125)?
            .matmul(&k.transpose(-2, -1)?)?
            .softmax(-1)?
            .matmul(v)
    };
    let fused = |q: &Tensor, k: &Tensor, v: &Tensor| {
        Tensor::scaled_dot_product_attention(q, k, v, None, false)
    };
    g.bench_function("fused_fwd", |b| b.iter(|| fused(&q, &k, &v).unwrap()));
    g.bench_function("unfused_fwd", |b| b.iter(|| unfused(&q, &k, &v).unwrap()));
    for t in [&q, &k, &v] {
        t.requires_grad_(true);
    }
    let fwd_bwd = |y: Tensor| y.sum_all().unwrap().backward().unwrap();
    g.bench_function("fused_fwd_bwd", |b| {
        b.iter(|| fwd_bwd(fused(&q, &k, &v).unwrap()))
    });
    g.bench_function("unfused_fwd_bwd", |b| {
        b.iter(|| fwd_bwd(unfused(&q, &k, &v).unwrap()))
    });
    g.finish();
}

/// A training step at lr 0.1: forward, label-smoothed (0.1) cross-entropy, backward, and timm's
/// `sgd` (Nesterov, momentum 0.9, weight decay 2e-5 off biases and norms), as `{name}/train_step`.
fn bench_train_step(g: &mut BenchmarkGroup<WallTime>, name: &str, model: &dyn Model, x: &Tensor) {
    let target = Tensor::from_vec((0..32).map(|i| i % 1000).collect::<Vec<i64>>(), &[32]).unwrap();
    let opt = OptimizerConfig {
        opt: "sgd".into(),
        momentum: 0.9,
        weight_decay: 2e-5,
        ..OptimizerConfig::default()
    };
    let mut optim = create_optimizer(&opt, model.named_parameters()).unwrap();
    g.throughput(Throughput::Elements(32));
    g.bench_function(format!("{name}/train_step"), |b| {
        b.iter(|| {
            let loss = model
                .forward(x)
                .unwrap()
                .cross_entropy(&target, 0.1)
                .unwrap();
            optim.zero_grad();
            loss.backward().unwrap();
            optim.step(0.1).unwrap();
        })
    });
}

fn train_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("resnet");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(2));
    for name in ["resnet18", "resnet50"] {
        let mut model = create_model(name, &ModelArgs::default()).unwrap();
        model.set_memory_format(MemoryFormat::ChannelsLast).unwrap();
        let x = randn(&[32, 3, 64, 64], 8)
            .to_memory_format(MemoryFormat::ChannelsLast)
            .unwrap();
        bench_train_step(&mut g, name, model.as_ref(), &x);
        model.set_training(false);
        g.bench_function(format!("{name}/forward"), |b| {
            b.iter(|| {
                let _guard = kiln::engine::no_grad();
                model.forward(&x).unwrap()
            })
        });
        #[cfg(feature = "libtorch")]
        libtorch::resnet(&mut g, name);
    }
    g.finish();
}

/// timm's small models the `models` group trains: one per family, with the side of its square
/// input (64, or 56 for EVA-02's 14-pixel patches).
const MODELS: [(&str, usize); 14] = [
    ("efficientnet_b0", 64),
    ("mobilenetv3_large_100", 64),
    ("convnext_atto", 64),
    ("vit_tiny_patch16_224", 64),
    ("resnest14d", 64),
    ("regnety_002", 64),
    ("repvgg_a0", 64),
    ("densenet121", 64),
    ("efficientnetv2_rw_t", 64),
    ("mobilenetv4_conv_small", 64),
    ("swin_tiny_patch4_window7_224", 64),
    ("eva02_tiny_patch14_224", 56),
    ("deit_tiny_patch16_224", 64),
    ("vgg11_bn", 64),
];

/// Whether `name` is a transformer that takes its input size as an argument and runs NCHW.
fn is_transformer(name: &str) -> bool {
    ["vit_", "deit", "swin", "eva"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Training steps of timm's small models ([`MODELS`]) at batch 32 (the transformers built for
/// their input size), the CNNs channels-last; libtorch's twins are timm's own models as
/// TorchScript (`scripts/bench/torchscript_models.py`).
fn models(c: &mut Criterion) {
    let mut g = c.benchmark_group("models");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(2));
    for (name, size) in MODELS {
        let transformer = is_transformer(name);
        let args = ModelArgs {
            img_size: transformer.then_some(size),
            ..ModelArgs::default()
        };
        let mut model = create_model(name, &args).unwrap();
        let format = match transformer {
            true => MemoryFormat::Contiguous,
            false => MemoryFormat::ChannelsLast,
        };
        model.set_memory_format(format).unwrap();
        let x = randn(&[32, 3, size, size], 8)
            .to_memory_format(format)
            .unwrap();
        bench_train_step(&mut g, name, model.as_ref(), &x);
        #[cfg(feature = "libtorch")]
        libtorch::timm_model(&mut g, name, !transformer, size as i64);
    }
    g.finish();
}

criterion_group!(benches, matmul, conv, bn_relu, attention, train_step, models);

/// criterion_main!, with kiln's `main` set-up first: the bench thread computes (as in `kiln
/// train`), and libtorch gets the same thread count.
fn main() {
    kiln_engine::cpu::threads::compute_on_calling_thread();
    kiln_engine::cpu::heap::keep_freed_blocks();
    #[cfg(feature = "libtorch")]
    libtorch::init();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
