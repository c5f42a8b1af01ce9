//! Decodes an opcode with its modifiers (`setp.lt.ftz.f32`) into an [`Op`].

use crate::error::{EmuError, Result};
use crate::float::Rnd;
use crate::program::{AtomOp, BoolOp, CarryOp, Cmp, FloatOp, IntOp, Op, ShflMode, UnOp, VoteMode};
use crate::ptx::ast::Space;
use crate::ty::Ty;

/// The parts of an opcode: base name, type suffixes in order, other modifiers.
struct Parts<'a> {
    base: &'a str,
    tys: Vec<Ty>,
    mods: Vec<&'a str>,
}

impl Parts<'_> {
    fn has(&self, m: &str) -> bool {
        self.mods.contains(&m)
    }

    fn ty(&self) -> Option<Ty> {
        self.tys.last().copied()
    }

    fn rnd(&self) -> (Rnd, bool) {
        for m in &self.mods {
            let (r, int) = match *m {
                "rn" => (Rnd::Rn, false),
                "rz" => (Rnd::Rz, false),
                "rm" => (Rnd::Rm, false),
                "rp" => (Rnd::Rp, false),
                "rni" => (Rnd::Rn, true),
                "rzi" => (Rnd::Rz, true),
                "rmi" => (Rnd::Rm, true),
                "rpi" => (Rnd::Rp, true),
                _ => continue,
            };
            return (r, int);
        }
        (Rnd::Rn, false)
    }

    fn space(&self) -> Space {
        for m in &self.mods {
            match *m {
                "global" => return Space::Global,
                "shared" | "shared::cta" | "shared::cluster" => return Space::Shared,
                "local" => return Space::Local,
                "param" => return Space::Param,
                "const" => return Space::Const,
                _ => {}
            }
        }
        Space::Generic
    }
}

fn split(opcode: &str) -> Parts<'_> {
    let mut it = opcode.split('.');
    let base = it.next().unwrap_or_default();
    let (mut tys, mut mods) = (Vec::new(), Vec::new());
    for m in it {
        match Ty::parse(m) {
            Some(t) => tys.push(t),
            None => mods.push(m),
        }
    }
    Parts { base, tys, mods }
}

/// Decodes `opcode`; `line` is used in errors.
pub fn decode(opcode: &str, line: u32) -> Result<Op> {
    let p = split(opcode);
    let unsupported = || EmuError::Unsupported {
        line,
        what: format!("instruction `{opcode}`"),
    };
    let ty = || p.ty().ok_or_else(unsupported);
    let (rnd, int_rnd) = p.rnd();
    let (ftz, sat) = (p.has("ftz"), p.has("sat"));
    if p.tys.iter().any(|t| t.bits() > 64) {
        return Err(unsupported());
    }
    let op = match p.base {
        "mov" => Op::Mov(ty()?),
        "add" | "sub" | "mul" | "div" | "min" | "max" | "copysign" if ty()?.is_float() => {
            let f = match p.base {
                "add" => FloatOp::Add,
                "sub" => FloatOp::Sub,
                "mul" => FloatOp::Mul,
                "div" => FloatOp::Div,
                "min" => FloatOp::Min,
                "max" => FloatOp::Max,
                _ => FloatOp::Copysign,
            };
            Op::Float(f, ty()?, rnd, ftz, sat)
        }
        "add" | "sub" | "addc" | "subc" | "madc"
            if !ty()?.is_float() && (p.has("cc") || p.base.ends_with('c')) =>
        {
            let kind = match p.base {
                "add" | "addc" => CarryOp::Add,
                "sub" | "subc" => CarryOp::Sub,
                _ if p.has("hi") => CarryOp::MadHi,
                _ => CarryOp::MadLo,
            };
            Op::Carry(kind, ty()?, p.base.ends_with('c'), p.has("cc"))
        }
        "mad" if p.has("cc") => Op::Carry(
            if p.has("hi") {
                CarryOp::MadHi
            } else {
                CarryOp::MadLo
            },
            ty()?,
            false,
            true,
        ),
        "add" => Op::Int(IntOp::Add, ty()?, sat),
        "sub" => Op::Int(IntOp::Sub, ty()?, sat),
        "mul" => Op::Int(mul_kind(&p), ty()?, false),
        "div" => Op::Int(IntOp::Div, ty()?, false),
        "rem" => Op::Int(IntOp::Rem, ty()?, false),
        "min" => Op::Int(IntOp::Min, ty()?, false),
        "max" => Op::Int(IntOp::Max, ty()?, false),
        "and" => Op::Int(IntOp::And, ty()?, false),
        "or" => Op::Int(IntOp::Or, ty()?, false),
        "xor" => Op::Int(IntOp::Xor, ty()?, false),
        "shl" => Op::Int(IntOp::Shl, ty()?, false),
        "shr" => Op::Int(IntOp::Shr, ty()?, false),
        // A directed f64 fma would need its exact error term: refused rather than rounded to nearest.
        "mad" | "fma" if ty()?.is_float() && (rnd == Rnd::Rn || ty()? != Ty::F64) => {
            Op::Fma(ty()?, rnd, ftz, sat)
        }
        "mad" if !sat && !ty()?.is_float() => Op::Mad(mul_kind(&p), ty()?),
        "abs" | "neg" | "not" | "cnot" | "popc" | "clz" | "brev" | "bfind" | "sqrt" | "rsqrt"
        | "rcp" | "ex2" | "lg2" | "sin" | "cos" | "tanh"
            if rnd == Rnd::Rn || ty()? != Ty::F64 =>
        {
            Op::Un(un_kind(&p), ty()?, ftz, rnd)
        }
        "bfe" => Op::Bfe(ty()?),
        "bfi" => Op::Bfi(ty()?),
        "prmt" if p.mods.is_empty() => Op::Prmt,
        "shf" => Op::Shf(p.has("l"), p.has("clamp")),
        "setp" => {
            let (cmp, unordered) =
                cmp_kind(p.mods.first().copied().unwrap_or_default()).ok_or_else(unsupported)?;
            let combine = p.mods.iter().find_map(|m| match *m {
                "and" => Some(BoolOp::And),
                "or" => Some(BoolOp::Or),
                "xor" => Some(BoolOp::Xor),
                _ => None,
            });
            Op::Setp(cmp, unordered, ty()?, combine, ftz)
        }
        "selp" => Op::Selp(ty()?),
        "cvt" if p.tys.len() == 2 => Op::Cvt(p.tys[0], p.tys[1], rnd, int_rnd, sat, ftz),
        "cvta" => Op::Cvta(p.space(), p.has("to")),
        "ld" | "ldu" => Op::Ld(p.space(), ty()?, 0),
        "st" => Op::St(p.space(), ty()?),
        "atom" => Op::Atom(p.space(), atom_kind(&p).ok_or_else(unsupported)?, ty()?),
        "red" => Op::Red(p.space(), atom_kind(&p).ok_or_else(unsupported)?, ty()?),
        "cp" if p.mods == ["async", "commit_group"] => Op::CpAsyncCommit,
        "cp" if p.mods == ["async", "wait_group"] => Op::CpAsyncWait(false),
        "cp" if p.mods == ["async", "wait_all"] => Op::CpAsyncWait(true),
        "cp" if cp_async_ok(&p) => Op::CpAsync(false),
        "mma" => mma_kind(&p).ok_or_else(unsupported)?,
        "ldmatrix" => ldmatrix_kind(&p).ok_or_else(unsupported)?,
        "bra" => Op::Bra,
        "ret" | "exit" => Op::Exit,
        "bar" | "barrier" if p.has("warp") => Op::WarpSync,
        "bar" | "barrier" if p.has("red") => Op::BarRed(if p.has("popc") {
            0
        } else if p.has("and") {
            1
        } else {
            2
        }),
        "bar" | "barrier" if p.has("sync") || p.mods.is_empty() => Op::Bar,
        "shfl" if p.has("sync") => Op::Shfl(if p.has("up") {
            ShflMode::Up
        } else if p.has("down") {
            ShflMode::Down
        } else if p.has("bfly") {
            ShflMode::Bfly
        } else {
            ShflMode::Idx
        }),
        "vote" if p.has("sync") => Op::Vote(if p.has("all") {
            VoteMode::All
        } else if p.has("any") {
            VoteMode::Any
        } else if p.has("uni") {
            VoteMode::Uni
        } else {
            VoteMode::Ballot
        }),
        "activemask" => Op::Activemask,
        "redux" if p.has("sync") => {
            let kind = [
                ("add", IntOp::Add),
                ("min", IntOp::Min),
                ("max", IntOp::Max),
                ("and", IntOp::And),
                ("or", IntOp::Or),
                ("xor", IntOp::Xor),
            ]
            .into_iter()
            .find_map(|(m, k)| p.has(m).then_some(k))
            .ok_or_else(unsupported)?;
            Op::Redux(kind, ty()?)
        }
        "match" if p.has("sync") && (p.has("any") || p.has("all")) => Op::Match(p.has("all")),
        "lop3" => Op::Lop3,
        "dp4a" => Op::Dp4a(
            p.tys.first() == Some(&Ty::S(32)),
            p.tys.get(1) == Some(&Ty::S(32)),
        ),
        "testp" => {
            let kind = [
                "finite",
                "infinite",
                "number",
                "notanumber",
                "normal",
                "subnormal",
            ]
            .iter()
            .position(|k| p.has(k))
            .ok_or_else(unsupported)?;
            Op::Testp(kind as u8, ty()?)
        }
        "membar" | "fence" | "nanosleep" | "prefetch" | "prefetchu" | "discard" | "pmevent"
        | "griddepcontrol" | "createpolicy" | "applypriority" => Op::Nop,
        "trap" | "brkpt" => Op::Trap,
        _ => return Err(unsupported()),
    };
    if is_arithmetic(&op) && !p.mods.iter().all(|m| ARITH_MODS.contains(m)) {
        // `.relu`, `.NaN`, `.xorsign`, `.satfinite`... change results: refuse, never ignore.
        return Err(unsupported());
    }
    Ok(op)
}

/// Modifiers the arithmetic operations implement.
const ARITH_MODS: &[&str] = &[
    "rn", "rz", "rm", "rp", "rni", "rzi", "rmi", "rpi", "ftz", "sat", "approx", "full", "lo", "hi",
    "wide", "cc", "shiftamt", "wrap", "clamp", "l", "r", "eq", "ne", "lt", "le", "gt", "ge", "ls",
    "hs", "equ", "neu", "ltu", "leu", "gtu", "geu", "num", "nan", "and", "or", "xor",
];

/// Operations whose results depend on every modifier (unlike memory ops' cache hints).
fn is_arithmetic(op: &Op) -> bool {
    matches!(
        op,
        Op::Int(..)
            | Op::Mad(..)
            | Op::Carry(..)
            | Op::Float(..)
            | Op::Fma(..)
            | Op::Un(..)
            | Op::Setp(..)
            | Op::Cvt(..)
            | Op::Selp(_)
            | Op::Shf(..)
    )
}

/// `cp.async.{ca,cg}.shared{::cta}.global{.L2::cache_hint}{.L2::64B,128B,256B}`.
fn cp_async_ok(p: &Parts<'_>) -> bool {
    let (cache, src) = (p.mods.get(1).copied(), p.mods.get(3).copied());
    p.mods.first() == Some(&"async")
        && matches!(cache, Some("ca" | "cg"))
        && matches!(p.mods.get(2), Some(&("shared" | "shared::cta")))
        && src == Some("global")
        && p.tys.is_empty()
        && p.mods[4..]
            .iter()
            .all(|m| matches!(*m, "L2::cache_hint" | "L2::64B" | "L2::128B" | "L2::256B"))
}

/// `mma.sync.aligned.m16n8k{8,16}.row.col.f32.{f16,bf16}.{f16,bf16}.f32`: A and B of one type.
fn mma_kind(p: &Parts<'_>) -> Option<Op> {
    let k = match p.mods.as_slice() {
        ["sync", "aligned", "m16n8k16", "row", "col"] => 16,
        ["sync", "aligned", "m16n8k8", "row", "col"] => 8,
        _ => return None,
    };
    match p.tys.as_slice() {
        [Ty::F32, Ty::F16, Ty::F16, Ty::F32] => Some(Op::Mma(k, false)),
        [Ty::F32, Ty::Bf16, Ty::Bf16, Ty::F32] => Some(Op::Mma(k, true)),
        _ => None,
    }
}

/// `ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{.trans}{.shared{::cta}}.b16`.
fn ldmatrix_kind(p: &Parts<'_>) -> Option<Op> {
    let ["sync", "aligned", "m8n8", num, rest @ ..] = p.mods.as_slice() else {
        return None;
    };
    let n = match *num {
        "x1" => 1,
        "x2" => 2,
        "x4" => 4,
        _ => return None,
    };
    let (trans, rest) = match rest {
        ["trans", r @ ..] => (true, r),
        r => (false, r),
    };
    let space = match rest {
        [] => Space::Generic,
        ["shared" | "shared::cta"] => Space::Shared,
        _ => return None,
    };
    (p.tys.as_slice() == [Ty::B(16)]).then_some(Op::Ldmatrix(n, trans, space))
}

fn mul_kind(p: &Parts<'_>) -> IntOp {
    if p.has("hi") {
        IntOp::MulHi
    } else if p.has("wide") {
        IntOp::MulWide
    } else {
        IntOp::MulLo
    }
}

fn un_kind(p: &Parts<'_>) -> UnOp {
    match p.base {
        "abs" => UnOp::Abs,
        "neg" => UnOp::Neg,
        "not" => UnOp::Not,
        "cnot" => UnOp::Cnot,
        "popc" => UnOp::Popc,
        "clz" => UnOp::Clz,
        "brev" => UnOp::Brev,
        "bfind" => UnOp::Bfind(p.has("shiftamt")),
        "sqrt" => UnOp::Sqrt,
        "rsqrt" => UnOp::Rsqrt,
        "rcp" => UnOp::Rcp,
        "ex2" => UnOp::Ex2,
        "lg2" => UnOp::Lg2,
        "sin" => UnOp::Sin,
        "cos" => UnOp::Cos,
        _ => UnOp::Tanh,
    }
}

fn cmp_kind(m: &str) -> Option<(Cmp, bool)> {
    Some(match m {
        "eq" => (Cmp::Eq, false),
        "ne" => (Cmp::Ne, false),
        "lt" | "lo" => (Cmp::Lt, false),
        "le" | "ls" => (Cmp::Le, false),
        "gt" | "hi" => (Cmp::Gt, false),
        "ge" | "hs" => (Cmp::Ge, false),
        "equ" => (Cmp::Eq, true),
        "neu" => (Cmp::Ne, true),
        "ltu" => (Cmp::Lt, true),
        "leu" => (Cmp::Le, true),
        "gtu" => (Cmp::Gt, true),
        "geu" => (Cmp::Ge, true),
        "num" => (Cmp::Num, false),
        "nan" => (Cmp::Nan, false),
        _ => return None,
    })
}

fn atom_kind(p: &Parts<'_>) -> Option<AtomOp> {
    p.mods.iter().find_map(|m| {
        Some(match *m {
            "add" => AtomOp::Add,
            "min" => AtomOp::Min,
            "max" => AtomOp::Max,
            "and" => AtomOp::And,
            "or" => AtomOp::Or,
            "xor" => AtomOp::Xor,
            "exch" => AtomOp::Exch,
            "cas" => AtomOp::Cas,
            "inc" => AtomOp::Inc,
            "dec" => AtomOp::Dec,
            _ => return None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_types_and_modifiers() {
        assert_eq!(
            decode("add.rn.ftz.sat.f32", 1).unwrap(),
            Op::Float(FloatOp::Add, Ty::F32, Rnd::Rn, true, true)
        );
        assert_eq!(
            decode("cvt.rzi.s32.f64", 1).unwrap(),
            Op::Cvt(Ty::S(32), Ty::F64, Rnd::Rz, true, false, false)
        );
        assert_eq!(
            decode("ld.global.nc.L1::no_allocate.v4.f32", 1).unwrap(),
            Op::Ld(Space::Global, Ty::F32, 0)
        );
        assert_eq!(
            decode("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 1).unwrap(),
            Op::Mma(16, true)
        );
        assert_eq!(
            decode("ldmatrix.sync.aligned.m8n8.x4.trans.shared::cta.b16", 1).unwrap(),
            Op::Ldmatrix(4, true, Space::Shared)
        );
        assert_eq!(
            decode("cp.async.cg.shared.global.L2::128B", 1).unwrap(),
            Op::CpAsync(false)
        );
        assert_eq!(
            decode("setp.ltu.and.f32", 1).unwrap(),
            Op::Setp(Cmp::Lt, true, Ty::F32, Some(BoolOp::And), false)
        );
    }

    #[test]
    fn refuses_modifiers_that_change_results() {
        for op in [
            "min.NaN.f32",
            "fma.rn.relu.bf16",
            "cvt.rn.satfinite.f16.f32",
            "mul24.lo.s32",
            "mma.sync.aligned.m16n8k16.row.row.f32.f16.f16.f32",
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.bf16.f32",
            "mma.sync.aligned.m16n8k16.row.col.f16.f16.f16.f16",
            "ldmatrix.sync.aligned.m8n8.x3.shared.b16",
            "ldmatrix.sync.aligned.m16n16.x1.trans.shared.b8",
            "cp.async.ca.shared.global.v4",
            "cp.async.bulk.shared::cluster.global",
        ] {
            let err = decode(op, 7).unwrap_err().to_string();
            assert!(err.contains("line 7") && err.contains(op), "{err}");
        }
    }
}
