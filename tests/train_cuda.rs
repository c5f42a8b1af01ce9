//! `kiln train --device cuda --amp --channels-last` end to end (on kiln-cuda-emu in CI): the
//! uint8 batches go through the copy stream and are normalized on the device, the model, the
//! optimizer state and the f16 loss scaler live there, and the run folder is written as on the CPU;
//! a run killed after its first update's recovery checkpoint resumes to the same bits.

mod common;

use common::{write_bands, Bands};
use std::path::Path;
use std::process::Command;

/// 8×8 images whose class k (of 4) is a bright column pair at 2k..2k+2 over noise.
const TINY: Bands = Bands {
    side: 8,
    classes: 4,
    stride: 2,
    width: 2,
};

/// `kiln train --device cuda` on the 8×8 data in `dir`, into `out/<exp>`, plus `extra`.
fn cuda_train(dir: &Path, out: &Path, exp: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.args([
        "train",
        dir.to_str().unwrap(),
        "--model",
        "resnet10t",
        "--device",
        "cuda",
    ])
    .args([
        "--amp",
        "--amp-dtype",
        "float16",
        "--channels-last",
        "-b",
        "4",
    ])
    .args([
        "--epochs",
        "1",
        "--lr",
        "0.05",
        "--warmup-epochs",
        "0",
        "--hflip",
        "0",
    ])
    .args(["-j", "1", "--recovery-interval", "1", "--log-interval", "1"])
    .args(["--output", out.to_str().unwrap(), "--experiment", exp])
    .args(extra);
    cmd
}

fn run_ok(mut cmd: Command) -> String {
    let o = cmd.output().expect("run kiln");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "kiln train --device cuda failed:\n{log}"
    );
    log
}

#[test]
fn trains_on_cuda_with_f16_amp_and_channels_last_and_recovers_exactly() {
    if let Err(e) = kiln::engine::cuda::device(0) {
        eprintln!("skipped: {e}");
        return;
    }
    let dir = common::Scratch::new("cuda-e2e");
    // Two steps of training and one of validation. resnet10t (4.9M parameters: BatchNorm, the
    // residual blocks, max-pooling, the deep stem) rather than resnet18's 11.7M: the plumbing
    // under test (copy stream, device normalization, scaler state, recovery) is the same, and
    // the test takes the emulator 55 s instead of about 6 minutes (a loaded 2-core machine).
    write_bands(&dir, "train", 8, 7, TINY);
    write_bands(&dir, "t10k", 8, 7, TINY);
    let out = dir.join("out");
    let log = run_ok(cuda_train(&dir, &out, "cuda", &[]));
    assert!(log.contains("Epoch 0: train_loss"), "{log}");
    let summary = std::fs::read_to_string(out.join("cuda/summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 2, "{summary}");
    for line in summary.lines().skip(1) {
        let loss: f64 = line.split(',').nth(1).unwrap().parse().unwrap();
        assert!(loss.is_finite() && loss > 0.0, "{line}");
    }

    // Killed (SIGKILL) once the first update's recovery checkpoint is written, then resumed.
    let killed = out.join("killed");
    let mut child = cuda_train(&dir, &out, "killed", &[])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let recovery = killed.join("recovery-0-1.safetensors");
    while !recovery.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before its recovery checkpoint"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let log = run_ok(cuda_train(
        &dir,
        &out,
        "killed",
        &["--resume", killed.to_str().unwrap()],
    ));
    assert!(
        log.contains("recovery-0-1.safetensors (epoch 0, batch 1, update 1)"),
        "{log}"
    );
    common::assert_same_bits(
        &out.join("cuda/last.safetensors"),
        &killed.join("last.safetensors"),
        "after recovery on CUDA",
    );
}
