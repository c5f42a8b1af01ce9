//! One thread's registers and its run loop: it executes until a barrier, a warp collective,
//! exit or a fault.

use crate::alu;
use crate::error::FaultKind;
use crate::memory::{Bad, DevPtr, GlobalView};
use crate::program::{Arg, Inst, Kernel, Op, Sreg, LOCAL_WINDOW, SHARED_WINDOW, WINDOW_SIZE};
use crate::ptx::ast::Space;
use crate::racecheck::RaceMap;
use crate::stats::Counters;
use crate::ty::{mask, sext, Ty};

/// Where a thread stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Can run.
    Ready,
    /// Waits at `bar.sync` (its pc points at the barrier).
    Barrier,
    /// Waits at a warp collective (its pc points at it).
    Collective,
    /// Returned.
    Exited,
}

/// A fault before the block runner adds kernel, block and thread.
#[derive(Debug)]
pub struct Fault {
    /// Its class.
    pub kind: FaultKind,
    /// Address or other specifics.
    pub detail: String,
}

/// What every thread of a block shares while it runs.
pub struct BlockCtx<'a> {
    /// The kernel.
    pub kernel: &'a Kernel,
    /// Kernel parameter bytes.
    pub params: &'a [u8],
    /// Device memory.
    pub global: &'a GlobalView,
    /// `%ctaid`.
    pub ctaid: [u32; 3],
    /// `%nctaid`.
    pub nctaid: [u32; 3],
    /// `%ntid`.
    pub ntid: [u32; 3],
    /// Dynamic shared memory bytes.
    pub dyn_smem: u32,
    /// Shared memory of the block.
    pub shared: Vec<u8>,
    /// Shared-memory race tracking, when enabled.
    pub race: Option<RaceMap>,
    /// Counters of this block.
    pub stats: Counters,
}

/// One thread.
#[derive(Debug)]
pub struct Thread {
    /// Registers as raw bits.
    pub regs: Vec<u64>,
    /// Next instruction.
    pub pc: u32,
    /// `%tid`.
    pub tid: [u32; 3],
    /// Linear index in the block.
    pub linear: u32,
    /// Instructions run so far (`%clock`).
    pub clock: u64,
    /// Local memory.
    pub local: Vec<u8>,
    /// Run state.
    pub state: State,
    /// The carry flag (`CC.CF`) of extended-precision arithmetic.
    pub carry: u64,
}

enum Place {
    Global(DevPtr),
    Shared(usize),
    Local(usize),
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

fn fault(kind: FaultKind, detail: String) -> Fault {
    Fault { kind, detail }
}

impl Thread {
    /// A fresh thread at instruction 0.
    pub fn new(k: &Kernel, tid: [u32; 3], linear: u32) -> Self {
        Self {
            regs: vec![0; k.nregs as usize],
            pc: 0,
            tid,
            linear,
            clock: 0,
            local: vec![0; k.local_bytes as usize],
            state: State::Ready,
            carry: 0,
        }
    }

    /// Reads an operand.
    #[inline]
    pub fn get(&self, a: &Arg, cx: &BlockCtx<'_>) -> u64 {
        match a {
            Arg::Reg(r) => self.regs[*r as usize],
            Arg::Not(r) => u64::from(self.regs[*r as usize] == 0),
            Arg::Imm(v) => *v,
            Arg::Sreg(s) => self.sreg(*s, cx),
            _ => 0,
        }
    }

    /// Writes an operand (ignores sinks).
    #[inline]
    pub fn set(&mut self, a: &Arg, v: u64) {
        if let Arg::Reg(r) = a {
            self.regs[*r as usize] = v;
        }
    }

    fn sreg(&self, s: Sreg, cx: &BlockCtx<'_>) -> u64 {
        let lane = self.linear % 32;
        u64::from(match s {
            Sreg::Tid(d) => self.tid[d as usize],
            Sreg::Ntid(d) => cx.ntid[d as usize],
            Sreg::Ctaid(d) => cx.ctaid[d as usize],
            Sreg::Nctaid(d) => cx.nctaid[d as usize],
            Sreg::Laneid => lane,
            Sreg::Warpid => self.linear / 32,
            Sreg::Nwarpid => (cx.ntid.iter().product::<u32>()).div_ceil(32),
            Sreg::Clock => return self.clock,
            Sreg::Lanemask(k) => {
                let bit = 1u64 << lane;
                return match k {
                    0 => bit,
                    1 => bit - 1,
                    2 => (bit << 1) - 1,
                    3 => !((bit << 1) - 1) & 0xffff_ffff,
                    _ => !(bit - 1) & 0xffff_ffff,
                };
            }
            Sreg::DynSmem => cx.dyn_smem,
            Sreg::Zero => 0,
        })
    }

    fn addr(&self, a: &Arg) -> u64 {
        match a {
            Arg::Mem(Some(r), off) => self.regs[*r as usize].wrapping_add(*off as u64),
            Arg::Mem(None, off) => *off as u64,
            _ => 0,
        }
    }

    /// Resolves an access of `size` bytes (aligned to `align`) to a place.
    fn place(
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

    fn load(
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

    fn store(
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

    fn atomic(
        &mut self,
        cx: &mut BlockCtx<'_>,
        i: &Inst,
        space: Space,
        op: crate::program::AtomOp,
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

    fn ld(
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

    fn st(&mut self, cx: &mut BlockCtx<'_>, i: &Inst, space: Space, ty: Ty) -> Result<(), Fault> {
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

    /// `cp.async [shared], [global], size{, src_size}`: bytes past `src_size` are zero.
    fn cp_async(&mut self, cx: &mut BlockCtx<'_>, i: &Inst) -> Result<(), Fault> {
        let (dst, src) = (self.addr(&i.args[0]), self.addr(&i.args[1]));
        let size = self.get(&i.args[2], cx) as u32;
        let src_size = i.args.get(3).map_or(size, |a| self.get(a, cx) as u32);
        let piece = match src_size {
            s if s % 8 == 0 => size.min(8),
            s if s % 4 == 0 => 4,
            _ => 1,
        };
        for k in (0..size).step_by(piece as usize) {
            let off = u64::from(k);
            let v = if k < src_size {
                self.load(
                    cx,
                    Space::Global,
                    src + off,
                    piece,
                    if k == 0 { size } else { piece },
                )?
            } else {
                0
            };
            self.store(
                cx,
                Space::Shared,
                dst + off,
                piece,
                if k == 0 { size } else { piece },
                v,
            )?;
        }
        Ok(())
    }

    fn mov(&mut self, cx: &BlockCtx<'_>, i: &Inst, ty: Ty) {
        match (&i.args[0], &i.args[1]) {
            (Arg::Vec(parts), src) => {
                let v = self.get(src, cx);
                let w = ty.bits() / parts.len() as u32;
                for (k, p) in parts.iter().enumerate() {
                    self.set(p, (v >> (w * k as u32)) & mask(w));
                }
            }
            (d, Arg::Vec(parts)) => {
                let w = ty.bits() / parts.len() as u32;
                let v = parts.iter().enumerate().fold(0, |acc, (k, p)| {
                    acc | (self.get(p, cx) & mask(w)) << (w * k as u32)
                });
                self.set(d, v);
            }
            (d, s) => {
                let v = self.get(s, cx) & ty.mask();
                self.set(d, v);
            }
        }
    }

    /// Runs until the thread stops being `Ready`.
    pub fn run(&mut self, cx: &mut BlockCtx<'_>) -> Result<(), Fault> {
        let code = &cx.kernel.code;
        while self.state == State::Ready {
            let i = &code[self.pc as usize];
            self.clock += 1;
            cx.stats.instructions += 1;
            if let Some((g, neg)) = i.guard {
                if (self.regs[g as usize] != 0) == neg {
                    self.pc += 1;
                    continue;
                }
            }
            self.pc += 1;
            self.step(cx, i)?;
        }
        Ok(())
    }

    /// Executes one instruction whose guard passed; `pc` already points past it.
    fn step(&mut self, cx: &mut BlockCtx<'_>, i: &Inst) -> Result<(), Fault> {
        let a = &i.args;
        let arg = |k: usize| self.get(&a[k], cx);
        match i.op {
            Op::Mov(t) => self.mov(cx, i, t),
            Op::Int(op, t, sat) => {
                let v = alu::int_op(op, t, sat, arg(1), arg(2));
                self.set(&a[0], v);
            }
            Op::Mad(op, t) => {
                let p = alu::int_op(op, t, false, arg(1), arg(2));
                let w = if op == crate::program::IntOp::MulWide {
                    2 * t.bits()
                } else {
                    t.bits()
                };
                self.set(&a[0], p.wrapping_add(arg(3)) & mask(w));
            }
            Op::Carry(op, t, cin, cout) => {
                let c = if matches!(
                    op,
                    crate::program::CarryOp::MadLo | crate::program::CarryOp::MadHi
                ) {
                    arg(3)
                } else {
                    0
                };
                let (v, cf) =
                    alu::carry(op, t, arg(1), arg(2), c, if cin { self.carry } else { 0 });
                if cout {
                    self.carry = cf;
                }
                self.set(&a[0], v);
            }
            Op::Float(op, t, r, ftz, sat) => {
                let v = alu::float_op(op, t, r, ftz, sat, arg(1), arg(2));
                self.set(&a[0], v);
            }
            Op::Fma(t, r, ftz, sat) => {
                let v = alu::fma(t, r, ftz, sat, arg(1), arg(2), arg(3));
                self.set(&a[0], v);
            }
            Op::Un(op, t, ftz) => {
                let v = alu::unary(op, t, ftz, arg(1));
                self.set(&a[0], v);
            }
            Op::Lop3 => {
                let v = alu::lop3(arg(1), arg(2), arg(3), arg(4));
                self.set(&a[0], v);
            }
            Op::Dp4a(sa, sb) => {
                let v = alu::dp4a(sa, sb, arg(1), arg(2), arg(3));
                self.set(&a[0], v);
            }
            Op::Testp(kind, t) => {
                let v = alu::testp(kind, t, arg(1));
                self.set(&a[0], u64::from(v));
            }
            Op::Bfe(t) => {
                let v = alu::bfe(t, arg(1), arg(2), arg(3));
                self.set(&a[0], v);
            }
            Op::Bfi(t) => {
                let v = alu::bfi(t, arg(1), arg(2), arg(3), arg(4));
                self.set(&a[0], v);
            }
            Op::Prmt => {
                let v = alu::prmt(arg(1), arg(2), arg(3));
                self.set(&a[0], v);
            }
            Op::Shf(l, c) => {
                let v = alu::shf(l, c, arg(1), arg(2), arg(3));
                self.set(&a[0], v);
            }
            Op::Setp(cmp, unord, t, comb, ftz) => {
                let (x, y) = (arg(2), arg(3));
                let r = alu::compare(cmp, unord, t, ftz, x, y);
                // Packed halves: p is the low lane's result, q the high lane's.
                let hi = matches!(t, Ty::F16x2 | Ty::Bf16x2)
                    .then(|| alu::compare(cmp, unord, t, ftz, x >> 16, y >> 16));
                let combine = |x: bool| match comb {
                    None => x,
                    Some(c) => {
                        let p = arg(4) != 0;
                        match c {
                            crate::program::BoolOp::And => x && p,
                            crate::program::BoolOp::Or => x || p,
                            crate::program::BoolOp::Xor => x ^ p,
                        }
                    }
                };
                let (p, q) = (combine(r), combine(hi.unwrap_or(!r)));
                self.set(&a[0], u64::from(p));
                self.set(&a[1], u64::from(q));
            }
            Op::Selp(t) => {
                let v = if arg(3) != 0 { arg(1) } else { arg(2) } & t.mask();
                self.set(&a[0], v);
            }
            Op::Cvt(d, s, r, ir, sat, ftz) => {
                let v = match d {
                    Ty::F16x2 | Ty::Bf16x2 => {
                        let one = |x| {
                            alu::convert(
                                if d == Ty::F16x2 { Ty::F16 } else { Ty::Bf16 },
                                s,
                                r,
                                ir,
                                sat,
                                ftz,
                                x,
                            )
                        };
                        one(arg(1)) << 16 | one(arg(2))
                    }
                    _ => alu::convert(d, s, r, ir, sat, ftz, arg(1)),
                };
                self.set(&a[0], v);
            }
            Op::Cvta(space, to) => {
                let base = match space {
                    Space::Shared => SHARED_WINDOW,
                    Space::Local => LOCAL_WINDOW,
                    _ => 0,
                };
                let v = arg(1);
                self.set(
                    &a[0],
                    if to {
                        v.wrapping_sub(base)
                    } else {
                        v.wrapping_add(base)
                    },
                );
            }
            Op::Ld(space, t, ext) => self.ld(cx, i, space, t, ext)?,
            Op::St(space, t) => self.st(cx, i, space, t)?,
            Op::Atom(space, op, t) => self.atomic(cx, i, space, op, t, true)?,
            Op::Red(space, op, t) => self.atomic(cx, i, space, op, t, false)?,
            Op::CpAsync => self.cp_async(cx, i)?,
            Op::Bra => {
                if let Arg::Target(t) = a[0] {
                    self.pc = t;
                }
            }
            Op::Exit => self.state = State::Exited,
            Op::Bar | Op::BarRed(_) => {
                self.pc -= 1;
                self.state = State::Barrier;
            }
            Op::WarpSync | Op::Shfl(_) | Op::Vote(_) | Op::Redux(..) | Op::Match(_) => {
                self.pc -= 1;
                self.state = State::Collective;
            }
            Op::Activemask => {
                let threads: u32 = cx.ntid.iter().product();
                let lanes = (threads - self.linear / 32 * 32).min(32);
                self.set(&a[0], mask(lanes));
            }
            Op::Nop => {}
            Op::Trap => return Err(fault(FaultKind::Trap, "trap instruction".into())),
        }
        Ok(())
    }
}
