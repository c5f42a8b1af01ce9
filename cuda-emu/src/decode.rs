//! Turns a parsed PTX module into [`Kernel`]s: registers become indices, symbols addresses,
//! labels instruction indices, and calls to `.func`s are inlined.

use std::collections::HashMap;

use crate::error::{EmuError, Result};
use crate::opcode;
use crate::program::{Arg, Inst, Kernel, Op, Sreg, LOCAL_WINDOW, SHARED_WINDOW};
use crate::ptx::ast::{Function, Instruction, Module, Operand, Space, Stmt, VarDecl};
use crate::ptx::parse::type_size;
use crate::ty::Ty;

/// Where a symbol lives.
#[derive(Debug, Clone, Copy)]
enum Sym {
    Global(u64),
    Shared(u64),
    Local(u64),
    Param(u64),
}

#[derive(Debug, Clone, Copy)]
enum Name {
    Reg(u32),
    Sym(Sym),
}

/// Size in bytes of a variable (saturating: a size past `u64` cannot be placed anyway).
pub fn var_size(v: &VarDecl) -> u64 {
    u64::from(type_size(&v.ty).unwrap_or(1) * v.vec).saturating_mul(v.count)
}

fn align_up(x: u64, a: u32) -> u64 {
    x.next_multiple_of(u64::from(a.max(1)))
}

/// Static shared memory of a whole module (its kernels' variables are laid out one after
/// another): far past any real module, it bounds what a launch allocates per block.
const MAX_STATIC_SHARED: u64 = 64 << 20;
/// Local memory per thread (CUDA's 512 KiB).
const MAX_LOCAL: u64 = 512 << 10;
/// Bytes of kernel parameters (CUDA 12.1's 32764).
const MAX_PARAMS: u64 = 32764;
/// Registers one kernel may declare (far past any real kernel; bounds the decoder's work).
const MAX_REGS: u64 = 1 << 20;

/// `v`'s place after `offset` bytes of a space holding at most `limit`: its aligned start and
/// its end, or an error naming the space.
fn place_after(offset: u64, v: &VarDecl, limit: u64, space: &str) -> Result<(u64, u64)> {
    let at = align_up(offset, v.align);
    match at.checked_add(var_size(v)).filter(|&end| end <= limit) {
        Some(end) => Ok((at, end)),
        None => Err(EmuError::Parse {
            line: v.line,
            msg: format!("`{}` does not fit in {space} ({limit} bytes)", v.name),
        }),
    }
}

/// Decodes every `.entry` of `m`. `place` puts a `.global`/`.const` variable in device memory
/// and returns its address.
pub fn kernels(m: &Module, place: &mut dyn FnMut(&VarDecl) -> Result<u64>) -> Result<Vec<Kernel>> {
    let mut globals = HashMap::new();
    let mut shared = 0u64;
    let body_vars = m
        .funcs
        .iter()
        .flat_map(|f| &f.body)
        .filter_map(|s| match s {
            Stmt::Var(v) => Some(v),
            _ => None,
        });
    let mut dynamic = Vec::new();
    for v in m.vars.iter().chain(body_vars) {
        match v.space {
            Space::Global | Space::Const => {
                globals.insert(v.name.clone(), Name::Sym(Sym::Global(place(v)?)));
            }
            Space::Shared if v.count == 0 => dynamic.push(v.name.clone()),
            Space::Shared => {
                let (at, end) = place_after(shared, v, MAX_STATIC_SHARED, "static shared memory")?;
                globals.insert(v.name.clone(), Name::Sym(Sym::Shared(at)));
                shared = end;
            }
            _ => {}
        }
    }
    let shared = align_up(shared, 16);
    for name in dynamic {
        globals.insert(name, Name::Sym(Sym::Shared(shared)));
    }
    let funcs: HashMap<&str, &Function> = m.funcs.iter().map(|f| (f.name.as_str(), f)).collect();
    m.funcs
        .iter()
        .filter(|f| f.is_entry)
        .map(|f| {
            let mut e = Emitter {
                funcs: &funcs,
                globals: &globals,
                scopes: Vec::new(),
                code: Vec::new(),
                reg_bits: Vec::new(),
                local: 0,
                depth: 0,
            };
            e.kernel(f, shared as u32)
        })
        .collect()
}

struct Emitter<'a> {
    funcs: &'a HashMap<&'a str, &'a Function>,
    globals: &'a HashMap<String, Name>,
    scopes: Vec<HashMap<String, Name>>,
    code: Vec<Inst>,
    reg_bits: Vec<u8>,
    local: u64,
    depth: u32,
}

/// A branch waiting for its label: instruction index and label (`None` for "end of callee").
type Fixup = (usize, Option<String>, u32);

impl Emitter<'_> {
    fn kernel(&mut self, f: &Function, shared_static: u32) -> Result<Kernel> {
        let mut scope = HashMap::new();
        let (mut params, mut off) = (Vec::new(), 0u64);
        for p in &f.params {
            let (at, end) = place_after(off, p, MAX_PARAMS, "kernel parameters")?;
            scope.insert(p.name.clone(), Name::Sym(Sym::Param(at)));
            params.push((at as u32, (end - at) as u32));
            off = end;
        }
        self.scopes.push(scope);
        self.body(f, false)?;
        Ok(Kernel {
            name: f.name.clone(),
            code: std::mem::take(&mut self.code),
            nregs: self.reg_bits.len() as u32,
            params,
            param_bytes: off as u32,
            shared_static,
            local_bytes: self.local as u32,
        })
    }

    fn lookup(&self, name: &str) -> Option<Name> {
        self.scopes
            .iter()
            .rev()
            .find_map(|s| s.get(name))
            .or_else(|| self.globals.get(name))
            .copied()
    }

    fn declare(&mut self, name: String, n: Name) {
        self.scopes
            .last_mut()
            .expect("a scope is open")
            .insert(name, n);
    }

    fn new_reg(&mut self, ty: &str) -> u32 {
        let bits = Ty::parse(ty).map_or(64, |t| t.bits().max(1));
        self.reg_bits.push(bits as u8);
        self.reg_bits.len() as u32 - 1
    }

    /// Emits the body of `f`; `inline` callees turn `ret` into a jump to their end.
    fn body(&mut self, f: &Function, inline: bool) -> Result<()> {
        let mut labels = HashMap::new();
        let mut fixups: Vec<Fixup> = Vec::new();
        for stmt in &f.body {
            match stmt {
                Stmt::Reg(ty, names, line) => {
                    let adding: u64 = names.iter().map(|(_, n)| u64::from(n.unwrap_or(1))).sum();
                    if self.reg_bits.len() as u64 + adding > MAX_REGS {
                        return Err(EmuError::Parse {
                            line: *line,
                            msg: format!("more than {MAX_REGS} registers in one kernel"),
                        });
                    }
                    for (name, count) in names {
                        match count {
                            None => {
                                let r = self.new_reg(ty);
                                self.declare(name.clone(), Name::Reg(r));
                            }
                            Some(n) => {
                                for i in 0..*n {
                                    let r = self.new_reg(ty);
                                    self.declare(format!("{name}{i}"), Name::Reg(r));
                                }
                            }
                        }
                    }
                }
                Stmt::Var(v) if matches!(v.space, Space::Local | Space::Param) => {
                    let (at, end) = place_after(self.local, v, MAX_LOCAL, "local memory")?;
                    self.declare(v.name.clone(), Name::Sym(Sym::Local(at)));
                    self.local = end;
                }
                Stmt::Var(_) => {}
                Stmt::Label(name, _) => {
                    labels.insert(name.clone(), self.code.len() as u32);
                }
                Stmt::Open => self.scopes.push(HashMap::new()),
                Stmt::Close => {
                    self.scopes.pop();
                }
                Stmt::Inst(i) if i.opcode.starts_with("call") => self.call(i)?,
                Stmt::Inst(i) => {
                    let inst = self.inst(i, inline)?;
                    if inst.op == Op::Bra {
                        let ret = i.opcode.starts_with("ret");
                        let label = match (ret, i.operands.first()) {
                            (true, _) => None,
                            (_, Some(Operand::Name(l))) => Some(l.clone()),
                            _ => return Err(unsupported(i.line, "branch target")),
                        };
                        fixups.push((self.code.len(), label, i.line));
                    }
                    self.code.push(inst);
                }
            }
        }
        let end = self.code.len() as u32;
        for (at, label, line) in fixups {
            let target = match label {
                None => end,
                Some(l) => *labels.get(&l).ok_or_else(|| EmuError::Parse {
                    line,
                    msg: format!("unknown label `{l}`"),
                })?,
            };
            self.code[at].args = Box::new([Arg::Target(target)]);
        }
        Ok(())
    }

    /// Inlines `call (rets), func, (args);`.
    fn call(&mut self, i: &Instruction) -> Result<()> {
        if i.guard.is_some() {
            return Err(unsupported(i.line, "guarded call"));
        }
        let (mut rets, mut args, mut callee) = (&[][..], &[][..], None);
        for op in &i.operands {
            match op {
                Operand::List(l) if callee.is_none() => rets = l,
                Operand::List(l) => args = l,
                Operand::Name(n) => callee = Some(n.as_str()),
                _ => return Err(unsupported(i.line, "call operand")),
            }
        }
        let name = callee.ok_or_else(|| unsupported(i.line, "call without a target"))?;
        if name == "vprintf" && !self.funcs.contains_key(name) {
            return self.printf(i, args, rets);
        }
        let f = *self
            .funcs
            .get(name)
            .ok_or_else(|| unsupported(i.line, &format!("call to `{name}`")))?;
        if self.depth > 16 {
            return Err(unsupported(i.line, "recursion"));
        }
        let mut scope = HashMap::new();
        for (decls, actual) in [(&f.params, args), (&f.rets, rets)] {
            for (d, a) in decls.iter().zip(actual) {
                let Operand::Name(n) = a else {
                    return Err(unsupported(i.line, "call argument"));
                };
                let sym = self.lookup(n).ok_or_else(|| unknown(i.line, n))?;
                scope.insert(d.name.clone(), sym);
            }
        }
        let saved = std::mem::replace(&mut self.scopes, vec![scope]);
        self.depth += 1;
        let r = self.body(f, true);
        self.depth -= 1;
        self.scopes = saved;
        r
    }

    /// `call (ret), vprintf, (format, args)` becomes one `Op::Printf` over the call's params.
    fn printf(&mut self, i: &Instruction, args: &[Operand], rets: &[Operand]) -> Result<()> {
        let local = |o: Option<&Operand>| match o {
            Some(Operand::Name(n)) => match self.lookup(n) {
                Some(Name::Sym(Sym::Local(off))) => Ok(Arg::Imm(off)),
                _ => Err(unsupported(i.line, "vprintf argument")),
            },
            None => Ok(Arg::Sink),
            _ => Err(unsupported(i.line, "vprintf argument")),
        };
        let ops = [
            local(args.first())?,
            local(args.get(1))?,
            local(rets.first())?,
        ];
        self.code.push(Inst {
            op: Op::Printf,
            guard: None,
            args: Box::new(ops),
            line: i.line,
        });
        Ok(())
    }

    fn inst(&mut self, i: &Instruction, inline: bool) -> Result<Inst> {
        let mut op = opcode::decode(&i.opcode, i.line)?;
        if op == Op::Exit && inline && i.opcode.starts_with("ret") {
            op = Op::Bra;
        }
        let guard = match &i.guard {
            Some((p, neg)) => Some((self.reg(p, i.line)?, *neg)),
            None => None,
        };
        let imm_ty = match op {
            Op::Cvt(_, src, ..) => src,
            Op::Mov(t)
            | Op::Int(_, t, _)
            | Op::Mad(_, t)
            | Op::Float(_, t, ..)
            | Op::Carry(_, t, ..) => t,
            Op::Fma(t, ..) | Op::Un(_, t, ..) | Op::Bfe(t) | Op::Bfi(t) | Op::Setp(_, _, t, ..) => {
                t
            }
            Op::Selp(t) | Op::Ld(_, t, _) | Op::St(_, t) | Op::Atom(_, _, t) | Op::Red(_, _, t) => {
                t
            }
            _ => Ty::B(32),
        };
        let mut args = Vec::with_capacity(i.operands.len() + 1);
        let mut space_override = None;
        if op == Op::Bra {
            args.push(Arg::Target(0));
        } else {
            for o in &i.operands {
                args.extend(self.arg(o, imm_ty, i.line, &mut space_override)?);
            }
        }
        if matches!(op, Op::Shfl(_) | Op::Setp(..))
            && !matches!(i.operands.first(), Some(Operand::Pair(..)))
        {
            if args.is_empty() {
                return Err(EmuError::Parse {
                    line: i.line,
                    msg: format!("`{}` without operands", i.opcode),
                });
            }
            args.insert(1, Arg::Sink);
        }
        op = self.check_operands(op, &mut args, i)?;
        op = self.fix_space(op, space_override, &mut args);
        Ok(Inst {
            op,
            guard,
            args: args.into_boxed_slice(),
            line: i.line,
        })
    }

    /// Applies the space of a symbol address and sign-extension widths of loads.
    fn fix_space(&self, op: Op, sym: Option<Sym>, args: &mut [Arg]) -> Op {
        let space_of = |s: Space| match (s, sym) {
            (Space::Param, Some(Sym::Local(_))) => Space::Local,
            (s, _) => s,
        };
        if let (Some(sym), Some(Arg::Mem(None, off))) =
            (sym, args.iter_mut().find(|a| matches!(a, Arg::Mem(..))))
        {
            let generic = matches!(
                op,
                Op::Ld(Space::Generic, ..)
                    | Op::St(Space::Generic, _)
                    | Op::Atom(Space::Generic, ..)
                    | Op::Red(Space::Generic, ..)
                    | Op::Ldmatrix(_, _, Space::Generic)
            );
            match sym {
                // Wrapping: an offset that leaves the window faults when used, as on a GPU.
                Sym::Shared(_) if generic => *off = off.wrapping_add(SHARED_WINDOW as i64),
                Sym::Local(_) if generic => *off = off.wrapping_add(LOCAL_WINDOW as i64),
                _ => {}
            }
        }
        match op {
            Op::Ld(s, t, _) => {
                let dst = match args.first() {
                    Some(Arg::Reg(r)) => Some(*r),
                    Some(Arg::Vec(v)) => {
                        v.iter()
                            .find_map(|a| if let Arg::Reg(r) = a { Some(*r) } else { None })
                    }
                    _ => None,
                };
                let ext = if t.is_signed() {
                    dst.map_or(64, |r| self.reg_bits[r as usize])
                } else {
                    0
                };
                Op::Ld(space_of(s), t, ext)
            }
            Op::St(s, t) => Op::St(space_of(s), t),
            op => op,
        }
    }

    /// Checks the operand shapes of `cp.async` and the warp-wide matrix instructions (their
    /// executors index operands unchecked), drops a `cp.async` cache policy, and tells its
    /// `ignore-src` predicate from a `src-size`.
    fn check_operands(&self, op: Op, args: &mut Vec<Arg>, i: &Instruction) -> Result<Op> {
        let bad = || EmuError::Parse {
            line: i.line,
            msg: format!("`{}`: wrong operands", i.opcode),
        };
        let scalar = |a: &Arg| matches!(a, Arg::Reg(_) | Arg::Imm(_) | Arg::Sink);
        let vec_of =
            |a: &Arg, n: usize| matches!(a, Arg::Vec(v) if v.len() == n && v.iter().all(scalar));
        let ok = match op {
            Op::CpAsync(_) => return self.check_cp_async(args, i).ok_or_else(bad),
            Op::CpAsyncCommit | Op::CpAsyncWait(true) => args.is_empty(),
            Op::CpAsyncWait(false) => matches!(args.as_slice(), [Arg::Imm(_)]),
            Op::Mma(k, _) => {
                let k = usize::from(k);
                args.len() == 4
                    && vec_of(&args[0], 4)
                    && vec_of(&args[1], k / 4)
                    && vec_of(&args[2], k / 8)
                    && vec_of(&args[3], 4)
            }
            Op::Ldmatrix(n, ..) => {
                if n == 1 && matches!(args.first(), Some(Arg::Reg(_))) {
                    args[0] = Arg::Vec(Box::new([args[0].clone()]));
                }
                args.len() == 2
                    && vec_of(&args[0], usize::from(n))
                    && matches!(args[1], Arg::Mem(..))
            }
            _ => true,
        };
        if ok {
            Ok(op)
        } else {
            Err(bad())
        }
    }

    /// `cp.async [dst], [src], cp-size{, src-size | ignore-src}{, cache-policy}`.
    fn check_cp_async(&self, args: &mut Vec<Arg>, i: &Instruction) -> Option<Op> {
        if i.opcode.contains(".L2::cache_hint") {
            args.pop()?;
        }
        // `.cg` copies 16 bytes only; `.ca` 4, 8 or 16.
        let ca = i.opcode.split('.').nth(2) == Some("ca");
        let size_ok = match args.get(2)? {
            Arg::Imm(16) => true,
            Arg::Imm(4 | 8) => ca,
            _ => false,
        };
        let predicate = match args.get(3) {
            None => false,
            Some(Arg::Not(_)) => true,
            Some(Arg::Reg(r)) => self.reg_bits[*r as usize] == 1,
            Some(Arg::Imm(_)) => false,
            Some(_) => return None,
        };
        let mems = matches!(args[0], Arg::Mem(..)) && matches!(args[1], Arg::Mem(..));
        (size_ok && mems && args.len() <= 4).then_some(Op::CpAsync(predicate))
    }

    fn reg(&self, name: &str, line: u32) -> Result<u32> {
        match self.lookup(name) {
            Some(Name::Reg(r)) => Ok(r),
            _ => Err(unknown(line, name)),
        }
    }

    fn arg(&self, o: &Operand, ty: Ty, line: u32, sym_used: &mut Option<Sym>) -> Result<Vec<Arg>> {
        Ok(vec![match o {
            Operand::Name(n) if n == "_" => Arg::Sink,
            Operand::Name(n) => match sreg(n) {
                Some(s) => Arg::Sreg(s),
                None => match self.lookup(n).ok_or_else(|| unknown(line, n))? {
                    Name::Reg(r) => Arg::Reg(r),
                    Name::Sym(s) => Arg::Imm(sym_addr(s)),
                },
            },
            Operand::Not(n) => Arg::Not(self.reg(n, line)?),
            Operand::Int(v) => Arg::Imm(*v as u64),
            Operand::Float(v) => Arg::Imm(match ty {
                Ty::F64 | Ty::B(64) | Ty::U(64) | Ty::S(64) => v.to_bits(),
                Ty::F16 | Ty::B(16) => u64::from(half::f16::from_f64(*v).to_bits()),
                Ty::Bf16 => u64::from(half::bf16::from_f64(*v).to_bits()),
                _ => u64::from((*v as f32).to_bits()),
            }),
            Operand::F32(b) => Arg::Imm(match ty {
                Ty::F64 => f64::from(f32::from_bits(*b)).to_bits(),
                _ => u64::from(*b),
            }),
            Operand::Addr(None, off) => Arg::Mem(None, *off),
            Operand::Addr(Some(base), off) => {
                match self.lookup(base).ok_or_else(|| unknown(line, base))? {
                    Name::Reg(r) => Arg::Mem(Some(r), *off),
                    Name::Sym(s) => {
                        *sym_used = Some(s);
                        Arg::Mem(None, sym_addr(s) as i64 + off)
                    }
                }
            }
            Operand::Vec(items) => {
                let mut v = Vec::new();
                for it in items {
                    v.extend(self.arg(it, ty, line, sym_used)?);
                }
                Arg::Vec(v.into_boxed_slice())
            }
            Operand::Pair(a, b) => {
                return Ok(vec![
                    Arg::Reg(self.reg(a, line)?),
                    Arg::Reg(self.reg(b, line)?),
                ])
            }
            Operand::List(_) => return Err(unsupported(line, "operand list")),
        }])
    }
}

fn sym_addr(s: Sym) -> u64 {
    match s {
        Sym::Global(a) | Sym::Shared(a) | Sym::Local(a) | Sym::Param(a) => a,
    }
}

fn unsupported(line: u32, what: &str) -> EmuError {
    EmuError::Unsupported {
        line,
        what: what.to_string(),
    }
}

fn unknown(line: u32, name: &str) -> EmuError {
    EmuError::Parse {
        line,
        msg: format!("unknown name `{name}`"),
    }
}

/// Special registers by name.
fn sreg(name: &str) -> Option<Sreg> {
    let dim = |s: &str| match s {
        "x" => Some(0u8),
        "y" => Some(1),
        "z" => Some(2),
        _ => None,
    };
    if let Some((base, d)) = name.split_once('.') {
        let d = dim(d)?;
        return Some(match base {
            "%tid" => Sreg::Tid(d),
            "%ntid" => Sreg::Ntid(d),
            "%ctaid" => Sreg::Ctaid(d),
            "%nctaid" => Sreg::Nctaid(d),
            _ => return None,
        });
    }
    Some(match name {
        "%laneid" => Sreg::Laneid,
        "%warpid" => Sreg::Warpid,
        "%nwarpid" => Sreg::Nwarpid,
        "%clock" | "%clock64" | "%globaltimer" => Sreg::Clock,
        "%lanemask_eq" => Sreg::Lanemask(0),
        "%lanemask_lt" => Sreg::Lanemask(1),
        "%lanemask_le" => Sreg::Lanemask(2),
        "%lanemask_gt" => Sreg::Lanemask(3),
        "%lanemask_ge" => Sreg::Lanemask(4),
        "%dynamic_smem_size" => Sreg::DynSmem,
        "%smid" | "%nsmid" | "%gridid" => Sreg::Zero,
        _ => return None,
    })
}
