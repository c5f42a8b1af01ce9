//! What the tests of the BN fusions with kiln's tensor-core convolution share (statistics from
//! the conv's epilogue, apply + ReLU in the next conv's prologue): one stats file per binary,
//! inputs, a BN's parameters and buffers, and a tolerance check.

use kiln_engine::{BatchNormArgs, DType, Device, Generator, Tensor};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The stats file (`kiln-TAG-PID.jsonl`), set before any kernel runs, with cuDNN switched off so
/// kiln's kernels serve; `None` (skipped) without a CUDA device. The tests of a binary run one
/// at a time (the guard), so each one's launches are its own.
pub fn setup(tag: &str) -> Option<(PathBuf, MutexGuard<'static, ()>)> {
    static LOCK: Mutex<()> = Mutex::new(());
    static PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = PATH.get_or_init(|| {
        if let Err(e) = kiln_engine::cuda::device(0) {
            let _ = writeln!(std::io::stderr(), "skipped: {e}");
            return None;
        }
        let p = std::env::temp_dir().join(format!("kiln-{tag}-{}.jsonl", std::process::id()));
        std::env::set_var("KILN_EMU_STATS", &p);
        kiln_engine::cuda::set_cudnn_enabled(false);
        Some(p)
    });
    path.clone().map(|p| (p, guard))
}

/// Uniform(-1, 1) values rounded to `dtype`, on the CPU.
pub fn values(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    Generator::new(seed)
        .uniform(shape, -1.0, 1.0, DType::F32)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// Asserts |got - want| <= tol·max(|want|, 1e-3) element-wise (on any device, in any dtype),
/// naming the first mismatches.
pub fn close_scaled(what: &str, got: &Tensor, want: &Tensor, tol: f64) {
    let host = |t: &Tensor| -> Vec<f64> {
        let t = t
            .to_device(Device::Cpu)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        let v = t.contiguous().unwrap().to_vec_f32().unwrap();
        v.into_iter().map(f64::from).collect()
    };
    let (g, w) = (host(got), host(want));
    assert_eq!(g.len(), w.len(), "{what}: lengths");
    let atol = tol * w.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    let bad: Vec<String> = g
        .iter()
        .zip(&w)
        .enumerate()
        .filter(|(_, (g, w))| (**g - **w).abs() > atol || g.is_nan())
        .take(5)
        .map(|(i, (g, w))| format!("[{i}] {g} vs {w}"))
        .collect();
    assert!(bad.is_empty(), "{what}: {bad:?} (atol {atol})");
}

/// A training BN's parameters (γ, β: leaves with gradients) and running buffers on one device.
pub struct Bn {
    pub gamma: Tensor,
    pub beta: Tensor,
    pub mean: Tensor,
    pub var: Tensor,
    momentum: f64,
}

impl Bn {
    /// `c` channels on `dev`, running buffers starting at `running` (mean, var), updated with
    /// `momentum` (1: they become the batch statistics).
    pub fn new(c: usize, dev: Device, running: (f64, f64), momentum: f64) -> Bn {
        let vec = |seed, lo, hi| {
            let t = Generator::new(seed)
                .uniform(&[c], lo, hi, DType::F32)
                .unwrap()
                .to_device(dev)
                .unwrap();
            t.requires_grad_(true);
            t
        };
        Bn {
            gamma: vec(91, 0.5, 1.5),
            beta: vec(92, -0.5, 0.5),
            mean: Tensor::full_on(&[c], running.0, DType::F32, dev).unwrap(),
            var: Tensor::full_on(&[c], running.1, DType::F32, dev).unwrap(),
            momentum,
        }
    }

    /// The training-mode arguments over these tensors.
    pub fn args(&self) -> BatchNormArgs<'_> {
        BatchNormArgs {
            weight: Some(&self.gamma),
            bias: Some(&self.beta),
            running_mean: Some(&self.mean),
            running_var: Some(&self.var),
            num_batches_tracked: None,
            training: true,
            momentum: self.momentum,
            eps: 1e-5,
        }
    }
}

/// Square stride and padding, `groups` groups, no dilation.
pub fn conv_params(stride: usize, pad: usize, groups: usize) -> kiln_engine::Conv2dParams {
    super::conv2d_params([stride; 2], [pad; 2], [1, 1], groups)
}
