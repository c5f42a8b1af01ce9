//! A caching allocator, after PyTorch's: freed blocks go back to size-class pools instead of the
//! driver, so a training step allocates from the driver only in its first iteration. Blocks are
//! handed out on the device's compute stream; stream order makes reuse safe without events.
//!
//! CUDA graphs get private pools (PyTorch's graph pools): while a thread captures, every block it
//! takes (from the pool's own free blocks first, else from the cache) and every block it frees
//! belongs to the graph's pool. A pool's blocks are reused only by captures into that pool, since
//! each replay writes them again, and go back to the cache when the graph is destroyed. A capture
//! never allocates from the driver: a miss is the caller's error to handle (reserve, then
//! capture again).

use std::collections::{BTreeMap, HashMap};

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
    /// Bytes of free blocks that CUDA graphs' private pools keep for their replays (part of
    /// `reserved`, never handed to other users while their graph lives).
    pub graph_cached: usize,
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

/// Free blocks by size.
type FreeList = BTreeMap<usize, Vec<u64>>;

/// The id of a CUDA graph's private pool.
pub type PoolId = u64;

/// Free blocks by size, the graphs' private pools, and the counters.
#[derive(Debug, Default)]
pub struct Pool {
    free: FreeList,
    /// Each live graph's pool: its free blocks.
    private: HashMap<PoolId, FreeList>,
    /// The pool each block taken or freed during a capture belongs to (while it exists).
    owner: HashMap<u64, PoolId>,
    next_pool: PoolId,
    stats: MemoryStats,
}

/// The smallest block of at least `size` bytes in `free` that wastes at most the request.
fn take_from(free: &mut FreeList, size: usize) -> Option<(u64, usize)> {
    let (&found, list) = free.range_mut(size..=size * 2).next()?;
    let ptr = list.pop()?;
    if list.is_empty() {
        free.remove(&found);
    }
    Some((ptr, found))
}

impl Pool {
    /// A cached block of at least `size` bytes (a size class), if one fits without wasting more
    /// than the request itself; returns its address and actual size.
    pub fn take(&mut self, size: usize) -> Option<(u64, usize)> {
        let (ptr, found) = take_from(&mut self.free, size)?;
        self.stats.cache_hits += 1;
        self.note_allocated(found);
        Some((ptr, found))
    }

    /// A new private pool for a graph about to be captured.
    pub fn new_private(&mut self) -> PoolId {
        self.next_pool += 1;
        self.private.insert(self.next_pool, FreeList::new());
        self.next_pool
    }

    /// A block for a capture into `pool`: one of the pool's free blocks, else a cached one that
    /// joins the pool; None when neither fits (the capture cannot ask the driver).
    pub fn take_for_capture(&mut self, pool: PoolId, size: usize) -> Option<(u64, usize)> {
        let own = self.private.get_mut(&pool).and_then(|f| take_from(f, size));
        let (ptr, found) = match own {
            Some(b) => {
                self.stats.graph_cached -= b.1;
                b
            }
            None => {
                let b = take_from(&mut self.free, size)?;
                self.owner.insert(b.0, pool);
                b
            }
        };
        self.stats.cache_hits += 1;
        self.note_allocated(found);
        Some((ptr, found))
    }

    /// Hands a graph's pool back: its free blocks return to the cache, and the ones tensors still
    /// hold will when they are freed.
    pub fn release_private(&mut self, pool: PoolId) {
        let Some(free) = self.private.remove(&pool) else {
            return;
        };
        for (size, ptrs) in free {
            self.stats.graph_cached -= size * ptrs.len();
            for ptr in ptrs {
                self.owner.remove(&ptr);
                self.free.entry(size).or_default().push(ptr);
            }
        }
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

    /// Returns a block to the cache, or to the private pool it belongs to; `capture` is the pool
    /// of a capture in progress on the freeing thread, which the block joins (a graph may still
    /// read or write it on replay).
    pub fn give_back(&mut self, ptr: u64, size: usize, capture: Option<PoolId>) {
        self.stats.allocated -= size;
        let live = |p: &PoolId| self.private.contains_key(p);
        let pool = self.owner.get(&ptr).copied().filter(live).or(capture);
        match pool.and_then(|p| Some((p, self.private.get_mut(&p)?))) {
            Some((p, free)) => {
                free.entry(size).or_default().push(ptr);
                self.owner.insert(ptr, p);
                self.stats.graph_cached += size;
            }
            None => {
                self.owner.remove(&ptr);
                self.free.entry(size).or_default().push(ptr);
            }
        }
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
        p.give_back(0x1000, 1024, None);
        assert_eq!(p.stats().allocated, 0);
        assert_eq!(p.stats().reserved, 1024);
        // A 512-byte request may take the 1024-byte block (waste at most the request)...
        assert_eq!(p.take(512), Some((0x1000, 1024)));
        p.give_back(0x1000, 1024, None);
        // ...but a 256-byte class may not.
        assert!(p.take(256).is_none());
        assert_eq!(p.stats().peak_allocated, 1024);
        assert_eq!(p.drain(), vec![0x1000]);
        assert_eq!(p.stats().reserved, 0);
    }

    #[test]
    fn a_graphs_pool_keeps_its_blocks_until_it_is_released() {
        let mut p = Pool::default();
        for (ptr, size) in [(0x1000, 512), (0x2000, 512), (0x3000, 4096)] {
            p.record_driver_alloc(size);
            p.give_back(ptr, size, None);
        }
        // A block the capture takes and frees, and one allocated before it and freed during it,
        // join the graph's pool...
        let g = p.new_private();
        assert_eq!(p.take_for_capture(g, 512), Some((0x2000, 512)));
        p.give_back(0x2000, 512, Some(g));
        assert_eq!(
            p.take_for_capture(g, 512),
            Some((0x2000, 512)),
            "own blocks first"
        );
        p.give_back(0x2000, 512, Some(g));
        p.record_driver_alloc(1024);
        p.give_back(0x4000, 1024, Some(g));
        assert_eq!(p.stats().graph_cached, 512 + 1024);
        // ...and are not handed out outside it, even after the capture, while the graph lives.
        assert_eq!(p.take(512), Some((0x1000, 512)));
        assert_eq!(p.take(512), None);
        assert_eq!(
            p.take_for_capture(g, 8192),
            None,
            "a capture never goes to the driver"
        );
        // A block the capture took and a tensor still holds returns to the pool when freed.
        let held = p.take_for_capture(g, 4096).unwrap();
        p.give_back(held.0, held.1, None);
        assert_eq!(p.stats().graph_cached, 512 + 1024 + 4096);
        // Released, the pool's blocks are everyone's again.
        p.release_private(g);
        assert_eq!(p.stats().graph_cached, 0);
        assert_eq!(p.take(512), Some((0x2000, 512)));
        assert_eq!(p.take(4096), Some((0x3000, 4096)));
        assert_eq!(p.stats().reserved, 512 * 2 + 1024 + 4096);
    }
}
