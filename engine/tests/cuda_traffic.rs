//! Fusion, judged by the emulator's memory-traffic counters (`KILN_EMU_STATS`): fused BN+ReLU
//! moves fewer global bytes than BN then ReLU, the fused softmax cross-entropy fewer than
//! log-softmax followed by the loss, the fused BCE with logits fewer than its composition (forward
//! and backward), the one-pass global gradient norm fewer than a reduction per tensor, the
//! fused squeeze-excite fewer than pool, 1×1 convs, activations and a broadcast multiply, and
//! fused attention fewer than matmul + softmax + matmul (forward and backward).

use kiln_engine::{BatchNormArgs, DType, Device, Generator, Result, Tensor};
use std::io::Write;

mod common;

/// Global bytes (loaded + stored) the kernels launched by `f` moved, from the stats file.
fn traffic(stats: &std::path::Path, f: impl FnOnce() -> Result<()>) -> u64 {
    common::global_bytes(&common::launches(stats, || f().unwrap()))
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
    let args = BatchNormArgs::batch_stats(Some(&gamma), Some(&beta));
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

    // BCE with logits against smoothed one-hot targets (timm's BinaryCrossEntropy): fused, or
    // composed as timm's targets and PyTorch's formula (1 - y)·x + relu(-x) + log(1 + exp(-|x|)).
    let opts = kiln_engine::BceOpts::default();
    let y = onehot.affine(0.9, 0.1 / 1000.0).unwrap();
    let bce_fused = traffic(&stats, || {
        logits
            .bce_with_logits_rows(&labels, 0.1, opts)?
            .mean_all()?
            .backward()
    });
    let bce_unfused = traffic(&stats, || {
        let y = onehot.affine(0.9, 0.1 / 1000.0)?;
        let softplus = logits
            .neg()?
            .relu()?
            .add(&logits.abs()?.neg()?.exp()?.add_scalar(1.0)?.log()?)?;
        let loss = y.affine(-1.0, 1.0)?.mul(&logits)?.add(&softplus)?;
        loss.mean_all()?.backward()
    });
    drop(y);
    println!("BCE fwd+bwd [64,1000] f32: fused {bce_fused} bytes, targets + composed ops {bce_unfused} bytes");
    assert!(
        bce_fused < bce_unfused,
        "fused {bce_fused} >= unfused {bce_unfused}"
    );

    // The global norm of resnet18-like gradient shapes: one fused pass, or a reduction per tensor.
    let shapes: [&[usize]; 5] = [
        &[64, 3, 7, 7],
        &[64],
        &[128, 64, 3, 3],
        &[512, 256, 3, 3],
        &[10, 512],
    ];
    let grads: Vec<Tensor> = shapes
        .iter()
        .map(|s| {
            g.normal(s, 0.0, 1.0, DType::F32)
                .unwrap()
                .to_device(gpu)
                .unwrap()
        })
        .collect();
    let mut norms = (0.0, 0.0);
    let norm_fused = traffic(&stats, || {
        norms.0 = kiln_engine::grad_norm(&grads)?;
        Ok(())
    });
    let norm_unfused = traffic(&stats, || {
        let sq: Result<Vec<f64>> = grads.iter().map(|t| t.sqr()?.sum_all()?.item()).collect();
        norms.1 = sq?.iter().sum::<f64>().sqrt();
        Ok(())
    });
    println!("global grad norm, 5 tensors, 1.27M f32: fused {norm_fused} bytes, per tensor {norm_unfused} bytes");
    assert!((norms.0 - norms.1).abs() <= 1e-5 * norms.1, "{norms:?}");
    assert!(
        norm_fused < norm_unfused,
        "fused {norm_fused} >= unfused {norm_unfused}"
    );

    // Squeeze-excite (EfficientNet's: SiLU, sigmoid), fused or as the modules composed it.
    let x = g
        .normal(&[8, 64, 16, 16], 0.0, 1.0, DType::F32)
        .unwrap()
        .to_device(gpu)
        .unwrap();
    x.requires_grad_(true);
    let params: Vec<Tensor> = [&[16usize, 64, 1, 1][..], &[16], &[64, 16, 1, 1], &[64]]
        .iter()
        .map(|s| {
            let t = g
                .normal(s, 0.0, 0.2, DType::F32)
                .unwrap()
                .to_device(gpu)
                .unwrap();
            t.requires_grad_(true);
            t
        })
        .collect();
    let se = kiln_engine::SqueezeExcite {
        w1: &params[0],
        b1: &params[1],
        w2: &params[2],
        b2: &params[3],
        act: kiln_engine::UnaryOp::Silu,
        gate: kiln_engine::UnaryOp::Sigmoid,
    };
    x.squeeze_excite(se).unwrap().backward_with(&seed).unwrap();
    let se_fused = traffic(&stats, || x.squeeze_excite(se)?.backward_with(&seed));
    let se_unfused = traffic(&stats, || {
        let conv = |t: &Tensor, w: &Tensor, b: &Tensor| t.conv2d(w, Some(b), Default::default());
        let s = conv(&x.mean_dims(&[2, 3], true)?, se.w1, se.b1)?.silu()?;
        let gate = conv(&s, se.w2, se.b2)?.sigmoid()?;
        x.mul(&gate)?.backward_with(&seed)
    });
    println!("squeeze-excite fwd+bwd [8,64,16,16] rd 16 f32: fused {se_fused} bytes, composed ops {se_unfused} bytes");
    assert!(
        se_fused < se_unfused,
        "fused {se_fused} >= unfused {se_unfused}"
    );
    attention_traffic(&stats, &mut g);
    let _ = std::fs::remove_file(&stats);
}

/// Fused scaled-dot-product attention (forward and backward: O, lse and Δ reach global memory,
/// never the N×N scores) against scale, matmul, softmax, matmul and their backward.
fn attention_traffic(stats: &std::path::Path, g: &mut Generator) {
    let gpu = Device::Cuda(0);
    let qkv: Vec<Tensor> = (0..3)
        .map(|_| {
            let t = g.normal(&[1, 4, 65, 64], 0.0, 1.0, DType::F32).unwrap();
            t.to_device(gpu).unwrap().requires_grad_(true).clone()
        })
        .collect();
    let seed = Tensor::full_on(&[1, 4, 65, 64], 0.5, DType::F32, gpu).unwrap();
    let (q, k, v) = (&qkv[0], &qkv[1], &qkv[2]);
    let fused_step =
        || Tensor::scaled_dot_product_attention(q, k, v, None, false)?.backward_with(&seed);
    let unfused_step = || {
        let scores = q.mul_scalar(0.125)?.matmul(&k.transpose(-2, -1)?)?;
        scores.softmax(-1)?.matmul(v)?.backward_with(&seed)
    };
    fused_step().unwrap();
    unfused_step().unwrap();
    let fused = traffic(stats, fused_step);
    let unfused = traffic(stats, unfused_step);
    println!("attention fwd+bwd [1,4,65,64] f32: fused {fused} bytes, matmul+softmax+matmul {unfused} bytes");
    assert!(fused < unfused, "fused {fused} >= unfused {unfused}");
}
