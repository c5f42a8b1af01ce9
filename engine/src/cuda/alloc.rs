//! A caching allocator, after PyTorch's: freed blocks go back to size-class pools instead of the
//! driver, so a training step allocates from the driver only in its first iteration. Blocks are
//! handed out on the device's compute stream; stream order makes reuse safe without events.

use std::collections::BTreeMap;

/// Requests up to this size round to [`SMALL_ROUND`]; larger ones to [`LARGE_ROUND`].
const SMALL_LIMIT: usize = 1 << 20;
const SMALL_ROUND: usize = 512;
const LARGE_ROUND: usize = 2 << 20;

/// Memory counters of one device, in bytes (PyTorch's `torch.cuda.memory_*` figures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes in blocks that tensors hold now.
    pub allocated: usize,
    /// Bytes obtained from the driver: allocated plus cached.
    pub reserved: usize,
    /// The largest `allocated` seen since the last reset.
    pub peak_allocated: usize,
    /// Requests served from the cache.
    pub cache_hits: u64,
    /// Requests that went to the driver.
    pub driver_allocs: u64,
}

/// The size class a request of `bytes` is served from.
pub fn block_size(bytes: usize) -> usize {
    let round = if bytes <= SMALL_LIMIT {
        SMALL_ROUND
    } else {
        LARGE_ROUND
    };
    bytes.max(1).div_ceil(round) * round
}

/// Free blocks by size, and the counters.
#[derive(Debug, Default)]
pub struct Pool {
    free: BTreeMap<usize, Vec<u64>>,
    stats: MemoryStats,
}

impl Pool {
    /// A cached block of at least `size` bytes (a size class), if one fits without wasting more
    /// than the request itself; returns its address and actual size.
    pub fn take(&mut self, size: usize) -> Option<(u64, usize)> {
        let (&found, list) = self.free.range_mut(size..=size * 2).next()?;
        let ptr = list.pop()?;
        if list.is_empty() {
            self.free.remove(&found);
        }
        self.stats.cache_hits += 1;
        self.note_allocated(found);
        Some((ptr, found))
    }

    /// Records a block of `size` bytes newly obtained from the driver.
    pub fn record_driver_alloc(&mut self, size: usize) {
        self.stats.driver_allocs += 1;
        self.stats.reserved += size;
        self.note_allocated(size);
    }

    fn note_allocated(&mut self, size: usize) {
        self.stats.allocated += size;
        self.stats.peak_allocated = self.stats.peak_allocated.max(self.stats.allocated);
    }

    /// Returns a block to the cache.
    pub fn give_back(&mut self, ptr: u64, size: usize) {
        self.stats.allocated -= size;
        self.free.entry(size).or_default().push(ptr);
    }

    /// Empties the cache, returning the blocks to hand back to the driver.
    pub fn drain(&mut self) -> Vec<u64> {
        let blocks: Vec<(usize, Vec<u64>)> = std::mem::take(&mut self.free).into_iter().collect();
        let mut out = Vec::new();
        for (size, ptrs) in blocks {
            self.stats.reserved -= size * ptrs.len();
            out.extend(ptrs);
        }
        out
    }

    /// The counters.
    pub fn stats(&self) -> MemoryStats {
        self.stats
    }

    /// Restarts peak tracking from the current allocation.
    pub fn reset_peak(&mut self) {
        self.stats.peak_allocated = self.stats.allocated;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_to_classes_and_freed_blocks_are_reused() {
        assert_eq!(block_size(1), 512);
        assert_eq!(block_size(513), 1024);
        assert_eq!(block_size(SMALL_LIMIT + 1), LARGE_ROUND);
        let mut p = Pool::default();
        assert!(p.take(512).is_none());
        p.record_driver_alloc(1024);
        p.give_back(0x1000, 1024);
        assert_eq!(p.stats().allocated, 0);
        assert_eq!(p.stats().reserved, 1024);
        // A 512-byte request may take the 1024-byte block (waste at most the request)...
        assert_eq!(p.take(512), Some((0x1000, 1024)));
        p.give_back(0x1000, 1024);
        // ...but a 256-byte class may not.
        assert!(p.take(256).is_none());
        assert_eq!(p.stats().peak_allocated, 1024);
        assert_eq!(p.drain(), vec![0x1000]);
        assert_eq!(p.stats().reserved, 0);
    }
}
