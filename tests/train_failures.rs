//! Runs that go wrong end cleanly and lose nothing: a non-finite loss stops with the last good
//! state saved (or is skipped and counted under `--nan-policy skip`); a checkpoint that cannot be
//! written (a full disk, injected through /dev/full) stops the run naming the file and the cause,
//! with every file written before intact and the run resumable.

mod common;

use common::{dataset, summary_rows, train, train_args};
use kiln_train::checkpoint::Checkpoint;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An lr that overflows the weights in the first update: the second batch's loss is not finite.
const DIVERGE: [&str; 6] = ["--lr", "1e38", "--epochs", "2", "--sched", "none"];

fn kiln(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The recovery checkpoint a non-finite-loss error names.
fn saved_path(err: &str) -> PathBuf {
    let rest = err
        .split("the last good state is saved as ")
        .nth(1)
        .unwrap_or_else(|| panic!("no saved state named in: {err}"));
    PathBuf::from(rest.split(": lower --lr").next().unwrap())
}

fn params(ck: &Checkpoint) -> Vec<(String, Vec<f32>)> {
    ck.model
        .iter()
        .filter(|(name, _)| !name.contains("running_") && !name.contains("num_batches"))
        .map(|(name, t)| (name.clone(), t.to_vec_f32().unwrap()))
        .collect()
}

#[test]
fn a_non_finite_loss_stops_with_the_last_good_state_saved_and_resumes_exactly() {
    let data = dataset("nan-stop", 64, 32);
    let out = data.join("out");
    let args = train_args(&data, &out, "stop", &DIVERGE);
    let first = kiln(&args);
    assert!(!first.status.success(), "a diverging run must fail");
    let err = stderr(&first);
    assert!(err.contains("error: loss is"), "{err}");
    assert!(err.contains("at epoch 0, batch 1 (update 2)"), "{err}");
    assert!(err.contains("the last finite loss was"), "{err}");
    assert!(err.contains("--nan-policy skip"), "{err}");
    let saved = saved_path(&err);
    assert_eq!(saved, out.join("stop/recovery-0-1.safetensors"));
    let ck = Checkpoint::load(&saved).unwrap();
    let p = ck.position();
    assert_eq!((p.epoch, p.batch, p.num_updates), (0, 1, 1));
    assert!(params(&ck)
        .iter()
        .all(|(_, v)| v.iter().all(|x| x.is_finite())));

    // Resumed with the same flags, the run meets the same loss at the same batch: the saved state
    // is exactly the one before it.
    let mut again = args.clone();
    again.extend(["--resume".to_string(), saved.display().to_string()]);
    let second = kiln(&again);
    assert!(!second.status.success());
    let err2 = stderr(&second);
    assert!(err2.contains("at epoch 0, batch 1 (update 2)"), "{err2}");
    assert_eq!(saved_path(&err2), saved);
    cleanup(&data);
}

#[test]
fn nan_policy_skip_leaves_the_updates_out_and_counts_them() {
    let data = dataset("nan-skip", 64, 32);
    let out = data.join("out");
    let stopped = kiln(&train_args(&data, &out, "stop", &DIVERGE));
    let good = Checkpoint::load(&saved_path(&stderr(&stopped))).unwrap();

    let mut flags = DIVERGE.to_vec();
    flags.extend(["--nan-policy", "skip"]);
    let log = train(&data, &out, "skip", &flags);
    assert!(
        log.contains("1 updates skipped for a non-finite loss"),
        "epoch 0 skips its second update:\n{log}"
    );
    assert!(
        log.contains("2 updates skipped for a non-finite loss"),
        "epoch 1 skips both:\n{log}"
    );
    let last = Checkpoint::load(&out.join("skip/last.safetensors")).unwrap();
    assert_eq!(
        last.position().num_updates,
        4,
        "skipped updates still count"
    );
    assert_eq!(
        params(&last),
        params(&good),
        "the weights are those of the last finite update"
    );

    let bad = kiln(&train_args(&data, &out, "bad", &["--nan-policy", "maybe"]));
    assert!(stderr(&bad).contains("invalid value 'maybe' for '--nan-policy"));
    cleanup(&data);
}

#[test]
fn a_full_disk_stops_the_run_naming_the_file_and_keeps_what_was_written() {
    let data = dataset("full-disk", 64, 32);
    let out = data.join("out");
    let run = out.join("full");
    std::fs::create_dir_all(&run).unwrap();
    // The epoch-1 numbered checkpoint's temporary file is a link to /dev/full: ENOSPC on write.
    let trap = run.join("checkpoint-1.safetensors.tmp");
    std::os::unix::fs::symlink("/dev/full", &trap).unwrap();
    let args = train_args(&data, &out, "full", &["--epochs", "3"]);
    let o = kiln(&args);
    assert!(!o.status.success(), "the run must stop");
    let err = stderr(&o);
    assert!(err.contains("checkpoint-1.safetensors.tmp"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(!trap.exists(), "the partial temporary file is removed");
    assert!(!run.join("checkpoint-1.safetensors").exists());
    assert_eq!(summary_rows(&run).len(), 2, "epoch 2 never started");
    for (file, epoch) in [("checkpoint-0", 0), ("last", 1)] {
        let ck = Checkpoint::load(&run.join(format!("{file}.safetensors"))).unwrap();
        assert_eq!(ck.meta.epoch, epoch, "{file}");
    }

    // With room again the run resumes from its folder and finishes.
    let mut resume = args.clone();
    resume.extend(["--resume".to_string(), run.display().to_string()]);
    let o = kiln(&resume);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(summary_rows(&run).len(), 3);
    assert!(run.join("checkpoint-2.safetensors").exists());
    cleanup(&data);
}

fn cleanup(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
