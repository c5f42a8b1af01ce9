//! `cp.async` global -> shared copies and their groups (`commit_group`, `wait_group`,
//! `wait_all`).
//!
//! Deterministic semantics, one of those the PTX ISA allows: an issued copy only checks its
//! addresses (so a bad one faults at the `cp.async` line); it reads global memory and writes
//! shared memory when a wait completes its group, in issue order. Until then the destination
//! keeps its old bytes, which is what a kernel that reads before waiting may see on a GPU too.
//! Copies a thread never waits for are dropped when it exits (no guarantee covers them).

use std::collections::VecDeque;

use crate::error::FaultKind;
use crate::program::Inst;
use crate::ptx::ast::Space;
use crate::thread::{fault, BlockCtx, Fault, Thread};

/// Copies one thread may have in flight (a bound on the emulator's memory, far past real use).
const MAX_IN_FLIGHT: usize = 1 << 16;

/// One queued copy: `size` bytes to shared `dst`, the first `src_size` of them from global `src`,
/// the rest zero.
#[derive(Debug, Clone, Copy)]
struct Pending {
    dst: u64,
    src: u64,
    size: u32,
    src_size: u32,
}

/// A thread's copies: those not yet committed, then the committed groups, oldest first.
#[derive(Debug, Default)]
pub struct AsyncCopies {
    open: Vec<Pending>,
    groups: VecDeque<Vec<Pending>>,
    in_flight: usize,
}

/// The largest piece (8, 4 or 1 bytes) that tiles both `size` and `src_size`.
fn piece(size: u32, src_size: u32) -> u32 {
    match src_size {
        s if s % 8 == 0 => size.min(8),
        s if s % 4 == 0 => 4,
        _ => 1,
    }
}

impl Thread {
    /// `cp.async [dst], [src], cp-size{, src-size | ignore-src}`: checks and queues the copy.
    pub(crate) fn cp_async(
        &mut self,
        cx: &mut BlockCtx<'_>,
        i: &Inst,
        ignore_pred: bool,
    ) -> Result<(), Fault> {
        let (dst, src) = (self.addr(&i.args[0]), self.addr(&i.args[1]));
        let size = self.get(&i.args[2], cx) as u32;
        let src_size = match i.args.get(3) {
            None => size,
            Some(p) if ignore_pred => {
                if self.get(p, cx) != 0 {
                    0
                } else {
                    size
                }
            }
            Some(a) => u32::try_from(self.get(a, cx)).unwrap_or(u32::MAX),
        };
        if src_size > size {
            let d = format!("cp.async src-size {src_size} exceeds cp-size {size}");
            return Err(fault(FaultKind::Trap, d));
        }
        for (space, addr) in [(Space::Shared, dst), (Space::Global, src)] {
            if !addr.is_multiple_of(u64::from(size)) {
                let d = format!(
                    "cp.async {} address {addr:#x}, {size}-byte copy",
                    space.name()
                );
                return Err(fault(FaultKind::Misaligned, d));
            }
        }
        let p = piece(size, src_size);
        for k in (0..size).step_by(p as usize) {
            self.place(cx, Space::Shared, dst + u64::from(k), p, p)?;
            if k < src_size {
                self.place(cx, Space::Global, src + u64::from(k), p, p)?;
            }
        }
        if self.copies.in_flight >= MAX_IN_FLIGHT {
            let d = format!("more than {MAX_IN_FLIGHT} cp.async copies in flight");
            return Err(fault(FaultKind::Trap, d));
        }
        self.copies.in_flight += 1;
        self.copies.open.push(Pending {
            dst,
            src,
            size,
            src_size,
        });
        Ok(())
    }

    /// `cp.async.commit_group`: the uncommitted copies (possibly none) become the newest group.
    pub(crate) fn cp_async_commit(&mut self) {
        let open = std::mem::take(&mut self.copies.open);
        self.copies.groups.push_back(open);
    }

    /// `cp.async.wait_group N` (`all`: `cp.async.wait_all`, a commit then `wait_group 0`):
    /// completes every committed group but the newest `N`.
    pub(crate) fn cp_async_wait(
        &mut self,
        cx: &mut BlockCtx<'_>,
        i: &Inst,
        all: bool,
    ) -> Result<(), Fault> {
        let keep = if all {
            self.cp_async_commit();
            0
        } else {
            usize::try_from(self.get(&i.args[0], cx)).unwrap_or(usize::MAX)
        };
        while self.copies.groups.len() > keep {
            let group = self.copies.groups.pop_front().unwrap_or_default();
            self.copies.in_flight -= group.len();
            for c in group {
                self.complete(cx, c)?;
            }
        }
        Ok(())
    }

    /// Performs one queued copy.
    fn complete(&mut self, cx: &mut BlockCtx<'_>, c: Pending) -> Result<(), Fault> {
        let p = piece(c.size, c.src_size);
        for k in (0..c.size).step_by(p as usize) {
            let off = u64::from(k);
            let v = if k < c.src_size {
                self.load(cx, Space::Global, c.src + off, p, p)?
            } else {
                0
            };
            self.store(cx, Space::Shared, c.dst + off, p, p, v)?;
        }
        Ok(())
    }
}
