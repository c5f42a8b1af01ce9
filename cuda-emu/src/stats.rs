//! Per-launch counters, written as JSON lines to the file named by `KILN_EMU_STATS`.

use std::io::Write;

/// What one launch (or one block of it) did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// Instructions issued, per thread, including those skipped by a false guard.
    pub instructions: u64,
    /// Bytes read from global memory.
    pub global_load: u64,
    /// Bytes written to global memory.
    pub global_store: u64,
    /// Bytes read from shared memory.
    pub shared_load: u64,
    /// Bytes written to shared memory.
    pub shared_store: u64,
    /// CPU time spent running blocks, in nanoseconds (summed over the cores).
    pub cpu_ns: u64,
}

impl Counters {
    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &Counters) {
        self.instructions += o.instructions;
        self.global_load += o.global_load;
        self.global_store += o.global_store;
        self.shared_load += o.shared_load;
        self.shared_store += o.shared_store;
        self.cpu_ns += o.cpu_ns;
    }

    /// One JSON object describing the launch of `kernel`.
    pub fn json(&self, kernel: &str, grid: [u32; 3], block: [u32; 3], seconds: f64) -> String {
        format!(
            "{{\"kernel\":\"{kernel}\",\"grid\":[{},{},{}],\"block\":[{},{},{}],\"instructions\":{},\
             \"global_load_bytes\":{},\"global_store_bytes\":{},\"shared_load_bytes\":{},\
             \"shared_store_bytes\":{},\"seconds\":{seconds:.6},\"cpu_seconds\":{:.6}}}",
            grid[0], grid[1], grid[2], block[0], block[1], block[2], self.instructions,
            self.global_load, self.global_store, self.shared_load, self.shared_store,
            self.cpu_ns as f64 * 1e-9
        )
    }
}

/// Appends `line` to the file named by `KILN_EMU_STATS`, if set.
pub fn record(line: &str) {
    let Some(path) = std::env::var_os("KILN_EMU_STATS") else {
        return;
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path);
    if let Err(e) = file.and_then(|mut f| writeln!(f, "{line}")) {
        eprintln!(
            "kiln-cuda-emu: cannot write stats to {}: {e}",
            path.to_string_lossy()
        );
    }
}

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
}

/// CPU time of the calling thread in nanoseconds (Linux `CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_ns() -> u64 {
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut t = Timespec { sec: 0, nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) };
    if rc != 0 {
        return 0;
    }
    t.sec as u64 * 1_000_000_000 + t.nsec as u64
}
