//! Fusion, judged by the emulator's memory-traffic counters (`KILN_EMU_STATS`): fused BN+ReLU
//! moves fewer global bytes than BN then ReLU, and the fused softmax cross-entropy fewer than
//! log-softmax followed by the loss, forward and backward.

use kiln_engine::{BatchNormArgs, DType, Device, Generator, Result, Tensor};
use std::io::Write;

/// Global bytes (loaded + stored) the kernels launched by `f` moved, from the stats file.
fn traffic(stats: &std::path::Path, f: impl FnOnce() -> Result<()>) -> u64 {
    let dev = kiln_engine::cuda::device(0).unwrap();
    dev.synchronize().unwrap();
    let before = std::fs::read_to_string(stats).unwrap_or_default().len();
    f().unwrap();
    dev.synchronize().unwrap();
    let text = std::fs::read_to_string(stats).unwrap();
    text[before..]
        .lines()
        .map(|l| field(l, "global_load_bytes") + field(l, "global_store_bytes"))
        .sum()
}

fn field(line: &str, name: &str) -> u64 {
    let key = format!("\"{name}\":");
    line.split(&key)
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn on_emulator() -> Option<std::path::PathBuf> {
    if let Err(e) = kiln_engine::cuda::device(0) {
        let _ = writeln!(std::io::stderr(), "skipped: {e}");
        return None;
    }
    let path = std::env::temp_dir().join(format!("kiln-traffic-{}.jsonl", std::process::id()));
    // Set before any kernel runs; this binary's only test reads it.
    std::env::set_var("KILN_EMU_STATS", &path);
    Some(path)
}

#[test]
fn fused_kernels_move_fewer_global_bytes() {
    let Some(stats) = on_emulator() else { return };
    let gpu = Device::Cuda(0);
    let mut g = Generator::new(3);
    let x = g
        .normal(&[8, 64, 16, 16], 0.0, 1.0, DType::F32)
        .unwrap()
        .to_device(gpu)
        .unwrap();
    let gamma = Tensor::full_on(&[64], 1.0, DType::F32, gpu).unwrap();
    let beta = Tensor::full_on(&[64], 0.0, DType::F32, gpu).unwrap();
    gamma.requires_grad_(true);
    beta.requires_grad_(true);
    x.requires_grad_(true);
    let args = BatchNormArgs {
        weight: Some(&gamma),
        bias: Some(&beta),
        running_mean: None,
        running_var: None,
        training: true,
        momentum: 0.1,
        eps: 1e-5,
    };
    let seed = Tensor::full_on(&[8, 64, 16, 16], 0.5, DType::F32, gpu).unwrap();
    // Warm up (module loads, allocator) so both measurements see the same state.
    x.bn_relu(args).unwrap().backward_with(&seed).unwrap();
    let fused = traffic(&stats, || x.bn_relu(args)?.backward_with(&seed));
    let unfused = traffic(&stats, || x.batch_norm(args)?.relu()?.backward_with(&seed));
    println!("BN+ReLU fwd+bwd [8,64,16,16] f32: fused {fused} bytes, BN then ReLU {unfused} bytes");
    assert!(fused < unfused, "fused {fused} >= unfused {unfused}");

    let logits = g
        .normal(&[64, 1000], 0.0, 1.0, DType::F32)
        .unwrap()
        .to_device(gpu)
        .unwrap();
    logits.requires_grad_(true);
    let labels: Vec<i64> = (0..64).map(|i| (i * 37 % 1000) as i64).collect();
    let labels = Tensor::from_vec(labels, &[64])
        .unwrap()
        .to_device(gpu)
        .unwrap();
    let onehot = labels
        .reshape(&[64, 1])
        .unwrap()
        .eq(&Tensor::arange(0.0, 1000.0, 1.0, DType::I64)
            .unwrap()
            .to_device(gpu)
            .unwrap())
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    logits
        .cross_entropy(&labels, 0.0)
        .unwrap()
        .backward()
        .unwrap();
    let fused = traffic(&stats, || logits.cross_entropy(&labels, 0.0)?.backward());
    let unfused = traffic(&stats, || {
        let nll = logits
            .log_softmax(-1)?
            .mul(&onehot)?
            .sum_all()?
            .mul_scalar(-1.0 / 64.0)?;
        nll.backward()
    });
    println!("cross-entropy fwd+bwd [64,1000] f32: fused {fused} bytes, log-softmax + loss {unfused} bytes");
    assert!(fused < unfused, "fused {fused} >= unfused {unfused}");
    let _ = std::fs::remove_file(&stats);
}
