//! Exact recovery: `kiln train` killed (SIGKILL) at 10 random points and resumed from its run folder
//! each time ends with the same bits as a run never interrupted; corrupt checkpoints are named
//! and passed over; the saver keeps timm's top-k files.

mod common;

use common::launched::{batch_of, clock_seed, next};
use common::{assert_same_bits, dataset, kiln_ok_streams, summary_rows, train, train_args};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// 128 images in batches of 16 over 4 epochs: 32 updates, a recovery checkpoint every 3, a log
/// line every batch (the kill points are counted in them).
const RUN: [&str; 12] = [
    "--log-interval",
    "1",
    "--epochs",
    "4",
    "-b",
    "16",
    "--recovery-interval",
    "3",
    "--checkpoint-hist",
    "2",
    "--model-ema",
    "--model-ema-warmup",
];

fn has_checkpoint(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| {
        entries.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "safetensors")))
    })
}

/// Runs `kiln train` and SIGKILLs it a few milliseconds after it logs batch `target` (so kills
/// land in the next batch, in a recovery write or in validation); returns whether it finished
/// first.
fn run_until(args: &[String], target: u64, jitter_ms: u64) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        if batch_of(&line.unwrap(), 8).is_some_and(|b| b >= target) {
            std::thread::sleep(Duration::from_millis(jitter_ms));
            child.kill().unwrap();
            child.wait().unwrap();
            return false;
        }
    }
    assert!(child.wait().unwrap().success(), "kiln {args:?} failed");
    true
}

#[test]
fn killed_at_random_points_resumes_to_identical_bits() {
    let data = dataset("recovery", 128, 32);
    let out = data.join("runs");
    train(&data, &out, "straight", &RUN);
    let killed = out.join("killed");
    let mut seed = clock_seed();
    println!("kill-point seed {seed}");
    let mut targets: Vec<u64> = (0..10).map(|_| next(&mut seed) % 32).collect();
    targets.sort();
    let mut kills = 0;
    for &target in &targets {
        let mut args = train_args(&data, &out, "killed", &RUN);
        if has_checkpoint(&killed) {
            args.extend(["--resume".to_string(), killed.display().to_string()]);
        }
        let jitter = next(&mut seed) % 400;
        if run_until(&args, target, jitter) {
            // A kill's jitter can outlast the run's last batches (an idle machine trains 5
            // batches in 400 ms): the run already finished, and so can no later kill point.
            println!("finished before batch {target}; no later kill points");
            break;
        }
        kills += 1;
        println!("killed {jitter} ms after batch {target}");
    }
    assert!(kills > 0, "no kill landed before the run finished");
    let mut args = train_args(&data, &out, "killed", &RUN);
    args.extend(["--resume".to_string(), killed.display().to_string()]);
    assert!(run_until(&args, u64::MAX, 0));
    assert_same_bits(
        &out.join("straight/last.safetensors"),
        &killed.join("last.safetensors"),
        "after recovery",
    );
    assert_eq!(summary_rows(&killed).len(), 4, "one summary row per epoch");
}

/// timm's CheckpointSaver over a run's metrics: which epochs keep a numbered file.
fn timm_kept(metrics: &[f64], k: usize) -> Vec<usize> {
    let mut kept: Vec<(f64, usize)> = Vec::new();
    for (epoch, &m) in metrics.iter().enumerate() {
        if kept.len() < k || kept.last().is_some_and(|w| m > w.0) {
            kept.push((m, epoch));
            kept.sort_by(|a, b| b.0.total_cmp(&a.0));
            kept.truncate(k);
        }
    }
    let mut epochs: Vec<usize> = kept.iter().map(|k| k.1).collect();
    epochs.sort();
    epochs
}

#[test]
fn saver_keeps_timm_top_k_and_corrupt_checkpoints_are_named() {
    let data = dataset("saver", 64, 32);
    let out = data.join("runs");
    let run = out.join("run");
    train(
        &data,
        &out,
        "run",
        &["--epochs", "4", "--checkpoint-hist", "2"],
    );
    let top1: Vec<f64> = summary_rows(&run).iter().map(|r| r[3]).collect();
    let mut numbered: Vec<usize> = std::fs::read_dir(&run)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_prefix("checkpoint-")?
                .strip_suffix(".safetensors")?
                .parse()
                .ok()
        })
        .collect();
    numbered.sort();
    assert_eq!(numbered, timm_kept(&top1, 2), "top-1 by epoch: {top1:?}");

    // A truncated checkpoint (a write cut short) is named, and the resume takes a whole one.
    let last = std::fs::read(run.join("last.safetensors")).unwrap();
    let corrupt = run.join("recovery-9-99.safetensors");
    std::fs::write(&corrupt, &last[..last.len() / 2]).unwrap();
    let mut args = train_args(&data, &out, "run", &["--epochs", "5", "--resume"]);
    args.push(run.to_str().unwrap().to_string());
    let (stdout, stderr) = kiln_ok_streams(&args);
    assert!(stderr.contains("recovery-9-99.safetensors"), "{stderr}");
    assert!(stdout.contains("last.safetensors (epoch 4"), "{stdout}");
    assert_eq!(summary_rows(&run).len(), 5);

    let direct = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(train_args(
            &data,
            &out,
            "run",
            &["--epochs", "6", "--resume"],
        ))
        .arg(&corrupt)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&direct.stderr);
    assert!(!direct.status.success());
    assert!(stderr.contains("recovery-9-99.safetensors"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
