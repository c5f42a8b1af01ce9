//! webdataset's `_shuffle` buffer and `pick`: fill up to `bufsize` (two samples taken per one
//! given while filling), start giving once `initial` are held, each taken from a position drawn
//! by Python's `randint` and replaced by the buffer's last sample; drain at the end.
use crate::sched::PyRandom;

/// A shuffle buffer fed from outside: `offer` a sample (or say the source ended) and take what
/// it gives back.
#[derive(Debug)]
pub struct ShuffleBuffer<T> {
    buf: Vec<T>,
    bufsize: usize,
    initial: usize,
}

impl<T> ShuffleBuffer<T> {
    /// An empty buffer of `bufsize` samples that starts giving once it holds `initial`.
    pub fn new(bufsize: usize, initial: usize) -> Self {
        ShuffleBuffer {
            buf: Vec::new(),
            bufsize,
            initial: initial.min(bufsize),
        }
    }

    /// Whether the buffer wants a second sample after one just offered (`_shuffle` reads one more
    /// while it holds fewer than `bufsize`).
    pub fn wants_more(&self) -> bool {
        self.buf.len() < self.bufsize
    }

    /// Adds a sample.
    pub fn push(&mut self, sample: T) {
        self.buf.push(sample);
    }

    /// A sample, if the buffer holds `initial` (or, with `draining`, any).
    pub fn take(&mut self, rng: &mut PyRandom, draining: bool) -> Option<T> {
        if self.buf.is_empty() || (!draining && self.buf.len() < self.initial) {
            return None;
        }
        let k = rng.randint(0, self.buf.len() as u64 - 1) as usize;
        Some(self.buf.swap_remove(k))
    }
}

/// webdataset's `_shuffle` over a whole iterator, eagerly (for shard lists and tests).
pub fn shuffled<T>(
    items: impl IntoIterator<Item = T>,
    bufsize: usize,
    initial: usize,
    rng: &mut PyRandom,
) -> Vec<T> {
    let mut buffer = ShuffleBuffer::new(bufsize, initial);
    let mut src = items.into_iter().fuse();
    let mut out = Vec::new();
    while let Some(item) = src.next() {
        buffer.push(item);
        if buffer.wants_more() {
            if let Some(more) = src.next() {
                buffer.push(more);
            }
        }
        out.extend(buffer.take(rng, false));
    }
    while let Some(item) = buffer.take(rng, true) {
        out.push(item);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{shuffled, PyRandom};

    /// `list(webdataset.filters._shuffle(iter(range(20)), 8, 3, random.Random(5)))`, webdataset 1.0.2.
    #[test]
    fn matches_webdataset() {
        let got = shuffled(0..20usize, 8, 3, &mut PyRandom::new(5));
        assert_eq!(
            got,
            [2, 3, 7, 9, 0, 12, 4, 11, 5, 1, 8, 18, 13, 19, 6, 14, 16, 17, 15, 10]
        );
    }
}
