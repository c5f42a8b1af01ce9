//! kiln's generator twins against the draws of scripts/fixtures/make_rng_fixtures.py: Python's
//! `random.Random` exactly (random, randint, getrandbits), and torch's `randn(n)` in f32 (serial
//! path below 16 elements, `normal_fill` from 16 on, two tensors per seed from one generator)
//! within two ulp-sized steps (ATen's vector log and sincos against Rust's libm).

use kiln_train::sched::{PyRandom, TorchGenerator};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
struct RandomCase {
    seed: String,
    random: Vec<f64>,
    randint: Vec<u64>,
    getrandbits: BTreeMap<String, Vec<u32>>,
}

#[derive(Debug, Deserialize)]
struct NormalCase {
    seed: u64,
    sizes: Vec<usize>,
    draws: Vec<Vec<f32>>,
}

#[derive(Debug, Deserialize)]
struct Fixtures {
    python_random: Vec<RandomCase>,
    normal: Vec<NormalCase>,
}

fn fixtures() -> Fixtures {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rng/twins.json");
    let text = std::fs::read_to_string(path).expect("read twins.json");
    serde_json::from_str(&text).expect("parse twins.json")
}

#[test]
fn python_random_matches_cpython_draw_for_draw() {
    let cases = fixtures().python_random;
    assert_eq!(cases.len(), 8);
    for case in &cases {
        let seed: u128 = case.seed.parse().expect("seed fits 128 bits");
        let mut r = PyRandom::new(seed);
        let random: Vec<f64> = (0..case.random.len()).map(|_| r.random()).collect();
        assert_eq!(random, case.random, "seed {seed}: random()");
        let randint: Vec<u64> = (0..case.randint.len())
            .map(|_| r.randint(0, 1 << 31))
            .collect();
        assert_eq!(randint, case.randint, "seed {seed}: randint(0, 2**31)");
        let mut bits: Vec<(u32, &Vec<u32>)> = (case.getrandbits.iter())
            .map(|(k, v)| (k.parse().expect("bit count"), v))
            .collect();
        bits.sort();
        for (k, want) in bits {
            let got: Vec<u32> = (0..want.len()).map(|_| r.getrandbits(k)).collect();
            assert_eq!(&got, want, "seed {seed}: getrandbits({k})");
        }
    }
}

/// Largest |got − want| over max(|want|, 1) · f32 epsilon (ulp-sized steps).
fn max_steps(got: &[f32], want: &[f32]) -> f32 {
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / (w.abs().max(1.0) * f32::EPSILON))
        .fold(0.0, f32::max)
}

#[test]
fn randn_matches_torch_serial_and_normal_fill() {
    let cases = fixtures().normal;
    let mut worst = 0.0f32;
    for case in &cases {
        let mut g = TorchGenerator::new(case.seed);
        for (n, want) in case.sizes.iter().zip(&case.draws) {
            let got = g.randn_f32(*n);
            assert_eq!(got.len(), want.len());
            let steps = max_steps(&got, want);
            assert!(
                steps <= 2.0,
                "seed {} randn({n}): {steps} ulp-sized steps off",
                case.seed
            );
            worst = worst.max(steps);
        }
    }
    println!(
        "randn: worst {worst} ulp-sized steps over {} seeds",
        cases.len()
    );
}
