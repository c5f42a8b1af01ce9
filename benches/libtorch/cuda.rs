//! The PyTorch side of `benches/cuda.rs`, through `tch` (libtorch) on `cuda:0` in the same
//! process: cuDNN benchmark mode, channels-last, f16 (autocast for the training step). Every
//! timed iteration ends with `torch.cuda.synchronize()`, as kiln's does. Built only with feature
//! `libtorch`.

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId};
use tch::{Cuda, Device, Kind, Reduction, Tensor};

#[path = "common.rs"]
mod common;
use common::{channels_last, resnet_channels_last, sgd};

const GPU: Device = Device::Cuda(0);

/// The fixed loss scale of the training step (GradScaler's initial scale).
const LOSS_SCALE: f64 = 65536.0;

/// cuDNN benchmark mode on (timm's train.py and kiln's side do the same) and a fixed seed.
pub fn init() {
    Cuda::cudnn_set_benchmark(true);
    tch::manual_seed(0);
}

/// A normal tensor of `kind` on the GPU, channels-last when 4-d.
fn gpu_randn(shape: &[i64], kind: Kind) -> Tensor {
    let t = Tensor::randn(shape, (kind, GPU));
    if shape.len() == 4 {
        channels_last(&t)
    } else {
        t
    }
}

/// torchvision's `name` (resnet18 or resnet50) channels-last on the GPU: forward under f16
/// autocast, cross-entropy, backward of the loss × `LOSS_SCALE`, gradients unscaled in place,
/// SGD (Nesterov, momentum 0.9, weight decay 1e-4, lr 0.1), as `libtorch/<name>` at batch `n`.
pub fn train_step(g: &mut BenchmarkGroup<WallTime>, name: &str, n: usize) {
    let (vs, model) = resnet_channels_last(name, GPU);
    let mut opt = sgd(&vs, 1e-4);
    let n = n as i64;
    let x = gpu_randn(&[n, 3, 224, 224], Kind::Float);
    let y = (Tensor::arange(n, (Kind::Int64, GPU)) * 7).remainder(1000);
    let params = vs.trainable_variables();
    g.bench_function(BenchmarkId::new(format!("libtorch/{name}"), n), |b| {
        b.iter(|| {
            let loss = tch::autocast(true, || {
                model.forward_t(&x, true).cross_entropy_loss::<Tensor>(
                    &y,
                    None,
                    Reduction::Mean,
                    -100,
                    0.0,
                )
            });
            opt.zero_grad();
            (loss * LOSS_SCALE).backward();
            tch::no_grad(|| {
                for p in &params {
                    let _ = p.grad().g_mul_scalar_(1.0 / LOSS_SCALE);
                }
            });
            opt.step();
            Cuda::synchronize(0);
        })
    });
}

/// `F.conv2d` f16 channels-last at batch 64, padding k / 2, forward (no grad) and forward +
/// `.sum().backward()`, as `libtorch/fwd/<name>` and `libtorch/fwd_bwd/<name>`.
pub fn conv(g: &mut BenchmarkGroup<WallTime>, name: &str, dims: [usize; 5]) {
    let [ic, oc, hw, k, s] = dims.map(|v| v as i64);
    let p = k / 2;
    let x = gpu_randn(&[64, ic, hw, hw], Kind::Half);
    let w = gpu_randn(&[oc, ic, k, k], Kind::Half);
    g.bench_function(format!("libtorch/fwd/{name}"), |b| {
        b.iter(|| {
            let _ = tch::no_grad(|| x.conv2d(&w, None::<Tensor>, [s, s], [p, p], [1, 1], 1));
            Cuda::synchronize(0);
        })
    });
    let (xg, wg) = (
        x.detach().set_requires_grad(true),
        w.detach().set_requires_grad(true),
    );
    g.bench_function(format!("libtorch/fwd_bwd/{name}"), |b| {
        b.iter(|| {
            xg.conv2d(&wg, None::<Tensor>, [s, s], [p, p], [1, 1], 1)
                .sum(Kind::Float)
                .backward();
            Cuda::synchronize(0);
        })
    });
}

/// `relu(F.batch_norm(x, training=True))` on an f16 channels-last `shape` with f32 affine
/// parameters, forward (no grad) and forward + backward.
pub fn bn_relu(g: &mut BenchmarkGroup<WallTime>, shape: [usize; 4]) {
    let shape = shape.map(|v| v as i64);
    let c = shape[1];
    let x = gpu_randn(&shape, Kind::Half);
    let w = Tensor::randn([c], (Kind::Float, GPU));
    let b = Tensor::randn([c], (Kind::Float, GPU));
    let bn = |x: &Tensor, w: &Tensor, b: &Tensor| {
        x.batch_norm(Some(w), Some(b), None, None, true, 0.1, 1e-5, true)
            .relu()
    };
    g.bench_function("libtorch/fwd", |bench| {
        bench.iter(|| {
            let _ = tch::no_grad(|| bn(&x, &w, &b));
            Cuda::synchronize(0);
        })
    });
    let xg = x.detach().set_requires_grad(true);
    let (wg, bg) = (w.set_requires_grad(true), b.set_requires_grad(true));
    g.bench_function("libtorch/fwd_bwd", |bench| {
        bench.iter(|| {
            bn(&xg, &wg, &bg).sum(Kind::Float).backward();
            Cuda::synchronize(0);
        })
    });
}

/// `torch.matmul` of two f16 tensors of `shape` (square matrices, batched when 3-d).
pub fn gemm(g: &mut BenchmarkGroup<WallTime>, id: &str, shape: &[usize]) {
    let shape: Vec<i64> = shape.iter().map(|&v| v as i64).collect();
    let (a, b) = (gpu_randn(&shape, Kind::Half), gpu_randn(&shape, Kind::Half));
    g.bench_function(format!("libtorch/{id}"), |bench| {
        bench.iter(|| {
            let _ = tch::no_grad(|| a.matmul(&b));
            Cuda::synchronize(0);
        })
    });
}
