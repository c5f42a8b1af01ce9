//! Absurd values of train.py's numeric flags end with an error line naming the flag and exit
//! status 2 (argparse's usage error), never a panic, a signal or a run: non-numeric, NaN and
//! infinite values, negative and fractional counts, zero where a count must be positive,
//! probabilities and rates outside their range, and sizes whose memory cannot exist.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// train.py's integer flags (timm 1.0.31, read from its argparse parser) and how many values each
/// takes.
const INT_FLAGS: &[(&str, usize)] = &[
    ("--train-num-samples", 1),
    ("--val-num-samples", 1),
    ("--num-classes", 1),
    ("--img-size", 1),
    ("--in-chans", 1),
    ("--input-size", 3),
    ("--batch-size", 1),
    ("--validation-batch-size", 1),
    ("--grad-accum-steps", 1),
    ("--local_rank", 1),
    ("--lr-base-size", 1),
    ("--lr-cycle-limit", 1),
    ("--epochs", 1),
    ("--start-epoch", 1),
    ("--decay-milestones", 1),
    ("--warmup-epochs", 1),
    ("--cooldown-epochs", 1),
    ("--patience-epochs", 1),
    ("--aug-splits", 1),
    ("--recount", 1),
    ("--mixup-off-epoch", 1),
    ("--seed", 1),
    ("--log-interval", 1),
    ("--val-interval", 1),
    ("--recovery-interval", 1),
    ("--checkpoint-hist", 1),
    ("--workers", 1),
    ("--tta", 1),
    ("--train-img-sizes", 1),
    ("--train-batch-sizes", 1),
    ("--train-batches-per-epoch", 1),
    ("--naflex-train-seq-lens", 1),
    ("--naflex-max-seq-len", 1),
    ("--naflex-patch-sizes", 1),
    ("--kd-student-feature-dim", 1),
    ("--kd-teacher-feature-dim", 1),
];

/// train.py's float flags (timm 1.0.31).
const FLOAT_FLAGS: &[&str] = &[
    "--crop-pct",
    "--mean",
    "--std",
    "--head-init-scale",
    "--head-init-bias",
    "--opt-eps",
    "--opt-betas",
    "--momentum",
    "--weight-decay",
    "--clip-grad",
    "--layer-decay",
    "--layer-decay-min-scale",
    "--layer-decay-no-opt-scale",
    "--lr",
    "--lr-base",
    "--lr-noise",
    "--lr-noise-pct",
    "--lr-noise-std",
    "--lr-cycle-mul",
    "--lr-cycle-decay",
    "--lr-k-decay",
    "--warmup-lr",
    "--min-lr",
    "--epoch-repeats",
    "--decay-epochs",
    "--decay-rate",
    "--scale",
    "--ratio",
    "--hflip",
    "--vflip",
    "--color-jitter",
    "--color-jitter-prob",
    "--grayscale-prob",
    "--gaussian-blur-prob",
    "--aug-repeats",
    "--bce-target-thresh",
    "--bce-pos-weight",
    "--reprob",
    "--mixup",
    "--cutmix",
    "--cutmix-minmax",
    "--mixup-prob",
    "--mixup-switch-prob",
    "--smoothing",
    "--drop",
    "--drop-connect",
    "--drop-path",
    "--drop-block",
    "--bn-momentum",
    "--bn-eps",
    "--model-ema-decay",
    "--train-size-probs",
    "--train-size-schedule-spread",
    "--train-size-random-mix",
    "--naflex-patch-size-probs",
    "--distill-loss-weight",
    "--task-loss-weight",
    "--kd-temperature",
];

/// Values no integer flag takes.
const NOT_AN_INT: [&str; 3] = ["x", "1.5", "-1"];

/// Values no float flag takes.
const NOT_A_FLOAT: [&str; 4] = ["x", "nan", "inf", "-inf"];

/// Values that parse but mean nothing (or cannot fit in memory), with the flag the error names.
const OUT_OF_RANGE: &[(&[&str], &str)] = &[
    (&["--num-classes", "0"], "--num-classes"),
    (&["--num-classes", "1000000000"], "--num-classes"),
    (&["--img-size", "0"], "--img-size"),
    (&["--img-size", "100000"], "--img-size"),
    (&["--input-size", "3", "0", "0"], "--img-size"),
    (&["--input-size", "0", "28", "28"], "--in-chans"),
    (&["--input-size", "1", "100000", "100000"], "--img-size"),
    (&["--in-chans", "0"], "--in-chans"),
    (&["--in-chans", "99999"], "--in-chans"),
    (&["--batch-size", "0"], "--batch-size"),
    (&["--batch-size", "100000000"], "--batch-size"),
    (&["--validation-batch-size", "0"], "--validation-batch-size"),
    (&["--validation-batch-size", "100000000"], "--batch-size"),
    (
        &["--batch-size", "1000", "--img-size", "3000"],
        "--batch-size",
    ),
    (&["--grad-accum-steps", "0"], "--grad-accum-steps"),
    (&["--epochs", "0"], "--epochs"),
    (&["--log-interval", "0"], "--log-interval"),
    (&["--val-interval", "0"], "--val-interval"),
    (&["--checkpoint-hist", "0"], "--checkpoint-hist"),
    (&["--workers", "100000"], "--workers"),
    (&["--train-img-sizes", "0"], "--train-img-sizes"),
    (&["--train-img-sizes", "100000"], "--img-size"),
    (&["--aug-splits", "1"], "--aug-splits"),
    (&["--lr", "-1"], "--lr"),
    (&["--min-lr", "-1"], "--min-lr"),
    (&["--warmup-lr", "-1"], "--warmup-lr"),
    (&["--lr-cycle-mul", "0"], "--lr-cycle-mul"),
    (&["--lr-k-decay", "0"], "--lr-k-decay"),
    (
        &["--sched", "step", "--decay-epochs", "0"],
        "--decay-epochs",
    ),
    (&["--momentum", "-5"], "--momentum"),
    (&["--weight-decay", "-1"], "--weight-decay"),
    (&["--opt-eps", "-1"], "--opt-eps"),
    (&["--opt-betas", "0.9", "1.5"], "--opt-betas"),
    (&["--clip-grad", "-1"], "--clip-grad"),
    (&["--layer-decay", "-1"], "--layer-decay"),
    (&["--smoothing", "1.5"], "--smoothing"),
    (&["--drop", "2"], "--drop"),
    (&["--drop-path", "5"], "--drop-path"),
    (&["--drop-block", "-0.1"], "--drop-block"),
    (&["--hflip", "2"], "--hflip"),
    (&["--vflip", "-1"], "--vflip"),
    (&["--reprob", "-1"], "--reprob"),
    (&["--mixup-prob", "2"], "--mixup-prob"),
    (&["--color-jitter", "-1"], "--color-jitter"),
    (&["--grayscale-prob", "3"], "--grayscale-prob"),
    (&["--scale", "-1", "1"], "--scale"),
    (&["--ratio", "-1", "1"], "--ratio"),
    (&["--ratio", "0", "0"], "--ratio"),
    (&["--std", "0"], "--std"),
    (&["--crop-pct", "-1"], "--crop-pct"),
    (&["--epoch-repeats", "-1"], "--epoch-repeats"),
    (&["--decay-rate", "-1"], "--decay-rate"),
    (&["--bn-eps", "-1"], "--bn-eps"),
    (&["--bn-momentum", "5"], "--bn-momentum"),
    (&["--kd-temperature", "0"], "--kd-temperature"),
    (&["--model-ema-decay", "5"], "--model-ema-decay"),
];

/// A refused run ends at once; one that starts training is stopped here and fails the test.
const LIMIT: Duration = Duration::from_secs(60);

/// Runs `kiln train --output DIR args...` and returns its exit code (None for a signal or a run
/// that had to be stopped) and stderr.
fn kiln_train(args: &[&str]) -> (Option<i32>, String) {
    let out = tempfile::tempdir().unwrap();
    let out = out.path().to_str().unwrap();
    kiln(&[&["train", "--output", out][..], args].concat())
}

/// Runs `kiln args...` under [`LIMIT`]: its exit code (None for a signal or a stopped run) and
/// stderr.
fn kiln(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kiln");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > LIMIT {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Checks that `kiln train args...` is refused with status 2 by an error line naming `flag`.
fn refused(args: &[&str], flag: &str) -> Result<(), String> {
    judge(args, flag, kiln_train(args))
}

/// Whether a run of `args` ended (`code`, `stderr`) with status 2 and an error line naming `flag`.
fn judge(args: &[&str], flag: &str, (code, stderr): (Option<i32>, String)) -> Result<(), String> {
    let error_line = stderr
        .lines()
        .any(|l| l.starts_with("error") && l.contains(flag));
    match (code, error_line, stderr.contains("panicked")) {
        (Some(2), true, false) => Ok(()),
        _ => Err(format!("kiln {args:?}: exit {code:?}, stderr:\n{stderr}")),
    }
}

/// Every case of the corpus, each with the flag its error must name.
fn corpus() -> Vec<(Vec<&'static str>, &'static str)> {
    let mut cases = Vec::new();
    for &(flag, n) in INT_FLAGS {
        for v in NOT_AN_INT {
            cases.push(([vec![flag], vec![v; n]].concat(), flag));
        }
    }
    for &flag in FLOAT_FLAGS {
        for v in NOT_A_FLOAT {
            // `--flag=-inf`: alone, `-inf` reads as a flag (in argparse too).
            let arg: &'static str = format!("{flag}={v}").leak();
            cases.push((vec![arg], flag));
        }
    }
    for &(args, flag) in OUT_OF_RANGE {
        cases.push((args.to_vec(), flag));
    }
    cases
}

#[test]
fn absurd_values_of_every_numeric_flag_exit_2_naming_the_flag() {
    let cases = corpus();
    let failures: Vec<String> = std::thread::scope(|s| {
        let chunk = cases.len().div_ceil(4);
        let workers: Vec<_> = cases
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .filter_map(|(args, flag)| refused(args, flag).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} absurd values were not refused with status 2:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// `kiln validate` (and so `kiln infer`, which shares its setup) refuses the same absurd sizes,
/// before a checkpoint's model is built or a batch allocated.
#[test]
fn validate_refuses_absurd_sizes_naming_the_flag() {
    let data = common::dataset("absurd-validate", 32, 8);
    let runs = data.join("runs");
    common::train(&data, &runs, "v", &["--epochs", "1"]);
    let run = runs.join("v");
    let (d, ck) = (data.to_str().unwrap(), run.to_str().unwrap());
    let cases: [(&[&str], &str); 9] = [
        (&["-b", "0"], "--batch-size"),
        (&["-j", "100000"], "--workers"),
        (&["--crop-pct", "-1"], "--crop-pct"),
        (&["--std", "0", "1", "1"], "--std"),
        (&["--in-chans", "5"], "--in-chans"),
        (&["--num-classes", "0"], "--num-classes"),
        (&["--num-classes", "1000000000000"], "--num-classes"),
        (&["--img-size", "1000000"], "--img-size"),
        (&["-b", "1000000000000"], "--batch-size"),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|&(extra, flag)| {
            // The 8 test images hold fewer than the checkpoint's 10 classes: name them.
            let base = ["validate", d, "--checkpoint", ck, "--num-classes", "10"];
            let args = [&base[..], extra].concat();
            judge(&args, flag, kiln(&args)).err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
