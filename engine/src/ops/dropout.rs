//! Dropout and drop-path (stochastic depth) from the Philox stream.

use super::creation::Generator;
use crate::{Error, Layout, Result, Storage, Tensor};
use std::cell::RefCell;
use std::sync::Mutex;

static GLOBAL: Mutex<Option<Generator>> = Mutex::new(None);

thread_local! {
    /// The calling thread's own generator, once [`manual_seed_thread`] gave it one.
    static OWN: RefCell<Option<Generator>> = const { RefCell::new(None) };
}

/// Seeds the global generator that dropout and drop-path draw from (PyTorch's `manual_seed`).
pub fn manual_seed(seed: u64) {
    *GLOBAL.lock().unwrap_or_else(|e| e.into_inner()) = Some(Generator::new(seed));
}

/// Gives the calling thread a generator of its own, seeded with `seed`, in place of the global
/// one: each device thread of a one-process, many-device run draws its rank's stream, as each
/// process of a multi-process run draws from its own global generator.
pub fn manual_seed_thread(seed: u64) {
    OWN.with(|own| *own.borrow_mut() = Some(Generator::new(seed)));
}

/// Runs `f` with the calling thread's generator: its own (see [`manual_seed_thread`]), else the
/// global one (seeded with 0 if never seeded).
pub fn with_global_generator<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    OWN.with(|own| match own.borrow_mut().as_mut() {
        Some(g) => f(g),
        None => {
            let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
            f(g.get_or_insert_with(|| Generator::new(0)))
        }
    })
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
    crate::trace::traced(
        || crate::trace::Op::RandomMask { p },
        [],
        || {
            crate::backend::refuse_host_draw("dropout or drop-path")?;
            let l = Layout::contiguous(shape);
            let n = l.numel();
            let (seed, offset) = with_global_generator(|g| (g.seed(), g.advance(n as u64)));
            let s = Storage::dropout_mask(like.device(), like.dtype(), seed, offset, p, n)?;
            Ok(Tensor::plain(s, l))
        },
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, Device};

    /// A dropout mask drawn on a fresh thread with its own generator seeded `seed`, and that
    /// generator's offset after the draw.
    fn thread_draw(seed: u64) -> (Vec<f32>, u64) {
        std::thread::spawn(move || {
            manual_seed_thread(seed);
            let x = Tensor::ones(&[64], DType::F32).unwrap();
            let mask = x.dropout(0.5, true).unwrap().to_vec_f32().unwrap();
            (mask, with_global_generator(|g| g.offset()))
        })
        .join()
        .unwrap()
    }

    #[test]
    fn a_thread_generator_is_a_stream_of_its_own() {
        let (a, offset) = thread_draw(11);
        let (b, _) = thread_draw(11);
        let (c, _) = thread_draw(12);
        assert_eq!(a, b, "the same seed draws the same mask on any thread");
        assert_ne!(a, c);
        // The mask and the offset are those of a fresh generator of that seed.
        let mut fresh = Generator::new(11);
        let start = fresh.advance(64);
        assert_eq!(
            offset,
            fresh.offset(),
            "the draw advanced the thread's own generator"
        );
        let want = Storage::dropout_mask(Device::Cpu, DType::F32, fresh.seed(), start, 0.5, 64)
            .and_then(|s| Tensor::plain(s, Layout::contiguous(&[64])).to_vec_f32())
            .unwrap();
        assert_eq!(a, want);
    }
}
