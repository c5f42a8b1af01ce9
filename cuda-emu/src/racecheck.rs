//! Shared-memory race detection (`KILN_EMU_RACECHECK=1`): per byte, the last writer and
//! reader since the last barrier; a conflicting access by another thread is a race, unless
//! both threads are in one warp and a `__syncwarp` of that warp came in between.

/// Several threads read the byte in this epoch.
const MANY: u32 = u32::MAX;

/// One recorded access: barrier epoch, thread, and its warp's `__syncwarp` count at the time.
#[derive(Debug, Clone, Copy, Default)]
struct Access {
    epoch: u32,
    tid: u32,
    warp_syncs: u32,
}

/// Access history of each shared byte.
#[derive(Debug)]
pub struct RaceMap {
    writes: Vec<Access>,
    reads: Vec<Access>,
    epoch: u32,
    warp_syncs: Vec<u32>,
}

impl RaceMap {
    /// Tracks `len` bytes for a block of `threads` threads.
    pub fn new(len: usize, threads: u32) -> Self {
        let none = Access::default();
        Self {
            writes: vec![none; len],
            reads: vec![none; len],
            epoch: 1,
            warp_syncs: vec![0; threads.div_ceil(32) as usize],
        }
    }

    /// A block barrier completed: accesses before it no longer conflict.
    pub fn barrier(&mut self) {
        self.epoch += 1;
    }

    /// A `__syncwarp` of warp `warp` completed.
    pub fn warp_sync(&mut self, warp: usize) {
        self.warp_syncs[warp] += 1;
    }

    /// Whether an earlier access `a` conflicts with one by thread `tid` now.
    fn conflicts(&self, a: Access, tid: u32) -> bool {
        if a.epoch != self.epoch || a.tid == tid {
            return false;
        }
        let warp = (tid / 32) as usize;
        let synced =
            a.tid != MANY && a.tid / 32 == tid / 32 && a.warp_syncs != self.warp_syncs[warp];
        !synced
    }

    fn now(&self, tid: u32) -> Access {
        Access {
            epoch: self.epoch,
            tid,
            warp_syncs: self.warp_syncs[(tid / 32) as usize],
        }
    }

    /// Records a read; errors when another thread wrote the byte since the last barrier.
    pub fn read(&mut self, off: usize, size: u32, tid: u32) -> Result<(), String> {
        for b in off..off + size as usize {
            let w = self.writes[b];
            if self.conflicts(w, tid) {
                return Err(format!(
                    "reads shared byte {b:#x} written by thread {} with no barrier in between",
                    w.tid
                ));
            }
            let r = self.reads[b];
            let other_reader = r.epoch == self.epoch && r.tid != tid;
            self.reads[b] = if other_reader {
                Access { tid: MANY, ..r }
            } else {
                self.now(tid)
            };
        }
        Ok(())
    }

    /// Records a write; errors when another thread read or wrote the byte since the last barrier.
    pub fn write(&mut self, off: usize, size: u32, tid: u32) -> Result<(), String> {
        for b in off..off + size as usize {
            let w = self.writes[b];
            if self.conflicts(w, tid) {
                return Err(format!("writes shared byte {b:#x} also written by thread {} with no barrier in between", w.tid));
            }
            let r = self.reads[b];
            if self.conflicts(r, tid) {
                let who = if r.tid == MANY {
                    "other threads".to_string()
                } else {
                    format!("thread {}", r.tid)
                };
                return Err(format!(
                    "writes shared byte {b:#x} read by {who} with no barrier in between"
                ));
            }
            self.writes[b] = self.now(tid);
        }
        Ok(())
    }
}
