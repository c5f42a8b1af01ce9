//! A thread's memory accesses: resolving spaces and windows, bounds/alignment checks, loads,
//! stores, vectors and atomics.

use crate::alu;
use crate::error::FaultKind;
use crate::memory::{Bad, DevPtr};
use crate::program::{Arg, AtomOp, Inst, LOCAL_WINDOW, SHARED_WINDOW, WINDOW_SIZE};
use crate::ptx::ast::Space;
use crate::thread::{fault, BlockCtx, Fault, Thread};
use crate::ty::{mask, sext, Ty};

pub(crate) enum Place {
    /// Device memory.
    Global(DevPtr),
    /// Offset in the block's shared memory.
    Shared(usize),
    /// Offset in the thread's local memory.
    Local(usize),
    /// Offset in the parameter buffer.
    Param(usize),
}

/// Reads `size` (1, 2, 4, 8) little-endian bytes at `o`; the caller checked the bounds.
#[inline]
fn read_le(b: &[u8], o: usize, size: u32) -> u64 {
    match size {
        1 => u64::from(b[o]),
        2 => u64::from(u16::from_le_bytes([b[o], b[o + 1]])),
        4 => u64::from(u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))),
        _ => u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes")),
    }
}

/// Writes the low `size` (1, 2, 4, 8) bytes of `v` at `o`; the caller checked the bounds.
#[inline]
fn write_le(b: &mut [u8], o: usize, size: u32, v: u64) {
    match size {
        1 => b[o] = v as u8,
        2 => b[o..o + 2].copy_from_slice(&(v as u16).to_le_bytes()),
        4 => b[o..o + 4].copy_from_slice(&(v as u32).to_le_bytes()),
        _ => b[o..o + 8].copy_from_slice(&v.to_le_bytes()),
    }
}

impl Thread {
    pub(crate) fn addr(&self, a: &Arg) -> u64 {
        match a {
            Arg::Mem(Some(r), off) => self.regs[*r as usize].wrapping_add(*off as u64),
            Arg::Mem(None, off) => *off as u64,
            _ => 0,
        }
    }

    /// Resolves an access of `size` bytes (aligned to `align`) to a place.
    pub(crate) fn place(
        &self,
        cx: &BlockCtx<'_>,
        space: Space,
        addr: u64,
        size: u32,
        align: u32,
    ) -> Result<Place, Fault> {
        let in_window = |w: u64| (w..w + WINDOW_SIZE).contains(&addr);
        let (space, off) = match space {
            Space::Generic if in_window(SHARED_WINDOW) => (Space::Shared, addr - SHARED_WINDOW),
            Space::Generic if in_window(LOCAL_WINDOW) => (Space::Local, addr - LOCAL_WINDOW),
            Space::Generic | Space::Const => (Space::Global, addr),
            s => (s, addr),
        };
        if addr & u64::from(align - 1) != 0 {
            return Err(fault(
                FaultKind::Misaligned,
                format!("{} address {addr:#x}, {size}-byte access", space.name()),
            ));
        }
        let within = |len: usize| {
            off.checked_add(u64::from(size))
                .is_some_and(|end| end <= len as u64)
        };
        let oob = |len: usize| {
            fault(
                FaultKind::OutOfBounds,
                format!(
                    "{0} address {addr:#x}, {size}-byte access, {0} size {len}",
                    space.name()
                ),
            )
        };
        match space {
            Space::Shared if within(cx.shared.len()) => Ok(Place::Shared(off as usize)),
            Space::Shared => Err(oob(cx.shared.len())),
            Space::Local if within(self.local.len()) => Ok(Place::Local(off as usize)),
            Space::Local => Err(oob(self.local.len())),
            Space::Param if within(cx.params.len()) => Ok(Place::Param(off as usize)),
            Space::Param => Err(oob(cx.params.len())),
            _ => cx.global.at(addr, size.min(align)).map(Place::Global).map_err(|b| match b {
                Bad::OutOfBounds => fault(FaultKind::OutOfBounds, format!("global address {addr:#x}, {size}-byte access, not inside any allocation")),
                Bad::Misaligned => fault(FaultKind::Misaligned, format!("global address {addr:#x}, {size}-byte access")),
            }),
        }
    }

    pub(crate) fn load(
        &mut self,
        cx: &mut BlockCtx<'_>,
        space: Space,
        addr: u64,
        size: u32,
        align: u32,
    ) -> Result<u64, Fault> {
        let bytes = |b: &[u8], o: usize| read_le(b, o, size);
        Ok(match self.place(cx, space, addr, size, align)? {
            Place::Global(p) => {
                cx.stats.global_load += u64::from(size);
                p.load(size)
            }
            Place::Shared(o) => {
                cx.stats.shared_load += u64::from(size);
                if let Some(r) = cx.race.as_mut() {
                    r.read(o, size, self.linear)
                        .map_err(|d| fault(FaultKind::SharedRace, d))?;
                }
                bytes(&cx.shared, o)
            }
            Place::Local(o) => bytes(&self.local, o),
            Place::Param(o) => bytes(cx.params, o),
        })
    }

    pub(crate) fn store(
        &mut self,
        cx: &mut BlockCtx<'_>,
        space: Space,
        addr: u64,
        size: u32,
        align: u32,
        v: u64,
    ) -> Result<(), Fault> {
        match self.place(cx, space, addr, size, align)? {
            Place::Global(p) => {
                cx.stats.global_store += u64::from(size);
                p.store(size, v);
            }
            Place::Shared(o) => {
                cx.stats.shared_store += u64::from(size);
                if let Some(r) = cx.race.as_mut() {
                    r.write(o, size, self.linear)
                        .map_err(|d| fault(FaultKind::SharedRace, d))?;
                }
                write_le(&mut cx.shared, o, size, v);
            }
            Place::Local(o) => write_le(&mut self.local, o, size, v),
            Place::Param(_) => {
                return Err(fault(FaultKind::Trap, "store to kernel parameters".into()))
            }
        }
        Ok(())
    }

    pub(crate) fn atomic(
        &mut self,
        cx: &mut BlockCtx<'_>,
        i: &Inst,
        space: Space,
        op: AtomOp,
        ty: Ty,
        dst: bool,
    ) -> Result<(), Fault> {
        let a = &i.args[usize::from(dst)..];
        let addr = self.addr(&a[0]);
        let (b, c) = (self.get(&a[1], cx), a.get(2).map_or(0, |x| self.get(x, cx)));
        let size = ty.bytes();
        let old = match self.place(cx, space, addr, size, size)? {
            Place::Global(p) => {
                cx.stats.global_load += u64::from(size);
                cx.stats.global_store += u64::from(size);
                p.rmw(size, |old| alu::atom(op, ty, old, b, c))
            }
            Place::Shared(o) => {
                cx.stats.shared_load += u64::from(size);
                cx.stats.shared_store += u64::from(size);
                let s = &mut cx.shared[o..o + size as usize];
                let mut v = [0u8; 8];
                v[..size as usize].copy_from_slice(s);
                let old = u64::from_le_bytes(v);
                s.copy_from_slice(&alu::atom(op, ty, old, b, c).to_le_bytes()[..size as usize]);
                old
            }
            _ => {
                return Err(fault(
                    FaultKind::Trap,
                    format!("atomic on {space:?} memory"),
                ))
            }
        };
        if dst {
            self.set(&i.args[0], old);
        }
        Ok(())
    }

    pub(crate) fn ld(
        &mut self,
        cx: &mut BlockCtx<'_>,
        i: &Inst,
        space: Space,
        ty: Ty,
        ext: u8,
    ) -> Result<(), Fault> {
        let addr = self.addr(&i.args[1]);
        let size = ty.bytes();
        let fix = |v: u64| {
            if ext > 0 {
                sext(v, ty.bits()) as u64 & mask(u32::from(ext))
            } else {
                v
            }
        };
        match &i.args[0] {
            Arg::Vec(dsts) => {
                let align = size * dsts.len() as u32;
                for (k, d) in dsts.iter().enumerate() {
                    let al = if k == 0 { align } else { size };
                    let v = self.load(cx, space, addr + u64::from(size) * k as u64, size, al)?;
                    self.set(d, fix(v));
                }
            }
            d => {
                let v = self.load(cx, space, addr, size, size)?;
                self.set(d, fix(v));
            }
        }
        Ok(())
    }

    pub(crate) fn st(
        &mut self,
        cx: &mut BlockCtx<'_>,
        i: &Inst,
        space: Space,
        ty: Ty,
    ) -> Result<(), Fault> {
        let addr = self.addr(&i.args[0]);
        let size = ty.bytes();
        match &i.args[1] {
            Arg::Vec(srcs) => {
                let align = size * srcs.len() as u32;
                for (k, s) in srcs.iter().enumerate() {
                    let v = self.get(s, cx);
                    let al = if k == 0 { align } else { size };
                    self.store(cx, space, addr + u64::from(size) * k as u64, size, al, v)?;
                }
            }
            s => {
                let v = self.get(s, cx);
                self.store(cx, space, addr, size, size, v)?;
            }
        }
        Ok(())
    }

    /// Reads a NUL-terminated string (at most 4096 bytes) at a generic address.
    fn c_string(&mut self, cx: &mut BlockCtx<'_>, addr: u64) -> Result<Vec<u8>, Fault> {
        let mut out = Vec::new();
        while out.len() < 4096 {
            match self.load(cx, Space::Generic, addr + out.len() as u64, 1, 1)? as u8 {
                0 => break,
                c => out.push(c),
            }
        }
        Ok(out)
    }

    /// `vprintf`: formats on the host and writes the line to stdout at once.
    pub(crate) fn printf(&mut self, cx: &mut BlockCtx<'_>, i: &Inst) -> Result<(), Fault> {
        let param = |t: &mut Self, cx: &mut BlockCtx<'_>, a: &Arg| {
            t.load(cx, Space::Local, t.get(a, cx), 8, 8)
        };
        let fmt_addr = param(self, cx, &i.args[0])?;
        let mut arg_addr = param(self, cx, &i.args[1])?;
        let fmt = self.c_string(cx, fmt_addr)?;
        // A first pass learns the argument sizes, and which are strings (`next` hands out
        // argument indices, which `%s` passes back).
        let mut sizes = Vec::new();
        let string_args = std::cell::RefCell::new(Vec::new());
        crate::printf::format(
            &fmt,
            &mut |size| {
                sizes.push(size);
                sizes.len() as u64 - 1
            },
            &|k| {
                string_args.borrow_mut().push(k as usize);
                String::new()
            },
        );
        let mut raw = Vec::new();
        for size in sizes {
            arg_addr = arg_addr.next_multiple_of(u64::from(size));
            raw.push(self.load(cx, Space::Generic, arg_addr, size, size)?);
            arg_addr += u64::from(size);
        }
        let mut strings = std::collections::HashMap::new();
        for k in string_args.into_inner() {
            let s = self.c_string(cx, raw[k])?;
            strings.insert(raw[k], String::from_utf8_lossy(&s).into_owned());
        }
        let mut it = raw.iter().copied();
        let text = crate::printf::format(&fmt, &mut |_| it.next().unwrap_or(0), &|a| {
            strings.get(&a).cloned().unwrap_or_default()
        });
        use std::io::Write;
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
        if let Arg::Imm(ret) = i.args[2] {
            self.store(cx, Space::Local, ret, 4, 4, raw.len() as u64)?;
        }
        Ok(())
    }
}
