//! validate.py's `--retry`: a validation that runs out of device memory starts over with a
//! smaller batch, stepped down as timm's `decay_batch_step`.

use kiln_train::{Error, Result};

/// timm's `decay_batch_step(batch_size)` (two steps per power of two): 256, 192, 128, 96, 64,
/// ..., 4, 3, 2, 1, then 0 (stop).
pub fn decay_batch_step(batch: usize) -> usize {
    if batch <= 1 {
        return 0;
    }
    // The largest power of two below `batch`, and half of it as the step.
    let base = 1usize << (usize::BITS - 1 - (batch - 1).leading_zeros());
    let step = (base / 2).max(1);
    base + (batch - base - 1) / step * step
}

/// Whether `e` is the device running out of memory: the one failure a smaller batch mends.
pub fn is_out_of_memory(e: &Error) -> bool {
    let oom = |e: &kiln_engine::Error| matches!(e, kiln_engine::Error::OutOfMemory { .. });
    match e {
        Error::Engine(e) => oom(e),
        Error::Nn(kiln_nn::Error::Engine(e)) => oom(e),
        _ => false,
    }
}

/// `run(batch)`, and again with the batch stepped down while it runs out of device memory,
/// saying so as timm's `_try_run` logs it; the last error when even a batch of 1 does not fit.
pub fn with_retry<T>(batch: usize, mut run: impl FnMut(usize) -> Result<T>) -> Result<T> {
    let mut batch = batch;
    loop {
        match run(batch) {
            Err(e) if is_out_of_memory(&e) => {
                println!("\"{e}\" while running validation.");
                batch = decay_batch_step(batch);
                if batch == 0 {
                    return Err(e);
                }
                println!("Reducing batch size to {batch} for retry.");
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// timm.utils.decay_batch_step, run down to 0 from each start (checked equal for every
    /// start below 65536).
    #[test]
    fn batch_sizes_step_down_as_timms() {
        let timm: [&[usize]; 4] = [
            &[
                256, 192, 128, 96, 64, 48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1, 0,
            ],
            &[
                1000, 768, 512, 384, 256, 192, 128, 96, 64, 48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1, 0,
            ],
            &[96, 64, 48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1, 0],
            &[7, 6, 4, 3, 2, 1, 0],
        ];
        for seq in timm {
            let ours: Vec<usize> =
                std::iter::successors(Some(seq[0]), |&b| (b > 0).then(|| decay_batch_step(b)))
                    .collect();
            assert_eq!(ours, seq);
        }
    }

    fn oom() -> Error {
        Error::Engine(kiln_engine::Error::OutOfMemory {
            device: 0,
            requested: 1 << 30,
            allocated: 0,
            reserved: 0,
            free: 0,
            total: 1 << 30,
        })
    }

    #[test]
    fn retries_only_out_of_memory_with_smaller_batches() {
        let mut tried = Vec::new();
        let got = with_retry(256, |b| {
            tried.push(b);
            if b > 40 {
                Err(oom())
            } else {
                Ok(b)
            }
        });
        assert_eq!(got.unwrap(), 32);
        assert_eq!(tried, [256, 192, 128, 96, 64, 48, 32]);
        let mut tried = Vec::new();
        let e = with_retry(8, |b| -> Result<()> {
            tried.push(b);
            Err(Error::Dist("lost".into()))
        });
        assert!(e.is_err() && tried == [8], "other errors are not retried");
        let mut tried = Vec::new();
        let e = with_retry(4, |b| -> Result<()> {
            tried.push(b);
            Err(Error::Nn(kiln_nn::Error::Engine(match oom() {
                Error::Engine(e) => e,
                _ => unreachable!(),
            })))
        });
        assert!(is_out_of_memory(&e.unwrap_err()));
        assert_eq!(tried, [4, 3, 2, 1]);
    }
}
