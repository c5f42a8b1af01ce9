//! Weights and inputs both sides of the timm fixtures generate from an integer hash.
#![allow(dead_code)] // each test binary uses its own subset

use kiln_engine::{DType, Tensor};
use kiln_nn::{Model, ModelArgs};

/// Mirrors `fnv1a` in scripts/fixtures/make_resnet_fixtures.py: 64-bit FNV-1a of the bytes.
pub fn fnv1a(name: &str) -> u64 {
    name.bytes().fold(0xCBF29CE484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001B3)
    })
}

/// Mirrors `hashed_uniform` in scripts/fixtures/make_resnet_fixtures.py: splitmix64 of (index, fnv1a(name)).
pub fn hashed_uniform(name: &str, n: usize) -> Vec<f64> {
    let h = fnv1a(name);
    (0..n as u64)
        .map(|i| {
            let mut x = i.wrapping_mul(0x9E3779B97F4A7C15).wrapping_add(h);
            x ^= x >> 30;
            x = x.wrapping_mul(0xBF58476D1CE4E5B9);
            x ^= x >> 27;
            x = x.wrapping_mul(0x94D049BB133111EB);
            x ^= x >> 31;
            (x >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

/// Mirrors `fill` in scripts/fixtures/make_resnet_fixtures.py.
pub fn fill(name: &str, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let u: Vec<f64> = hashed_uniform(name, n)
        .into_iter()
        .map(|v| v - 0.5)
        .collect();
    if name.ends_with("num_batches_tracked") {
        return Tensor::zeros(shape, DType::I64).unwrap();
    }
    let v: Vec<f32> = if name.ends_with("running_var") {
        u.iter().map(|v| (1.0 + v) as f32).collect()
    } else if shape.len() >= 2 {
        let fan_in: usize = shape[1..].iter().product();
        u.iter()
            .map(|v| (v * (12.0 / fan_in as f64).sqrt()) as f32)
            .collect()
    } else if name.ends_with("weight") {
        u.iter().map(|v| (1.0 + 0.2 * v) as f32).collect()
    } else {
        u.iter().map(|v| (0.2 * v) as f32).collect()
    };
    Tensor::from_vec(v, shape).unwrap()
}

/// Mirrors `hashed_input` in scripts/fixtures/make_pretrained_fixtures.py: `input.c<in_chans>`
/// of shape (2, in_chans, 64, 64), uniform in [-2, 2).
pub fn hashed_input(in_chans: usize) -> Tensor {
    let shape = [2, in_chans, 64, 64];
    let x: Vec<f32> = hashed_uniform(&format!("input.c{in_chans}"), shape.iter().product())
        .iter()
        .map(|v| (v * 4.0 - 2.0) as f32)
        .collect();
    Tensor::from_vec(x, &shape).unwrap()
}

/// The input of make_resnet_fixtures.py's fixtures: `input`, [2, 3, 64, 64] uniform in [-2, 2).
pub fn parity_input() -> Tensor {
    let x: Vec<f32> = hashed_uniform("input", 2 * 3 * 64 * 64)
        .iter()
        .map(|v| (v * 4.0 - 2.0) as f32)
        .collect();
    Tensor::from_vec(x, &[2, 3, 64, 64]).unwrap()
}

/// The fixtures' model arguments: 10 classes, and ViTs, EVAs and Swins (`_patch` in the name)
/// and mlp_mixer.py's models (whose token mixers span the patches) built for the 64² test input
/// (as the fixture script builds them).
pub fn test_args(name: &str) -> ModelArgs {
    let mixer = ["mixer_", "gmixer_", "resmlp_", "gmlp_"]
        .iter()
        .any(|p| name.starts_with(p));
    ModelArgs {
        num_classes: 10,
        img_size: (name.contains("_patch") || mixer).then_some(64),
        // No stochastic depth (Swin's default is 0.1): train-mode logits are deterministic.
        drop_path_rate: Some(0.0),
        ..Default::default()
    }
}

/// Every tensor of `model` set by `fill` of its name.
pub fn fill_model(model: &dyn Model) {
    for t in model.named_tensors() {
        t.tensor.copy_(&fill(&t.name, t.tensor.shape())).unwrap();
    }
}

/// The name of `model`'s first classifier (the fixtures store the class head's of a distilled
/// DeiT).
pub fn first_classifier(model: &dyn Model) -> String {
    model
        .pretrained_cfg()
        .classifiers()
        .next()
        .unwrap()
        .to_string()
}

/// The largest |a - b| relative to the largest |b|.
pub fn max_rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    let (a, b) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
        / scale
}

/// Tensors' shapes as the fixtures list them: `2x64x32x32;2x128x16x16`.
pub fn shapes_string(ts: &[Tensor]) -> String {
    let one = |t: &Tensor| {
        t.shape()
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("x")
    };
    ts.iter().map(one).collect::<Vec<_>>().join(";")
}
