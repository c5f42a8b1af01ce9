//! rng.cu (through its launchers) against the CPU's Philox stream, used as the engine uses it:
//! dropout keep decisions bit for bit, uniform and normal fills to rounding, at a nonzero offset
//! and on lengths that end mid-block.

mod common;
use common::{assert_close, gpu};
use kiln_kernels::cpu::philox;
use kiln_kernels::cuda::rng::{self as cuda, Dist};

const SEED: u64 = 0x1234_5678_9abc_def0;
const OFFSET: u64 = 7;
const UNIFORM: Dist = Dist::Uniform { lo: -0.5, hi: 1.5 };
const NORMAL: Dist = Dist::Normal {
    mean: 0.1,
    std: 0.02,
};

#[test]
fn dropout_keeps_exactly_what_the_cpu_keeps() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let n = 1001;
    // 0.5 + 0.4·2^-24 rounds to 0.5 in f32: the engine's f32 comparison keeps u == 0.5.
    for p in [0.1, 0.5 + 0.4 / 16_777_216.0, 0.9] {
        let scale = (1.0 / (1.0 - p)) as f32;
        let want: Vec<f32> = (0..n as u64)
            .map(|i| {
                let u = philox::uniform(philox::bits(SEED, OFFSET, i)) as f32;
                if u >= p as f32 {
                    scale
                } else {
                    0.0
                }
            })
            .collect();
        let out = g.zeros::<f32>(n);
        cuda::dropout_mask(&k, "f32", SEED, OFFSET, p, g.ptr(&out), n).unwrap();
        assert_eq!(g.download(&out), want, "p = {p}");
    }
}

#[test]
fn uniform_and_normal_match_the_cpu() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let n = 999;
    let uni: Vec<f64> = (0..n as u64)
        .map(|i| -0.5 + 2.0 * philox::uniform(philox::bits(SEED, OFFSET, i)))
        .collect();
    let out = g.zeros::<f64>(n);
    cuda::fill(&k, "f64", SEED, OFFSET, UNIFORM, g.ptr(&out), n).unwrap();
    assert_eq!(g.download(&out), uni, "uniform f64");
    let out = g.zeros::<f32>(n);
    cuda::fill(&k, "f32", SEED, OFFSET, UNIFORM, g.ptr(&out), n).unwrap();
    let uni32: Vec<f32> = uni.iter().map(|&v| v as f32).collect();
    assert_eq!(g.download(&out), uni32, "uniform f32");

    let norm: Vec<f64> = (0..n as u64)
        .map(|i| 0.1 + 0.02 * philox::normal(SEED, OFFSET, i))
        .collect();
    let out = g.zeros::<f64>(n);
    cuda::fill(&k, "f64", SEED, OFFSET, NORMAL, g.ptr(&out), n).unwrap();
    for (i, (a, b)) in g.download(&out).iter().zip(&norm).enumerate() {
        assert!((a - b).abs() <= 1e-15, "normal f64[{i}]: {a} vs {b}");
    }
    let out = g.zeros::<f32>(n);
    cuda::fill(&k, "f32", SEED, OFFSET, NORMAL, g.ptr(&out), n).unwrap();
    let norm32: Vec<f32> = norm.iter().map(|&v| v as f32).collect();
    assert_close("normal f32", &g.download(&out), &norm32, 0.0, 1.2e-7);
}
