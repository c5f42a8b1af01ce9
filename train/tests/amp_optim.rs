//! Fused optimizer steps and f16 loss scaling, on the CPU and (when a CUDA device or the emulator
//! is present) on CUDA, where they must agree with the CPU.

use kiln_engine::{DType, Device, Generator, Tensor};
use kiln_nn::NamedTensor;
use kiln_train::amp::GradScaler;
use kiln_train::optim::{create_optimizer, Optimizer, OptimizerConfig};
use std::io::Write;

fn devices() -> Vec<Device> {
    let mut out = vec![Device::Cpu];
    match kiln_engine::cuda::device(0) {
        Ok(_) => out.push(Device::Cuda(0)),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "skipped on CUDA: {e}");
        }
    }
    out
}

/// Three parameters (a 4-d weight with decay, a bias and a norm weight without) on `device`.
fn params(device: Device) -> Vec<NamedTensor> {
    let mut g = Generator::new(5);
    [
        ("conv.weight", vec![3, 2, 3, 3]),
        ("conv.bias", vec![3]),
        ("bn.weight", vec![7]),
    ]
    .into_iter()
    .map(|(name, shape)| {
        let t = g
            .normal(&shape, 0.0, 1.0, DType::F32)
            .unwrap()
            .to_device(device)
            .unwrap();
        t.requires_grad_(true);
        NamedTensor {
            name: name.into(),
            tensor: t,
            kind: kiln_nn::Kind::Parameter,
        }
    })
    .collect()
}

/// Gives every parameter the gradient `scale`·N(0,1) from a fixed stream.
fn set_grads(optim: &dyn Optimizer, seed: u64, scale: f64) {
    let mut g = Generator::new(seed);
    for p in optim.params() {
        let grad = g
            .normal(p.tensor.shape(), 0.0, scale, DType::F32)
            .unwrap()
            .to_device(p.tensor.device())
            .unwrap();
        p.tensor.set_grad(Some(grad));
    }
}

fn values(optim: &dyn Optimizer) -> Vec<Vec<f32>> {
    optim
        .params()
        .iter()
        .map(|p| p.tensor.to_vec::<f32>().unwrap())
        .collect()
}

#[test]
fn sgd_and_adamw_take_the_same_steps_on_every_device() {
    for opt in ["sgd", "momentum", "adamw"] {
        let mut results = Vec::new();
        for device in devices() {
            let args = OptimizerConfig {
                opt: opt.into(),
                momentum: 0.9,
                weight_decay: 0.05,
                ..OptimizerConfig::default()
            };
            let mut optim = create_optimizer(&args, params(device)).unwrap();
            for step in 0..3 {
                set_grads(optim.as_ref(), 10 + step, 1.0);
                optim.step(0.1).unwrap();
            }
            results.push(values(optim.as_ref()));
        }
        for other in &results[1..] {
            for (a, b) in results[0].iter().flatten().zip(other.iter().flatten()) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + a.abs()),
                    "{opt}: cpu {a} vs cuda {b}"
                );
            }
        }
    }
}

#[test]
fn an_overflowing_f16_step_is_skipped_and_halves_the_scale() {
    for device in devices() {
        let args = OptimizerConfig {
            opt: "sgd".into(),
            momentum: 0.9,
            weight_decay: 0.0,
            ..OptimizerConfig::default()
        };
        let mut optim = create_optimizer(&args, params(device)).unwrap();
        let mut scaler = GradScaler::default();

        // A clean step: gradients come scaled by 2^16 and are unscaled before the update.
        let before = values(optim.as_ref());
        set_grads(optim.as_ref(), 1, scaler.scale);
        assert!(
            !scaler.unscale(optim.as_ref()).unwrap(),
            "{device}: false overflow"
        );
        let unscaled = optim.params()[0]
            .tensor
            .grad()
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let mut g = Generator::new(1);
        let want = g
            .normal(&[3, 2, 3, 3], 0.0, 1.0, DType::F32)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        for (u, w) in unscaled.iter().zip(&want) {
            assert!((u - w).abs() < 1e-5, "{device}: unscaled {u}, want {w}");
        }
        optim.step(0.1).unwrap();
        scaler.update(false);
        assert_ne!(values(optim.as_ref()), before);
        assert_eq!((scaler.scale, scaler.growth_tracker), (65536.0, 1));

        // An injected overflow: one inf in one gradient. The step is skipped, the scale halves.
        let after_clean = values(optim.as_ref());
        set_grads(optim.as_ref(), 2, scaler.scale);
        let bias = &optim.params()[1].tensor;
        let poisoned = Tensor::from_vec(vec![1.0f32, f32::INFINITY, 2.0], &[3])
            .unwrap()
            .to_device(device)
            .unwrap();
        bias.set_grad(Some(poisoned));
        let overflow = scaler.unscale(optim.as_ref()).unwrap();
        assert!(overflow, "{device}: the inf was not found");
        if !overflow {
            optim.step(0.1).unwrap();
        }
        scaler.update(overflow);
        assert_eq!(
            values(optim.as_ref()),
            after_clean,
            "{device}: parameters moved"
        );
        assert_eq!((scaler.scale, scaler.growth_tracker), (32768.0, 0));
    }
}

#[test]
fn the_scale_grows_after_the_growth_interval() {
    let mut s = GradScaler {
        growth_interval: 3,
        ..GradScaler::default()
    };
    for _ in 0..3 {
        s.update(false);
    }
    assert_eq!((s.scale, s.growth_tracker), (131072.0, 0));
}
