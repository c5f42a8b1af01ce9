//! Weight initialization with PyTorch's and timm's formulas, drawn from the global Philox stream
//! (seed it with `kiln_engine::manual_seed`). Inside [`skip_init`] every initializer returns
//! zeros instead, drawing nothing.

use crate::Result;
use kiln_engine::{DType, Generator, Tensor};
use std::cell::Cell;

thread_local! {
    static SKIPPING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `build` with every initializer of this module returning zeros of its shape, drawing
/// nothing from the global stream: for models whose weights are about to be replaced (a
/// checkpoint load) or only inspected (names and shapes). Zeros are allocated lazily by the OS,
/// so even a billion-parameter model builds in moments and touches little memory.
pub fn skip_init<T>(build: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SKIPPING.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SKIPPING.with(|s| s.replace(true)));
    build()
}

/// A draw from the global stream, or zeros of `shape` inside [`skip_init`].
fn draw(
    shape: &[usize],
    f: impl FnOnce(&mut Generator) -> kiln_engine::Result<Tensor>,
) -> Result<Tensor> {
    match SKIPPING.with(Cell::get) {
        true => Ok(Tensor::zeros(shape, DType::F32)?),
        false => Ok(kiln_engine::with_global_generator(f)?),
    }
}

/// He-normal with fan_out and ReLU gain: N(0, 2/fan_out), as timm's ResNet conv init.
pub fn kaiming_normal_fan_out(shape: &[usize]) -> Result<Tensor> {
    let fan_out = shape[0] * shape[2..].iter().product::<usize>();
    let std = (2.0 / fan_out.max(1) as f64).sqrt();
    draw(shape, |g| g.normal(shape, 0.0, std, DType::F32))
}

/// He-normal with fan_in and ReLU gain: N(0, 2/fan_in), PyTorch's `kaiming_normal_` defaults
/// (timm's DenseNet convs).
pub fn kaiming_normal_fan_in(shape: &[usize]) -> Result<Tensor> {
    let fan_in = shape[1..].iter().product::<usize>();
    let std = (2.0 / fan_in.max(1) as f64).sqrt();
    draw(shape, |g| g.normal(shape, 0.0, std, DType::F32))
}

/// U(-1/√fan_in, 1/√fan_in): PyTorch's default for Linear and Conv weights and biases.
pub fn uniform_fan_in(shape: &[usize], fan_in: usize) -> Result<Tensor> {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    draw(shape, |g| g.uniform(shape, -bound, bound, DType::F32))
}

/// U(low, high): torch's `rand` scaled (RoPE-ViT's mixed frequencies' angles).
pub fn uniform(shape: &[usize], low: f64, high: f64) -> Result<Tensor> {
    draw(shape, |g| g.uniform(shape, low, high, DType::F32))
}

/// timm's `_init_weight_goog` for convs: N(0, 2/fan_out) with fan_out = k_h·k_w·out / groups.
pub fn goog_conv_normal(shape: &[usize], groups: usize) -> Result<Tensor> {
    let fan_out = shape[0] * shape[2..].iter().product::<usize>() / groups.max(1);
    let std = (2.0 / fan_out.max(1) as f64).sqrt();
    draw(shape, |g| g.normal(shape, 0.0, std, DType::F32))
}

/// PyTorch's `xavier_uniform_`: U(±√(6 / (fan_in + fan_out))), the fans dims 1 and 0 times the
/// kernel size.
pub fn xavier_uniform(shape: &[usize]) -> Result<Tensor> {
    let fans = (shape[0] + shape[1]) * shape[2..].iter().product::<usize>();
    let bound = (6.0 / fans.max(1) as f64).sqrt();
    draw(shape, |g| g.uniform(shape, -bound, bound, DType::F32))
}

/// timm's `_init_weight_goog` for Linear weights [out, in]: U(±1/√out).
pub fn goog_linear_uniform(shape: &[usize]) -> Result<Tensor> {
    uniform_fan_in(shape, shape[0])
}

/// timm's `trunc_normal_(std=std)`: N(0, std²) redrawn outside its default bounds [-2, 2], as
/// a parameter.
pub fn trunc_normal(shape: &[usize], std: f64) -> Result<Tensor> {
    let w = draw(shape, |g| {
        g.trunc_normal(shape, 0.0, std, -2.0, 2.0, DType::F32)
    })?;
    Ok(w.requires_grad_(true).clone())
}

/// timm's `trunc_normal_tf_(std=std)`: N(0, std²) redrawn outside ±2·std, as a parameter (the
/// latent query of an attention pool).
pub fn trunc_normal_tf(shape: &[usize], std: f64) -> Result<Tensor> {
    let w = draw(shape, |g| {
        g.trunc_normal(shape, 0.0, std, -2.0 * std, 2.0 * std, DType::F32)
    })?;
    Ok(w.requires_grad_(true).clone())
}

/// N(0, std²): timm's `normal_(0, std)` (RegNet's classifier weight, std 0.01).
pub fn normal(shape: &[usize], std: f64) -> Result<Tensor> {
    draw(shape, |g| g.normal(shape, 0.0, std, DType::F32))
}

/// A zero-filled parameter (a bias under timm's ConvNeXt and ViT init).
pub fn zeros(shape: &[usize]) -> Result<Tensor> {
    Ok(Tensor::zeros(shape, DType::F32)?
        .requires_grad_(true)
        .clone())
}
