//! One thread's registers and its run loop: it executes until a barrier, a warp collective,
//! exit or a fault.

use crate::alu;
use crate::cp_async::AsyncCopies;
use crate::error::FaultKind;
use crate::memory::GlobalView;
use crate::program::{Arg, Inst, Kernel, Op, Sreg, LOCAL_WINDOW, SHARED_WINDOW};
use crate::ptx::ast::Space;
use crate::racecheck::RaceMap;
use crate::stats::Counters;
use crate::ty::{mask, Ty};

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
    /// Its `cp.async` copies in flight.
    pub copies: AsyncCopies,
}

pub(crate) fn fault(kind: FaultKind, detail: String) -> Fault {
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
            copies: AsyncCopies::default(),
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

    /// Runs until the thread stops being `Ready` or has run `slice` instructions (so that a
    /// thread spinning on a flag another thread sets lets that thread run).
    pub fn run(&mut self, cx: &mut BlockCtx<'_>, slice: u64) -> Result<(), Fault> {
        let code = &cx.kernel.code;
        let (start, end) = (self.clock, self.clock + slice);
        let mut result = Ok(());
        while self.state == State::Ready && self.clock < end {
            let i = &code[self.pc as usize];
            self.clock += 1;
            self.pc += 1;
            if let Some((g, neg)) = i.guard {
                if (self.regs[g as usize] != 0) == neg {
                    continue;
                }
            }
            result = self.step(cx, i);
            if result.is_err() {
                break;
            }
        }
        cx.stats.instructions += self.clock - start;
        result
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
            Op::Un(op, t, ftz, rnd) => {
                let v = alu::unary(op, t, ftz, rnd, arg(1));
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
            Op::CpAsync(pred) => self.cp_async(cx, i, pred)?,
            Op::CpAsyncCommit => self.cp_async_commit(),
            Op::CpAsyncWait(all) => self.cp_async_wait(cx, i, all)?,
            Op::Printf => self.printf(cx, i)?,
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
            Op::WarpSync
            | Op::Shfl(_)
            | Op::Vote(_)
            | Op::Redux(..)
            | Op::Match(_)
            | Op::Mma(..)
            | Op::Ldmatrix(..)
            | Op::Activemask => {
                self.pc -= 1;
                self.state = State::Collective;
            }
            Op::Nop => {}
            Op::Trap => return Err(fault(FaultKind::Trap, "trap instruction".into())),
        }
        Ok(())
    }
}
