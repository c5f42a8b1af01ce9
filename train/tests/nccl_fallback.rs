//! With the `nccl` feature on and devices NCCL cannot serve (kiln's CUDA emulator, or no
//! libnccl.so), the device threads keep their own bucket path (peer copies between the
//! emulator's devices), and the reason is logged once however often a communicator is made.
//! Asks the emulator for 2 devices (`KILN_EMU_DEVICES=2`); reports "skipped" without them.
#![cfg(feature = "nccl")]

use kiln_engine::{cuda, Device};
use kiln_train::dist::{nccl, on_device_threads, Communicator, ProcessGroup, DEFAULT_TIMEOUT};
use log::{Level, Log, Metadata, Record};
use std::io::Write;
use std::sync::Mutex;

/// Every warning logged, as text.
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Recorder;

impl Log for Recorder {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= Level::Warn
    }

    fn log(&self, r: &Record) {
        if self.enabled(r.metadata()) {
            WARNINGS.lock().unwrap().push(r.args().to_string());
        }
    }

    fn flush(&self) {}
}

#[test]
fn devices_nccl_cannot_serve_fall_back_and_say_why_once() {
    if std::env::var("KILN_EMU_DEVICES").is_err() {
        std::env::set_var("KILN_EMU_DEVICES", "2");
    }
    let devices = match cuda::device(0).and_then(|d0| Ok((d0, cuda::device(1)?))) {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "skipped: {e}");
            return;
        }
    };
    log::set_logger(&Recorder).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let reason = nccl::unavailable(&[devices.0.clone(), devices.1.clone()]);
    let Some(reason) = reason else {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: NCCL serves {:?} and {:?} (a GPU machine: scripts/gpu-check.sh covers it)",
            devices.0,
            devices.1
        );
        return;
    };
    assert!(
        reason.contains("emulator") || reason.contains("libnccl.so"),
        "{reason}"
    );
    for _ in 0..3 {
        let paths =
            on_device_threads(&[0, 1], DEFAULT_TIMEOUT, |_, comm| Ok(comm.path_name())).unwrap();
        assert_eq!(paths, ["device peer copies"; 2]);
    }
    // One rank needs no communicator at all: no NCCL, nothing more logged.
    let single = Communicator::for_group_on(&ProcessGroup::single(), Device::Cuda(0)).unwrap();
    assert_eq!(single.path_name(), "none");
    let warnings = WARNINGS.lock().unwrap().clone();
    let about_nccl: Vec<&String> = warnings.iter().filter(|w| w.contains("NCCL")).collect();
    assert_eq!(about_nccl.len(), 1, "logged once: {warnings:?}");
    assert!(
        about_nccl[0].contains(&reason) && about_nccl[0].contains("device peer copies"),
        "{}",
        about_nccl[0]
    );
    assert_eq!(nccl::fallback_reason(), Some(reason.as_str()));
}
