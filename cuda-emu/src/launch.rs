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
            race: race.then(|| RaceMap::new(shared_len)),
            stats: Counters::default(),
        };
        let r = block::run(&mut cx);
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
