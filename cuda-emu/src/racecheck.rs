//! Shared-memory race detection (`KILN_EMU_RACECHECK=1`): per byte, the last writer and
//! reader since the last barrier; a conflicting access by another thread is a race.

/// Several threads read the byte in this epoch.
const MANY: u32 = u32::MAX;

/// Access history of each shared byte: (epoch, thread) of the last write and read.
#[derive(Debug)]
pub struct RaceMap {
    writes: Vec<(u32, u32)>,
    reads: Vec<(u32, u32)>,
    epoch: u32,
}

impl RaceMap {
    /// Tracks `len` bytes.
    pub fn new(len: usize) -> Self {
        Self {
            writes: vec![(0, 0); len],
            reads: vec![(0, 0); len],
            epoch: 1,
        }
    }

    /// A barrier completed: accesses before it no longer conflict.
    pub fn barrier(&mut self) {
        self.epoch += 1;
    }

    /// Records a read; errors when another thread wrote the byte since the last barrier.
    pub fn read(&mut self, off: usize, size: u32, tid: u32) -> Result<(), String> {
        for b in off..off + size as usize {
            let (we, wt) = self.writes[b];
            if we == self.epoch && wt != tid {
                return Err(format!(
                    "reads shared byte {b:#x} written by thread {wt} with no barrier in between"
                ));
            }
            let (re, rt) = self.reads[b];
            self.reads[b] = (
                self.epoch,
                if re == self.epoch && rt != tid {
                    MANY
                } else {
                    tid
                },
            );
        }
        Ok(())
    }

    /// Records a write; errors when another thread read or wrote the byte since the last barrier.
    pub fn write(&mut self, off: usize, size: u32, tid: u32) -> Result<(), String> {
        for b in off..off + size as usize {
            let (we, wt) = self.writes[b];
            if we == self.epoch && wt != tid {
                return Err(format!("writes shared byte {b:#x} also written by thread {wt} with no barrier in between"));
            }
            let (re, rt) = self.reads[b];
            if re == self.epoch && rt != tid {
                let who = if rt == MANY {
                    "other threads".to_string()
                } else {
                    format!("thread {rt}")
                };
                return Err(format!(
                    "writes shared byte {b:#x} read by {who} with no barrier in between"
                ));
            }
            self.writes[b] = (self.epoch, tid);
        }
        Ok(())
    }
}
