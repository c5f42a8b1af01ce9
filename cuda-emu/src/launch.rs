//! Runs a grid: blocks spread over the cores, counters summed and recorded.

use std::sync::Mutex;
use std::time::Instant;

use rayon::prelude::*;

use crate::block;
use crate::error::Result;
use crate::memory::GlobalView;
use crate::program::Kernel;
use crate::racecheck::RaceMap;
use crate::stats::{self, Counters};
use crate::thread::BlockCtx;

/// Grid and block shape and dynamic shared memory of one launch.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Blocks per dimension.
    pub grid: [u32; 3],
    /// Threads per dimension.
    pub block: [u32; 3],
    /// Dynamic shared memory bytes.
    pub dyn_smem: u32,
}

/// Whether `KILN_EMU_RACECHECK=1` asks for shared-memory race detection.
fn racecheck() -> bool {
    std::env::var("KILN_EMU_RACECHECK").is_ok_and(|v| v == "1")
}

/// Runs `kernel` over the grid; stops at the first fault.
pub fn launch(
    kernel: &Kernel,
    cfg: Config,
    params: &[u8],
    global: &GlobalView,
) -> Result<Counters> {
    let start = Instant::now();
    let [gx, gy, gz] = cfg.grid;
    let total = u64::from(gx) * u64::from(gy) * u64::from(gz);
    let sum = Mutex::new(Counters::default());
    let race = racecheck();
    let shared_len = (kernel.shared_static + cfg.dyn_smem) as usize;
    (0..total).into_par_iter().try_for_each(|b| {
        let ctaid = [
            (b % u64::from(gx)) as u32,
            (b / u64::from(gx) % u64::from(gy)) as u32,
            (b / (u64::from(gx) * u64::from(gy))) as u32,
        ];
        let mut cx = BlockCtx {
            kernel,
            params,
            global,
            ctaid,
            nctaid: cfg.grid,
            ntid: cfg.block,
            dyn_smem: cfg.dyn_smem,
            shared: vec![0; shared_len],
            race: race.then(|| RaceMap::new(shared_len, cfg.block.iter().product())),
            stats: Counters::default(),
        };
        let cpu = stats::thread_cpu_ns();
        let r = block::run(&mut cx);
        cx.stats.cpu_ns += stats::thread_cpu_ns().saturating_sub(cpu);
        sum.lock().expect("counters lock").add(&cx.stats);
        r
    })?;
    let counters = *sum.lock().expect("counters lock");
    stats::record(&counters.json(
        &kernel.name,
        cfg.grid,
        cfg.block,
        start.elapsed().as_secs_f64(),
    ));
    Ok(counters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::kernels;
    use crate::memory::DeviceMemory;
    use crate::ptx::parse::parse;

    /// Each block reverses its 64 floats through shared memory and adds a module constant.
    const PTX: &str = r#"
.version 9.0
.target sm_90
.address_size 64
.const .align 4 .b8 bias[4] = {0, 0, 128, 63};
.visible .entry rev(.param .u64 rev_param_0)
{
	.reg .pred %p<2>;
	.reg .f32 %f<4>;
	.reg .b32 %r<8>;
	.reg .b64 %rd<8>;
	.shared .align 4 .b8 tile[256];
	ld.param.u64 %rd1, [rev_param_0];
	mov.u32 %r1, %tid.x;
	mov.u32 %r2, %ctaid.x;
	shl.b32 %r3, %r2, 6;
	add.s32 %r4, %r3, %r1;
	mul.wide.u32 %rd2, %r4, 4;
	add.s64 %rd3, %rd1, %rd2;
	ld.global.f32 %f1, [%rd3];
	mul.wide.u32 %rd4, %r1, 4;
	mov.u64 %rd5, tile;
	add.s64 %rd6, %rd5, %rd4;
	st.shared.f32 [%rd6], %f1;
	bar.sync 0;
	sub.s32 %r5, 63, %r1;
	mul.wide.u32 %rd4, %r5, 4;
	add.s64 %rd6, %rd5, %rd4;
	ld.shared.f32 %f2, [%rd6];
	ld.const.f32 %f3, [bias];
	add.f32 %f2, %f2, %f3;
	st.global.f32 [%rd3], %f2;
	ret;
}
"#;

    fn run(blocks: u32, buffer_floats: usize) -> (Result<Counters>, Vec<f32>) {
        let mut mem = DeviceMemory::default();
        let m = parse(PTX).unwrap();
        let mut place = |v: &crate::ptx::ast::VarDecl| {
            let a = mem.alloc(4);
            let p = mem.host_ptr(a, 4).unwrap();
            // SAFETY: 4 bytes were just allocated at p.
            unsafe { p.cast::<f32>().write(1.0) };
            assert_eq!(v.name, "bias");
            Ok(a)
        };
        let ks = kernels(&m, &mut place).unwrap();
        let buf = mem.alloc(buffer_floats * 4);
        let p = mem.host_ptr(buf, buffer_floats * 4).unwrap().cast::<f32>();
        for i in 0..buffer_floats {
            // SAFETY: i < buffer_floats, inside the allocation.
            unsafe { p.add(i).write(i as f32) };
        }
        let cfg = Config {
            grid: [blocks, 1, 1],
            block: [64, 1, 1],
            dyn_smem: 0,
        };
        let r = launch(&ks[0], cfg, &buf.to_le_bytes(), &mem.view());
        // SAFETY: as above.
        let out = (0..buffer_floats)
            .map(|i| unsafe { p.add(i).read() })
            .collect();
        (r, out)
    }

    #[test]
    fn interprets_a_handwritten_kernel() {
        let (r, out) = run(3, 192);
        let c = r.unwrap();
        for b in 0..3 {
            for t in 0..64 {
                assert_eq!(out[b * 64 + t], (b * 64 + 63 - t) as f32 + 1.0);
            }
        }
        assert_eq!(
            (c.global_load, c.global_store, c.shared_store),
            (192 * 4 + 192 * 4, 192 * 4, 192 * 4)
        );
    }

    #[test]
    fn out_of_bounds_faults_name_the_thread() {
        let (r, _) = run(3, 150);
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("out-of-bounds access in kernel `rev` block (2,0,0) thread (22,0,0)"),
            "{e}"
        );
    }
}
