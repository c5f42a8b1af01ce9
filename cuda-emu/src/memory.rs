//! Device memory: host buffers behind a map of device addresses, every access bounds-checked.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

/// First device address handed out (device 0's).
const BASE: u64 = 0x1_0000_0000;
/// The address range each device allocates in: device `d` from `BASE + d * WINDOW`, so the
/// devices' pointers are disjoint and an address names its device (unified addressing).
pub const WINDOW: u64 = 1 << 40;
/// Unmapped gap after each allocation, so small overruns fault.
const GUARD: u64 = 1 << 16;

/// One allocation, stored as 64-bit atomics so concurrent blocks never race in Rust's sense.
#[derive(Debug)]
pub struct Buffer {
    words: Box<[AtomicU64]>,
    len: usize,
}

/// `n` zeroed words from the allocator's zeroed memory, which the OS maps lazily: a large
/// buffer costs memory only where it is written.
fn zeroed_words(n: usize) -> Box<[AtomicU64]> {
    let layout = std::alloc::Layout::array::<AtomicU64>(n).expect("buffer size fits in isize");
    // SAFETY: the layout has a non-zero size (n >= 1).
    let p = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<AtomicU64>();
    if p.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: `p` holds `n` zeroed, properly aligned `AtomicU64`s (all-zero bytes are a valid
    // atomic 0) allocated with the global allocator under the layout `Box` frees them with.
    unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, n)) }
}

impl Buffer {
    fn new(len: usize) -> Self {
        Self {
            words: zeroed_words(len.div_ceil(8).max(1)),
            len,
        }
    }

    /// Base pointer of the bytes.
    pub fn ptr(&self) -> *mut u8 {
        self.words.as_ptr() as *mut u8
    }
}

/// One device's allocations by base address.
#[derive(Debug, Default)]
pub struct DeviceMemory {
    allocs: BTreeMap<u64, Arc<Buffer>>,
    next: u64,
    used: u64,
}

/// Why an address could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// Not inside any allocation (or runs past its end).
    OutOfBounds,
    /// Not aligned to the access size.
    Misaligned,
}

/// The device whose window holds `addr`, if any (it may still be unallocated there).
pub fn window_of(addr: u64) -> Option<usize> {
    addr.checked_sub(BASE).map(|off| (off / WINDOW) as usize)
}

impl DeviceMemory {
    /// The memory of device `ordinal`, allocating in its own address window.
    pub fn for_device(ordinal: usize) -> Self {
        Self {
            next: BASE + ordinal as u64 * WINDOW,
            ..Self::default()
        }
    }

    /// Allocates `len` zeroed bytes, 256-aligned.
    pub fn alloc(&mut self, len: usize) -> u64 {
        if self.next == 0 {
            self.next = BASE;
        }
        let addr = self.next;
        self.next = (addr + len as u64 + GUARD).next_multiple_of(256);
        self.used += len as u64;
        self.allocs.insert(addr, Arc::new(Buffer::new(len)));
        addr
    }

    /// Frees the allocation starting at `addr`; false if there is none.
    pub fn free(&mut self, addr: u64) -> bool {
        match self.allocs.remove(&addr) {
            Some(b) => {
                self.used -= b.len as u64;
                true
            }
            None => false,
        }
    }

    /// Bytes currently allocated.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Host pointer for `len` bytes at device address `addr`, if they lie in one allocation.
    pub fn host_ptr(&self, addr: u64, len: usize) -> Option<*mut u8> {
        let (base, buf) = self.allocs.range(..=addr).next_back()?;
        let off = addr - base;
        (off + len as u64 <= buf.len as u64).then(|| {
            // SAFETY: off + len is within the buffer, checked just above.
            unsafe { buf.ptr().add(off as usize) }
        })
    }

    /// The allocation holding `addr`: its base address and length.
    pub fn range_of(&self, addr: u64) -> Option<(u64, usize)> {
        let (base, buf) = self.allocs.range(..=addr).next_back()?;
        (addr - base < buf.len.max(1) as u64).then_some((*base, buf.len))
    }

    /// A read-only snapshot for one launch.
    pub fn view(&self) -> GlobalView {
        GlobalView::of(std::iter::once(self))
    }
}

/// The allocations as a sorted list, for lock-free lookups during a launch.
#[derive(Debug)]
pub struct GlobalView {
    ranges: Vec<(u64, Arc<Buffer>)>,
}

impl GlobalView {
    /// The allocations of several devices' memories, given in ascending address order (a kernel
    /// sees its own device's memory and that of the peers it was given access to).
    pub fn of<'a>(mems: impl Iterator<Item = &'a DeviceMemory>) -> GlobalView {
        let ranges: Vec<_> = mems
            .flat_map(|m| m.allocs.iter().map(|(a, b)| (*a, b.clone())))
            .collect();
        debug_assert!(ranges.windows(2).all(|w| w[0].0 < w[1].0));
        GlobalView { ranges }
    }

    /// The location of an access of `size` bytes at `addr`, checked for bounds and alignment.
    pub fn at(&self, addr: u64, size: u32) -> Result<DevPtr, Bad> {
        let i = self.ranges.partition_point(|(base, _)| *base <= addr);
        let (base, buf) = self.ranges.get(i.wrapping_sub(1)).ok_or(Bad::OutOfBounds)?;
        let off = addr - base;
        if off + u64::from(size) > buf.len as u64 {
            return Err(Bad::OutOfBounds);
        }
        if !addr.is_multiple_of(u64::from(size.min(16))) {
            return Err(Bad::Misaligned);
        }
        // SAFETY: off + size is within the buffer, checked above.
        Ok(DevPtr(unsafe { buf.ptr().add(off as usize) }))
    }
}

/// A checked, aligned location inside a [`Buffer`] of a [`GlobalView`]; only `at` makes one.
#[derive(Debug, Clone, Copy)]
pub struct DevPtr(*mut u8);

impl DevPtr {
    /// Loads `size` (1, 2, 4, 8) bytes.
    pub fn load(self, size: u32) -> u64 {
        let p = self.0;
        // SAFETY: only `GlobalView::at` makes a DevPtr, after checking bounds and alignment; the
        // view holds the buffer alive, and the memory is only accessed through atomics in kernels.
        unsafe {
            match size {
                1 => u64::from(AtomicU8::from_ptr(p).load(Ordering::Relaxed)),
                2 => u64::from(AtomicU16::from_ptr(p.cast()).load(Ordering::Relaxed)),
                4 => u64::from(AtomicU32::from_ptr(p.cast()).load(Ordering::Relaxed)),
                _ => AtomicU64::from_ptr(p.cast()).load(Ordering::Relaxed),
            }
        }
    }

    /// Stores the low `size` bytes of `v`.
    pub fn store(self, size: u32, v: u64) {
        let p = self.0;
        // SAFETY: as in `load`.
        unsafe {
            match size {
                1 => AtomicU8::from_ptr(p).store(v as u8, Ordering::Relaxed),
                2 => AtomicU16::from_ptr(p.cast()).store(v as u16, Ordering::Relaxed),
                4 => AtomicU32::from_ptr(p.cast()).store(v as u32, Ordering::Relaxed),
                _ => AtomicU64::from_ptr(p.cast()).store(v, Ordering::Relaxed),
            }
        }
    }

    /// Atomically replaces the `size`-byte value by `f(old)`; returns the old value.
    pub fn rmw(self, size: u32, f: impl Fn(u64) -> u64) -> u64 {
        let p = self.0;
        // SAFETY: as in `load`.
        unsafe {
            match size {
                2 => u64::from(
                    AtomicU16::from_ptr(p.cast())
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| {
                            Some(f(u64::from(o)) as u16)
                        })
                        .unwrap_or_else(|o| o),
                ),
                4 => u64::from(
                    AtomicU32::from_ptr(p.cast())
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| {
                            Some(f(u64::from(o)) as u32)
                        })
                        .unwrap_or_else(|o| o),
                ),
                _ => AtomicU64::from_ptr(p.cast())
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| Some(f(o)))
                    .unwrap_or_else(|o| o),
            }
        }
    }
}
