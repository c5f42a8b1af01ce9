//! The PyTorch side of `benches/ops.rs`, through `tch` (libtorch) in the same process, so every
//! kiln figure has its libtorch twin measured in the same run on the same threads. Built only
//! with feature `libtorch`; `scripts/bench/libtorch.sh` sets it up and prints the ratios.

use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
use tch::{nn, CModule, Device, Kind, Reduction, Tensor};

mod common;
use common::{channels_last, resnet_channels_last, sgd};

const F32: (Kind, Device) = (Kind::Float, Device::Cpu);

/// Gives libtorch as many intra-op threads as rayon has, so both sides use the same cores.
pub fn init() {
    tch::set_num_threads(rayon_threads());
    tch::manual_seed(0);
}

fn rayon_threads() -> i32 {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .or_else(|| {
            std::thread::available_parallelism()
                .ok()
                .map(|n| n.get() as i32)
        })
        .unwrap_or(1)
}

fn randn4(shape: [i64; 4], nhwc: bool) -> Tensor {
    let t = Tensor::randn(shape, F32);
    if nhwc {
        channels_last(&t)
    } else {
        t
    }
}

/// `torch.matmul` of two n×n f32 matrices.
pub fn matmul(g: &mut BenchmarkGroup<WallTime>, n: usize) {
    let n = n as i64;
    let (a, b) = (Tensor::randn([n, n], F32), Tensor::randn([n, n], F32));
    g.bench_function(format!("libtorch/{n}"), |bench| bench.iter(|| a.matmul(&b)));
}

/// One convolution shape (batch 32), forward and forward + backward, as `benches/ops.rs` names it.
pub struct ConvCase<'a> {
    /// Shape name.
    pub name: &'a str,
    /// [out channels, in channels, spatial size, kernel, stride, padding].
    pub dims: [usize; 6],
    /// Channels-last tensors.
    pub nhwc: bool,
}

/// `F.conv2d` forward (no grad) and forward + `.sum().backward()`.
pub fn conv(g: &mut BenchmarkGroup<WallTime>, case: ConvCase) {
    let [oc, ic, hw, k, s, p] = case.dims.map(|v| v as i64);
    let tag = if case.nhwc { "nhwc" } else { "nchw" };
    let x = randn4([32, ic, hw, hw], case.nhwc);
    let w = randn4([oc, ic, k, k], case.nhwc);
    g.bench_function(format!("libtorch/fwd/{}/{tag}", case.name), |b| {
        b.iter(|| tch::no_grad(|| x.conv2d(&w, None::<Tensor>, [s, s], [p, p], [1, 1], 1)))
    });
    let (xg, wg) = (
        x.detach().set_requires_grad(true),
        w.detach().set_requires_grad(true),
    );
    g.bench_function(format!("libtorch/fwd_bwd/{}/{tag}", case.name), |b| {
        b.iter(|| {
            xg.conv2d(&wg, None::<Tensor>, [s, s], [p, p], [1, 1], 1)
                .sum(Kind::Float)
                .backward()
        })
    });
}

/// `relu(F.batch_norm(x))` forward + backward on a channels-last [32, 64, 56, 56].
pub fn bn_relu(g: &mut BenchmarkGroup<WallTime>) {
    let x = randn4([32, 64, 56, 56], true).set_requires_grad(true);
    let w = Tensor::randn([64], F32).set_requires_grad(true);
    let b = Tensor::randn([64], F32).set_requires_grad(true);
    g.bench_function("libtorch/fwd_bwd", |bench| {
        bench.iter(|| {
            x.batch_norm(Some(&w), Some(&b), None, None, true, 0.1, 1e-5, false)
                .relu()
                .sum(Kind::Float)
                .backward()
        })
    });
}

/// torchvision's resnet18 or resnet50 (timm's architecture at default args) in channels-last:
/// a training step (forward, label-smoothed cross-entropy, backward, Nesterov SGD) and a forward.
pub fn resnet(g: &mut BenchmarkGroup<WallTime>, name: &str) {
    let (vs, model) = resnet_channels_last(name, Device::Cpu);
    let mut opt = sgd(&vs, 2e-5);
    let x = randn4([32, 3, 64, 64], true);
    let target = Tensor::arange(32, (Kind::Int64, Device::Cpu)).remainder(1000);
    g.bench_function(format!("libtorch/{name}/train_step"), |b| {
        b.iter(|| {
            let loss = model.forward_t(&x, true).cross_entropy_loss::<Tensor>(
                &target,
                None,
                Reduction::Mean,
                -100,
                0.1,
            );
            opt.zero_grad();
            loss.backward();
            opt.step();
        })
    });
    g.bench_function(format!("libtorch/{name}/forward"), |b| {
        b.iter(|| tch::no_grad(|| model.forward_t(&x, false)))
    });
}

/// timm's own `name` as TorchScript (`$KILN_TORCHSCRIPT_DIR/<name>.pt`, written by
/// `scripts/bench/torchscript_models.py`) in training mode, its 4-d parameters channels-last when
/// `nhwc`: the training step of `benches/ops.rs`'s `models` group on a [32, 3, size, size] batch.
pub fn timm_model(g: &mut BenchmarkGroup<WallTime>, name: &str, nhwc: bool, size: i64) {
    let dir = std::env::var_os("KILN_TORCHSCRIPT_DIR").unwrap_or_default();
    let path = std::path::Path::new(&dir).join(format!("{name}.pt"));
    if !path.is_file() {
        eprintln!(
            "skipping libtorch/{name}/train_step: no TorchScript file {} (KILN_TORCHSCRIPT_DIR; \
             scripts/bench/libtorch.sh writes it)",
            path.display()
        );
        return;
    }
    let mut model = CModule::load(&path).expect("TorchScript model");
    model.set_train();
    // Group 0 holds biases and norms, left undecayed as kiln's (timm's) parameter groups do.
    let vs = nn::VarStore::new(Device::Cpu);
    tch::no_grad(|| {
        for (pname, mut p) in model.named_parameters().expect("parameters") {
            if nhwc && p.dim() == 4 {
                let t = channels_last(&p);
                p.set_data(&t);
            }
            let group = usize::from(p.dim() > 1);
            let _shared = vs
                .root()
                .set_group(group)
                .add(&pname.replace('.', "_"), p, true);
        }
    });
    let mut opt = sgd(&vs, 2e-5);
    opt.set_weight_decay_group(0, 0.0);
    let x = randn4([32, 3, size, size], nhwc);
    let target = Tensor::arange(32, (Kind::Int64, Device::Cpu)).remainder(1000);
    g.bench_function(format!("libtorch/{name}/train_step"), |b| {
        b.iter(|| {
            let loss = model
                .forward_ts(&[&x])
                .expect("forward")
                .cross_entropy_loss::<Tensor>(&target, None, Reduction::Mean, -100, 0.1);
            opt.zero_grad();
            loss.backward();
            opt.step();
        })
    });
}
