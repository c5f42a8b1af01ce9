//! Dropout and drop-path (stochastic depth) from the Philox stream.

use super::creation::Generator;
use crate::{Error, Layout, Result, Storage, Tensor};
use std::sync::Mutex;

static GLOBAL: Mutex<Option<Generator>> = Mutex::new(None);

/// Seeds the global generator that dropout and drop-path draw from (PyTorch's `manual_seed`).
pub fn manual_seed(seed: u64) {
    *GLOBAL.lock().unwrap_or_else(|e| e.into_inner()) = Some(Generator::new(seed));
}

/// Runs `f` with the global generator (seeded with 0 if never seeded).
pub fn with_global_generator<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(|| Generator::new(0)))
}

fn check_p(op: &'static str, p: f64) -> Result<()> {
    if !(0.0..1.0).contains(&p) {
        return Err(Error::InvalidArgument {
            op,
            msg: format!("probability must be in [0, 1), got {p}"),
        });
    }
    Ok(())
}

/// A {0, 1/(1-p)} mask of `shape` in `like`'s dtype, drawn on `like`'s device from the global
/// generator (the same elements survive on every device).
fn keep_mask(shape: &[usize], p: f64, like: &Tensor) -> Result<Tensor> {
    let l = Layout::contiguous(shape);
    let n = l.numel();
    let (seed, offset) = with_global_generator(|g| (g.seed(), g.advance(n as u64)));
    let s = Storage::dropout_mask(like.device(), like.dtype(), seed, offset, p, n)?;
    Ok(Tensor::plain(s, l))
}

impl Tensor {
    /// Zeroes each element with probability `p` and scales the rest by 1/(1-p) when training.
    pub fn dropout(&self, p: f64, training: bool) -> Result<Tensor> {
        check_p("dropout", p)?;
        if !training || p == 0.0 {
            return Ok(self.clone());
        }
        self.mul(&keep_mask(self.shape(), p, self)?)
    }

    /// Drops whole samples (dim 0) with probability `p`, scaling survivors by 1/(1-p) (timm's
    /// `drop_path` with `scale_by_keep=True`).
    pub fn drop_path(&self, p: f64, training: bool) -> Result<Tensor> {
        check_p("drop_path", p)?;
        if !training || p == 0.0 || self.rank() == 0 {
            return Ok(self.clone());
        }
        let mut shape = vec![1; self.rank()];
        shape[0] = self.shape()[0];
        self.mul(&keep_mask(&shape, p, self)?)
    }
}
