//! `kiln train --prune-ratio`: channels removed while training, in steps with fine-tuning
//! between. On the embedded Fashion-MNIST subset the pruned run keeps top-1 within 2 points of
//! the unpruned one at half the MACs; a run resumed between its steps ends bit-identical to
//! the uninterrupted one (EMA included); bad prune flags are refused by name.

mod common;

use common::{assert_same_bits, dataset, summary_rows, train, train_fails};
use std::path::Path;
use std::process::Command;

/// `kiln train` on the embedded data (configs/fashion-mnist.yaml: resnet18, 1×28×28) for
/// `epochs`, into `out/exp`, plus `extra`; its stdout.
fn train_embedded(out: &Path, exp: &str, epochs: &str, extra: &[&str]) -> String {
    let out_dir = out.to_str().unwrap();
    let mut args = vec!["train", "--epochs", epochs, "--output", out_dir];
    args.extend(["--experiment", exp]);
    args.extend(extra);
    let cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    common::kiln_ok_in(cmd, &args)
}

/// The (before, after) MACs of every "Prune step" line.
fn prune_steps(stdout: &str) -> Vec<(f64, f64)> {
    stdout
        .lines()
        .filter(|l| l.starts_with("Prune step"))
        .map(|l| {
            let macs = l.split("MACs ").nth(1).unwrap();
            let (a, rest) = macs.split_once(" -> ").unwrap();
            let b = rest.split_whitespace().next().unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect()
}

#[test]
fn two_steps_halve_the_macs_and_keep_top1_within_two_points_of_the_unpruned_run() {
    let out = common::Scratch::new("prune-embedded");
    train_embedded(&out, "unpruned", "2", &[]);
    let flags = ["--prune-ratio", "0.5", "--prune-steps", "2"];
    let stdout = train_embedded(&out, "pruned", "2", &flags);
    let steps = prune_steps(&stdout);
    assert_eq!(steps.len(), 2, "one line per step:\n{stdout}");
    let unpruned = steps[0].0;
    let kept: Vec<f64> = steps.iter().map(|s| s.1 / unpruned).collect();
    // Each step prunes to its share of the ratio (1 − 0.25, then 1 − 0.5) of the unpruned MACs;
    // the bisection stops at the first channel count at or under it.
    for (k, goal) in kept.iter().zip([0.75, 0.5]) {
        assert!(*k <= goal && *k > goal - 0.02, "kept {kept:?} of the MACs");
    }
    assert_eq!(steps[1].0, steps[0].1, "step 2 starts from step 1's model");
    let top1 = |exp: &str| summary_rows(&out.join(exp)).last().unwrap()[3];
    let (full, pruned) = (top1("unpruned"), top1("pruned"));
    assert!(
        pruned >= full - 2.0,
        "pruned top-1 {pruned} vs unpruned {full}"
    );
    let header = std::fs::read(out.join("pruned/last.safetensors")).unwrap();
    assert!(
        String::from_utf8_lossy(&header[..8192.min(header.len())]).contains("kiln.pruned_shapes"),
        "the checkpoints of a pruning run record its shapes"
    );
}

#[test]
fn a_run_resumed_between_its_prune_steps_ends_bit_identical() {
    let data = dataset("prune-resume", 64, 32);
    let out = data.join("runs");
    fn with<'a>(epochs: &'a str, more: &[&'a str]) -> Vec<&'a str> {
        let mut extra = vec!["--prune-ratio", "0.5", "--prune-steps", "2", "--model-ema"];
        extra.extend(["--epochs", epochs]);
        extra.extend(more);
        extra
    }
    let straight = train(&data, &out, "straight", &with("3", &[]));
    assert_eq!(prune_steps(&straight).len(), 2, "{straight}");
    let first = train(&data, &out, "split", &with("1", &[]));
    assert_eq!(prune_steps(&first).len(), 1, "{first}");
    let last = out.join("split/last.safetensors");
    let resumed = train(
        &data,
        &out,
        "split",
        &with("3", &["--resume", last.to_str().unwrap()]),
    );
    assert!(resumed.contains("Resumed from"), "{resumed}");
    let steps = prune_steps(&resumed);
    assert_eq!(
        steps.len(),
        1,
        "the resumed run takes step 2 only:\n{resumed}"
    );
    assert_eq!(steps, prune_steps(&straight)[1..], "step 2 as in one run");
    assert_same_bits(
        &out.join("straight/last.safetensors"),
        &last,
        "a pruning run resumed between its steps",
    );
}

#[test]
fn bad_prune_flags_are_refused_by_name() {
    let data = dataset("prune-flags", 32, 16);
    let out = data.join("runs");
    for (extra, needle) in [
        (&["--prune-ratio", "1.5"][..], "--prune-ratio"),
        (
            &["--prune-ratio", "0.5", "--prune-criterion", "taylor"],
            "--prune-criterion",
        ),
        (
            &["--prune-ratio", "0.5", "--prune-criterion", "l3"],
            "--prune-criterion",
        ),
        (
            &["--prune-ratio", "0.5", "--prune-target", "flops"],
            "--prune-target",
        ),
        (
            &["--prune-ratio", "0.5", "--prune-steps", "0"],
            "--prune-steps",
        ),
        (
            &["--prune-ratio", "0.5", "--prune-round-to", "0"],
            "--prune-round-to",
        ),
        (&["--prune-steps", "2"], "--prune-ratio"),
        (&["--prune-global"], "--prune-global"),
    ] {
        let stderr = train_fails(&data, &out, "bad", extra);
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
    }
}
