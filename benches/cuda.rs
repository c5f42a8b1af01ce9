//! GPU benchmarks on `cuda:0`: resnet18 and resnet50 AMP training steps (`cuda_train_step`), the
//! key resnet50 convolution shapes (`cuda_conv`), fused BN+ReLU (`cuda_bn_relu`) and f16 GEMM
//! (`cuda_gemm`), all f16 and channels-last. Every timed iteration ends with a device
//! synchronize, so a figure is the GPU's time, not the launch queue's.
//!
//! With feature `libtorch` each group also runs the same work through libtorch on
//! `tch::Device::Cuda(0)` in this process (`libtorch/...` ids; cuDNN benchmark mode on,
//! channels-last, autocast f16), so criterion prints kiln and libtorch side by side and every
//! figure has its ratio. Criterion does not alternate the two sides; `scripts/gpu-check.sh bench`
//! runs the whole bench `PASSES` times (default 3) and `scripts/bench/ratios.py` keeps each row's
//! lowest median, as `scripts/bench/libtorch.sh` does for `benches/ops.rs`.
//!
//! The training-step twin is torchvision's resnet (tch's `vision::resnet`, timm's architecture at
//! default args, as `benches/ops.rs` uses) with a fixed loss scale instead of a GradScaler (tch
//! has none): scale, backward, unscale every gradient, SGD. Kiln's GradScaler also checks the
//! gradients for overflow, one extra pass over them.
//!
//! On a machine without a CUDA device, or on kiln's CUDA emulator (`cuda-emu`, whose timings mean
//! nothing and take long), the bench says why and registers nothing.
//!
//! ```sh
//! [KILN_BENCH_BATCH=64] cargo bench [--features libtorch] --bench cuda -- --noplot [filter]
//! ```

use criterion::{BenchmarkId, Criterion, Throughput};
use kiln::engine::cuda::CudaDevice;
use kiln::engine::{BatchNormArgs, Conv2dParams, DType, Device, MemoryFormat, Tensor};
use kiln::nn::{create_model, Model, ModelArgs};
use kiln::train::amp::GradScaler;
use kiln::train::optim::{create_optimizer, Optimizer, OptimizerConfig};
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "libtorch")]
#[path = "libtorch/cuda.rs"]
mod libtorch;

const GPU: Device = Device::Cuda(0);

/// The training-step batch: `KILN_BENCH_BATCH`, default 64.
fn batch() -> usize {
    std::env::var("KILN_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// A normal f32 tensor cast to `dtype`, in `format`, on the GPU.
fn gpu_randn(shape: &[usize], dtype: DType, format: MemoryFormat, seed: u64) -> Tensor {
    Tensor::randn(shape, DType::F32, seed)
        .and_then(|t| t.to_dtype(dtype))
        .and_then(|t| t.to_memory_format(format))
        .and_then(|t| t.to_device(GPU))
        .expect("GPU tensor")
}

/// One step of `examples/train_step.rs`: forward under f16 autocast, cross-entropy, backward
/// through the loss scaler, SGD unless the gradients overflowed.
fn step(
    model: &dyn Model,
    optim: &mut dyn Optimizer,
    scaler: &mut GradScaler,
    (x, y): (&Tensor, &Tensor),
) -> Result<(), Box<dyn std::error::Error>> {
    let loss = {
        let _autocast = kiln::engine::amp::autocast(DType::F16)?;
        model.forward(x)?.cross_entropy(y, 0.0)?
    };
    optim.zero_grad();
    scaler.scale_loss(&loss)?.backward()?;
    let overflow = scaler.unscale(optim)?;
    if !overflow {
        optim.step(0.1)?;
    }
    scaler.update(overflow);
    Ok(())
}

/// resnet18 and resnet50 training steps at `KILN_BENCH_BATCH` × 3 × 224², as
/// `examples/train_step.rs` times them (SGD Nesterov, momentum 0.9, weight decay 1e-4).
fn train_step(c: &mut Criterion, dev: &CudaDevice) {
    let n = batch();
    let mut g = c.benchmark_group("cuda_train_step");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(n as u64));
    let labels: Vec<i64> = (0..n as i64).map(|i| i * 7 % 1000).collect();
    let y = Tensor::from_vec(labels, &[n])
        .and_then(|t| t.to_device(GPU))
        .expect("labels");
    let x = gpu_randn(&[n, 3, 224, 224], DType::F32, MemoryFormat::ChannelsLast, 1);
    for name in ["resnet18", "resnet50"] {
        let mut model = create_model(name, &ModelArgs::default()).expect("model");
        model
            .set_memory_format(MemoryFormat::ChannelsLast)
            .expect("channels-last");
        model.to_device(GPU).expect("model to GPU");
        model.set_training(true);
        let opt = OptimizerConfig {
            opt: "sgd".into(),
            momentum: 0.9,
            weight_decay: 1e-4,
            ..OptimizerConfig::default()
        };
        let mut optim = create_optimizer(&opt, model.named_parameters()).expect("optimizer");
        let mut scaler = GradScaler::default();
        g.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter(|| {
                step(model.as_ref(), optim.as_mut(), &mut scaler, (&x, &y)).expect("step");
                dev.synchronize().expect("synchronize");
            })
        });
        drop((model, optim));
        #[cfg(feature = "libtorch")]
        libtorch::train_step(&mut g, name, n);
    }
    g.finish();
}

/// (name, input channels, output channels, spatial size, kernel, stride) of resnet50's
/// convolutions at batch 64 (padding k / 2): the bottleneck 3×3s and 1×1 expansions of each
/// stage, and the strided 3×3 and 1×1 downsample entering a stage.
const CONV_SHAPES: [(&str, usize, usize, usize, usize, usize); 6] = [
    ("3x3_64_56", 64, 64, 56, 3, 1),
    ("1x1_64to256_56", 64, 256, 56, 1, 1),
    ("3x3_128_56_s2", 128, 128, 56, 3, 2),
    ("1x1_512to1024_28_s2", 512, 1024, 28, 1, 2),
    ("3x3_256_14", 256, 256, 14, 3, 1),
    ("3x3_512_7", 512, 512, 7, 3, 1),
];

/// Each conv shape f16 channels-last, forward (`fwd/<shape>`) and forward + backward to the input
/// and the filter (`fwd_bwd/<shape>`); throughput is the forward's multiply-adds × 2.
fn conv(c: &mut Criterion, dev: &CudaDevice) {
    let mut g = c.benchmark_group("cuda_conv");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    let nhwc = MemoryFormat::ChannelsLast;
    for (name, ic, oc, hw, k, s) in CONV_SHAPES {
        let params = Conv2dParams {
            stride: [s, s],
            padding: [k / 2, k / 2],
            ..Default::default()
        };
        let x = gpu_randn(&[64, ic, hw, hw], DType::F16, nhwc, 3);
        let w = gpu_randn(&[oc, ic, k, k], DType::F16, nhwc, 4);
        let out = (hw + 2 * (k / 2) - k) / s + 1;
        g.throughput(Throughput::Elements(
            (2 * 64 * oc * out * out * ic * k * k) as u64,
        ));
        g.bench_function(format!("fwd/{name}"), |b| {
            b.iter(|| {
                x.conv2d(&w, None, params).expect("conv2d");
                dev.synchronize().expect("synchronize");
            })
        });
        x.requires_grad_(true);
        w.requires_grad_(true);
        g.bench_function(format!("fwd_bwd/{name}"), |b| {
            b.iter(|| {
                let y = x.conv2d(&w, None, params).expect("conv2d");
                y.sum_all().and_then(|l| l.backward()).expect("backward");
                dev.synchronize().expect("synchronize");
            })
        });
        #[cfg(feature = "libtorch")]
        libtorch::conv(&mut g, name, [ic, oc, hw, k, s]);
    }
    g.finish();
}

/// Fused training-mode BN+ReLU on an f16 channels-last [64, 256, 56, 56] activation with f32
/// affine parameters (as under autocast), forward and forward + backward; throughput in bytes of
/// activation read once.
fn bn_relu(c: &mut Criterion, dev: &CudaDevice) {
    let mut g = c.benchmark_group("cuda_bn_relu");
    g.sample_size(30).measurement_time(Duration::from_secs(3));
    let shape = [64, 256, 56, 56];
    let x = gpu_randn(&shape, DType::F16, MemoryFormat::ChannelsLast, 5);
    let w = gpu_randn(&[256], DType::F32, MemoryFormat::Contiguous, 6);
    let b = gpu_randn(&[256], DType::F32, MemoryFormat::Contiguous, 7);
    let args = BatchNormArgs::batch_stats(Some(&w), Some(&b));
    g.throughput(Throughput::Bytes(
        (shape.iter().product::<usize>() * 2) as u64,
    ));
    g.bench_function("fwd", |bench| {
        bench.iter(|| {
            x.bn_relu(args).expect("bn_relu");
            dev.synchronize().expect("synchronize");
        })
    });
    x.requires_grad_(true);
    g.bench_function("fwd_bwd", |bench| {
        bench.iter(|| {
            let y = x.bn_relu(args).expect("bn_relu");
            y.sum_all().and_then(|l| l.backward()).expect("backward");
            dev.synchronize().expect("synchronize");
        })
    });
    #[cfg(feature = "libtorch")]
    libtorch::bn_relu(&mut g, shape);
    g.finish();
}

/// f16 matmul: 4096 × 4096 × 4096 (`4096`) and a batch of 32 1024³ products (`32x1024`);
/// throughput in flops (2 per multiply-add).
fn gemm(c: &mut Criterion, dev: &CudaDevice) {
    let mut g = c.benchmark_group("cuda_gemm");
    g.sample_size(30).measurement_time(Duration::from_secs(3));
    for (id, shape) in [
        ("4096", vec![4096, 4096]),
        ("32x1024", vec![32, 1024, 1024]),
    ] {
        let a = gpu_randn(&shape, DType::F16, MemoryFormat::Contiguous, 8);
        let b = gpu_randn(&shape, DType::F16, MemoryFormat::Contiguous, 9);
        let n = shape[shape.len() - 1];
        let flops = 2 * shape[..shape.len() - 2].iter().product::<usize>() * n * n * n;
        g.throughput(Throughput::Elements(flops as u64));
        g.bench_function(id, |bench| {
            bench.iter(|| {
                a.matmul(&b).expect("matmul");
                dev.synchronize().expect("synchronize");
            })
        });
        #[cfg(feature = "libtorch")]
        libtorch::gemm(&mut g, id, &shape);
    }
    g.finish();
}

/// `cuda:0` when it is a real GPU; `None`, with the reason on stderr, on no device or the emulator.
fn gpu() -> Option<Arc<CudaDevice>> {
    match kiln::engine::cuda::device(0) {
        Err(e) => {
            eprintln!("benches/cuda: skipped: no CUDA device 0 ({e})");
            None
        }
        Ok(d) if d.is_emulator() => {
            eprintln!(
                "benches/cuda: skipped: cuda:0 is kiln's CUDA emulator ({}): its timings mean nothing",
                d.name()
            );
            None
        }
        Ok(d) => Some(d),
    }
}

fn main() {
    let Some(dev) = gpu() else { return };
    kiln::engine::cuda::set_cudnn_benchmark(true);
    kiln::engine::manual_seed(0);
    #[cfg(feature = "libtorch")]
    libtorch::init();
    let mut c = Criterion::default().configure_from_args();
    train_step(&mut c, &dev);
    conv(&mut c, &dev);
    bn_relu(&mut c, &dev);
    gemm(&mut c, &dev);
    c.final_summary();
}
