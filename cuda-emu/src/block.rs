//! Runs one thread block: threads advance independently until barriers or warp collectives,
//! which are resolved once every participant has arrived.

use crate::error::{EmuError, FaultKind, Result};
use crate::program::{Arg, Op, ShflMode, VoteMode};
use crate::thread::{BlockCtx, Fault, State, Thread};

/// Instructions a thread runs before the next ready thread gets a turn.
const SLICE: u64 = 4096;
/// Instructions after which a block is taken to be stuck.
const MAX_BLOCK_INSTRUCTIONS: u64 = 1 << 33;

/// Runs every thread of the block in `cx` to completion.
pub fn run(cx: &mut BlockCtx<'_>) -> Result<()> {
    let [x, y, z] = cx.ntid;
    let mut threads = Vec::with_capacity((x * y * z) as usize);
    for tz in 0..z {
        for ty in 0..y {
            for tx in 0..x {
                let linear = threads.len() as u32;
                threads.push(Thread::new(cx.kernel, [tx, ty, tz], linear));
            }
        }
    }
    loop {
        let mut ready = false;
        for t in threads.iter_mut().filter(|t| t.state == State::Ready) {
            if let Err(f) = t.run(cx, SLICE) {
                t.pc = t.pc.saturating_sub(1);
                return Err(report(cx, t, f));
            }
            ready |= t.state == State::Ready;
        }
        if cx.stats.instructions > MAX_BLOCK_INSTRUCTIONS {
            let t = threads
                .iter()
                .find(|t| t.state == State::Ready)
                .unwrap_or(&threads[0]);
            let detail = format!("the block ran {MAX_BLOCK_INSTRUCTIONS} instructions: an endless loop or a spin-wait no thread ends?");
            return Err(report(
                cx,
                t,
                Fault {
                    kind: FaultKind::Trap,
                    detail,
                },
            ));
        }
        if resolve_collectives(cx, &mut threads, !ready)? || ready {
            continue;
        }
        if threads.iter().all(|t| t.state == State::Exited) {
            return Ok(());
        }
        release_barrier(cx, &mut threads)?;
    }
}

/// Builds the launch error for a fault of thread `t` (whose pc is the faulting instruction).
fn report(cx: &BlockCtx<'_>, t: &Thread, f: Fault) -> EmuError {
    EmuError::Fault {
        kind: f.kind,
        kernel: cx.kernel.name.clone(),
        block: cx.ctaid,
        thread: t.tid,
        line: cx.kernel.code.get(t.pc as usize).map_or(0, |i| i.line),
        detail: f.detail,
    }
}

fn describe(cx: &BlockCtx<'_>, t: &Thread) -> String {
    let line = cx.kernel.code.get(t.pc as usize).map_or(0, |i| i.line);
    let [x, y, z] = t.tid;
    match t.state {
        State::Exited => format!("thread ({x},{y},{z}) has exited"),
        State::Barrier => format!("thread ({x},{y},{z}) waits at the barrier on line {line}"),
        State::Collective => {
            format!("thread ({x},{y},{z}) waits at the warp collective on line {line}")
        }
        State::Ready => format!("thread ({x},{y},{z}) is running"),
    }
}

/// Completes the barrier all live threads wait at, or reports why it cannot complete.
fn release_barrier(cx: &mut BlockCtx<'_>, threads: &mut [Thread]) -> Result<()> {
    let first = threads
        .iter()
        .find(|t| t.state != State::Exited)
        .expect("some thread is live");
    if first.state != State::Barrier {
        let f = Fault {
            kind: FaultKind::MissingLanes,
            detail: "its warp never completes the collective".into(),
        };
        return Err(report(cx, first, f));
    }
    if let Some(other) = threads
        .iter()
        .find(|t| t.state != State::Barrier || t.pc != first.pc)
    {
        let hint = if other.state == State::Exited {
            " (every thread of a block must reach each __syncthreads(); an early return before one counts)"
        } else {
            ""
        };
        let detail = format!("waits at the barrier while {}{hint}", describe(cx, other));
        return Err(report(
            cx,
            first,
            Fault {
                kind: FaultKind::BarrierDivergence,
                detail,
            },
        ));
    }
    let inst = &cx.kernel.code[first.pc as usize];
    if let Op::BarRed(kind) = inst.op {
        let preds: Vec<bool> = threads
            .iter()
            .map(|t| t.get(&inst.args[2], cx) != 0)
            .collect();
        let v = match kind {
            0 => preds.iter().filter(|p| **p).count() as u64,
            1 => u64::from(preds.iter().all(|p| *p)),
            _ => u64::from(preds.iter().any(|p| *p)),
        };
        for t in threads.iter_mut() {
            t.set(&inst.args[0], v);
        }
    }
    for t in threads.iter_mut() {
        t.pc += 1;
        t.state = State::Ready;
    }
    if let Some(r) = cx.race.as_mut() {
        r.barrier();
    }
    Ok(())
}

/// Executes every warp collective whose member lanes have all arrived; true if any ran. Once
/// `stalled` (no thread can run), a member lane that is not there never will be: an error.
fn resolve_collectives(
    cx: &mut BlockCtx<'_>,
    threads: &mut [Thread],
    stalled: bool,
) -> Result<bool> {
    let kernel = cx.kernel;
    let mut any = false;
    for warp in threads.chunks_mut(32) {
        any |= resolve_activemask(cx, warp, stalled);
    }
    if any {
        return Ok(true);
    }
    for (w, warp) in threads.chunks_mut(32).enumerate() {
        for lead in 0..warp.len() {
            if warp[lead].state != State::Collective {
                continue;
            }
            let inst = &kernel.code[warp[lead].pc as usize];
            if inst.op == Op::Activemask {
                continue;
            }
            let mask = match inst.op.member_mask_arg() {
                Some(k) => warp[lead].get(&inst.args[k], cx) as u32,
                None => u32::MAX,
            } & lanes_present(warp.len());
            if !members_arrived(cx, warp, lead, mask, stalled)? {
                continue;
            }
            if inst.op.whole_warp() {
                whole_warp(cx, warp, inst.op, &inst.args)
                    .map_err(|(lane, f)| report(cx, &warp[lane], f))?;
                any = true;
                continue;
            }
            collective(cx, warp, mask, inst.op, &inst.args);
            if let (Op::WarpSync, Some(r)) = (inst.op, cx.race.as_mut()) {
                r.warp_sync(w);
            }
            any = true;
        }
    }
    Ok(any)
}

/// `activemask` returns the lanes that reach it together: once every live lane of the warp is
/// there, or, when the block is stalled, those that are. True if any resolved.
fn resolve_activemask(cx: &BlockCtx<'_>, warp: &mut [Thread], stalled: bool) -> bool {
    let kernel = cx.kernel;
    let mut any = false;
    for lead in 0..warp.len() {
        let t = &warp[lead];
        if t.state != State::Collective || kernel.code[t.pc as usize].op != Op::Activemask {
            continue;
        }
        let pc = t.pc;
        let here = |t: &Thread| t.state == State::Collective && t.pc == pc;
        if !stalled && !warp.iter().all(|t| here(t) || t.state == State::Exited) {
            continue;
        }
        let mask = (0..warp.len())
            .filter(|&l| here(&warp[l]))
            .fold(0u64, |m, l| m | 1 << l);
        let dst = &kernel.code[pc as usize].args[0];
        for t in warp.iter_mut().filter(|t| here(t)) {
            t.set(dst, mask);
            t.pc += 1;
            t.state = State::Ready;
        }
        any = true;
    }
    any
}

/// Whether every lane in `mask` waits at the collective of lane `lead`; an error when the mask
/// leaves out `lead`, or (once `stalled`) when a lane is not there.
fn members_arrived(
    cx: &BlockCtx<'_>,
    warp: &[Thread],
    lead: usize,
    mask: u32,
    stalled: bool,
) -> Result<bool> {
    let missing = |detail: String| {
        Err(report(
            cx,
            &warp[lead],
            Fault {
                kind: FaultKind::MissingLanes,
                detail,
            },
        ))
    };
    if mask & (1 << lead) == 0 {
        return missing(format!(
            "member mask {mask:#010x} does not include the lane itself ({lead})"
        ));
    }
    for l in (0..warp.len()).filter(|l| mask & (1 << l) != 0) {
        let t = &warp[l];
        let here = t.state == State::Collective && t.pc == warp[lead].pc;
        if !here && !stalled {
            return Ok(false);
        }
        if !here {
            return missing(format!(
                "member mask {mask:#010x}: lane {l}: {}",
                describe(cx, t)
            ));
        }
    }
    Ok(true)
}

fn lanes_present(n: usize) -> u32 {
    if n >= 32 {
        u32::MAX
    } else {
        (1u32 << n) - 1
    }
}

/// Runs an `.aligned` warp-wide instruction (`mma`, `ldmatrix`), which needs all 32 lanes,
/// and moves them past it.
fn whole_warp(
    cx: &mut BlockCtx<'_>,
    warp: &mut [Thread],
    op: Op,
    args: &[Arg],
) -> std::result::Result<(), (usize, Fault)> {
    if warp.len() < 32 {
        let detail = format!(
            "a warp of {} threads runs a warp-wide .aligned instruction that needs 32",
            warp.len()
        );
        let f = Fault {
            kind: FaultKind::MissingLanes,
            detail,
        };
        return Err((0, f));
    }
    match op {
        Op::Mma(k, bf16) => crate::mma::mma(cx, warp, args, usize::from(k), bf16),
        Op::Ldmatrix(n, trans, space) => {
            crate::ldmatrix::ldmatrix(cx, warp, args, usize::from(n), trans, space)?
        }
        _ => {}
    }
    for t in warp.iter_mut() {
        t.pc += 1;
        t.state = State::Ready;
    }
    Ok(())
}

/// Runs one collective for the lanes in `mask` and moves them past it.
fn collective(cx: &BlockCtx<'_>, warp: &mut [Thread], mask: u32, op: Op, args: &[Arg]) {
    let members: Vec<usize> = (0..warp.len()).filter(|l| mask & (1 << l) != 0).collect();
    match op {
        Op::Shfl(mode) => {
            let vals: Vec<u64> = (0..warp.len()).map(|l| warp[l].get(&args[2], cx)).collect();
            for &l in &members {
                let t = &warp[l];
                let (b, c) = (t.get(&args[3], cx) as u32, t.get(&args[4], cx) as u32);
                let (j, ok) = shfl_source(mode, l as u32, b, c);
                let src = if ok && mask & (1 << j) != 0 {
                    j as usize
                } else {
                    l
                };
                warp[l].set(&args[0], vals[src] & 0xffff_ffff);
                warp[l].set(&args[1], u64::from(ok));
            }
        }
        Op::Vote(mode) => {
            let preds: Vec<bool> = members
                .iter()
                .map(|&l| warp[l].get(&args[1], cx) != 0)
                .collect();
            let ballot = members
                .iter()
                .zip(&preds)
                .fold(0u64, |acc, (&l, &p)| acc | u64::from(p) << l);
            let v = match mode {
                VoteMode::All => u64::from(preds.iter().all(|p| *p)),
                VoteMode::Any => u64::from(preds.iter().any(|p| *p)),
                VoteMode::Uni => u64::from(preds.iter().all(|p| *p) || preds.iter().all(|p| !*p)),
                VoteMode::Ballot => ballot,
            };
            for &l in &members {
                warp[l].set(&args[0], v);
            }
        }
        Op::Redux(kind, ty) => {
            let vals: Vec<u64> = members.iter().map(|&l| warp[l].get(&args[1], cx)).collect();
            let v = vals[1..].iter().fold(vals[0], |acc, x| {
                crate::alu::int_op(kind, ty, false, acc, *x)
            });
            for &l in &members {
                warp[l].set(&args[0], v);
            }
        }
        Op::Match(all) => {
            let src = if all { 2 } else { 1 };
            let vals: Vec<u64> = members
                .iter()
                .map(|&l| warp[l].get(&args[src], cx) & 0xffff_ffff)
                .collect();
            let same = |v: u64| {
                members
                    .iter()
                    .zip(&vals)
                    .filter(|(_, x)| **x == v)
                    .fold(0u64, |m, (&l, _)| m | 1 << l)
            };
            let uniform = vals.iter().all(|v| *v == vals[0]);
            for (k, &l) in members.iter().enumerate() {
                if all {
                    warp[l].set(&args[0], if uniform { u64::from(mask) } else { 0 });
                    warp[l].set(&args[1], u64::from(uniform));
                } else {
                    warp[l].set(&args[0], same(vals[k]));
                }
            }
        }
        _ => {}
    }
    for &l in &members {
        warp[l].pc += 1;
        warp[l].state = State::Ready;
    }
}

/// PTX's shfl source lane and validity for lane `lane`, operand `b` and clamp/segment `c`.
fn shfl_source(mode: ShflMode, lane: u32, b: u32, c: u32) -> (u32, bool) {
    let bval = b & 0x1f;
    let cval = c & 0x1f;
    let seg = (c >> 8) & 0x1f;
    let max_lane = (lane & seg) | (cval & !seg);
    let min_lane = lane & seg;
    let (j, ok) = match mode {
        ShflMode::Up => {
            let j = lane as i32 - bval as i32;
            (j, j >= max_lane as i32)
        }
        ShflMode::Down => {
            let j = (lane + bval) as i32;
            (j, j <= max_lane as i32)
        }
        ShflMode::Bfly => {
            let j = (lane ^ bval) as i32;
            (j, j <= max_lane as i32)
        }
        ShflMode::Idx => {
            let j = (min_lane | (bval & !seg)) as i32;
            (j, j <= max_lane as i32)
        }
    };
    if ok {
        (j as u32, true)
    } else {
        (lane, false)
    }
}
