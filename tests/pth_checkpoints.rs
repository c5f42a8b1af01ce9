//! Checkpoints timm's train.py wrote (`.pth.tar`, torch.save's zip format) through every flag
//! that reads one: `kiln validate --checkpoint` (and `--use-ema`) reproduces timm's validate.py
//! on the same images, `kiln train --initial-checkpoint` and `--pretrained-path` start from its
//! weights, and `--resume` continues its run with its model, EMA, epoch and optimizer state.
//! Fixtures: tests/fixtures/pth, made by scripts/fixtures/make_pth_fixtures.py.

mod common;

use common::{kiln_ok, summary_rows, validate_row, FROZEN};
use kiln::train::checkpoint::Checkpoint;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pth")
}

/// timm's validate.py results for the checkpoint: (top-1, top-5, mean loss) of its model and of
/// its EMA.
fn timm(part: &str) -> (f64, f64, f64) {
    let text = std::fs::read_to_string(fixtures().join("timm_validate.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let r = &v[part];
    let f = |k: &str| r[k].as_f64().unwrap();
    (f("top1"), f("top5"), f("loss"))
}

/// timm's loss is read from its log, rounded to 4 decimals (±5e-5); the two forwards differ by
/// float32 rounding (~1e-6 relative on a loss near 1).
const LOSS_TOL: f64 = 6e-5;

/// The flags timm's run and validate.py used: the model, 4 classes, 32x32 inputs.
const MODEL: [&str; 6] = [
    "--model",
    "mobilenetv3_small_050",
    "--num-classes",
    "4",
    "--img-size",
    "32",
];

#[test]
fn validate_reproduces_timms_top1_and_loss() {
    let dir = tempfile::tempdir().unwrap();
    let data = fixtures().join("data");
    let ck = fixtures().join("last.pth.tar");
    // A run folder of timm's holds last.pth.tar: validating the folder finds it.
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::copy(&ck, run.join("last.pth.tar")).unwrap();
    for (part, ema) in [("model", None), ("ema", Some("--use-ema"))] {
        for target in [&ck, &run] {
            let mut args = vec!["--checkpoint", target.to_str().unwrap()];
            args.extend(ema);
            let row = &validate_row(Command::new(env!("CARGO_BIN_EXE_kiln")), &data, &args);
            assert_eq!(
                row["model"], "mobilenetv3_small_050",
                "the checkpoint's arch"
            );
            let (top1, top5, loss) = timm(part);
            assert_eq!(row["top1"].as_f64().unwrap(), top1, "{part}");
            assert_eq!(row["top5"].as_f64().unwrap(), top5, "{part}");
            let got = row["loss"].as_f64().unwrap();
            assert!(
                (got - loss).abs() <= LOSS_TOL,
                "{part}: loss {got} vs timm's {loss}"
            );
            assert_eq!(row["samples"].as_u64().unwrap(), 40);
        }
    }
    let (model, ema) = (timm("model"), timm("ema"));
    assert!(model.0 != ema.0, "the two weight sets are told apart");
}

/// `kiln train` on the fixture images with the model's flags, at an lr too small to move a
/// weight and BN momentum 0, so its first validation is of the weights it started from.
fn frozen_run(out: &Path, exp: &str, epochs: &str, extra: &[&str]) -> (String, Vec<Vec<f64>>) {
    let data = fixtures().join("data");
    let mut args = vec!["train", data.to_str().unwrap()];
    args.extend(MODEL);
    args.extend(FROZEN);
    args.extend([
        "-b",
        "16",
        "--epochs",
        epochs,
        "-j",
        "1",
        "--output",
        out.to_str().unwrap(),
        "--experiment",
        exp,
    ]);
    args.extend(extra);
    let log = kiln_ok(&args);
    (log, summary_rows(&out.join(exp)))
}

/// A summary row's (eval_loss, eval_top1, eval_top5) against timm's (top1, top5, loss).
fn assert_eval(row: &[f64], timm: (f64, f64, f64), what: &str) {
    assert_eq!(
        (row[3], row[4]),
        (timm.0, timm.1),
        "{what}: top-1/top-5 {row:?}"
    );
    assert!(
        (row[2] - timm.2).abs() <= LOSS_TOL,
        "{what}: loss {row:?} vs {timm:?}"
    );
}

/// A one-epoch [`frozen_run`] from timm's checkpoint passed with `flag`: its summary rows, after
/// asserting that the log says `Loaded WEIGHTS from CHECKPOINT (HOW)`.
fn one_epoch_from_the_checkpoint(exp: &str, flag: &str, weights: &str, how: &str) -> Vec<Vec<f64>> {
    let dir = tempfile::tempdir().unwrap();
    let ck = fixtures().join("last.pth.tar");
    let (log, rows) = frozen_run(dir.path(), exp, "1", &[flag, ck.to_str().unwrap()]);
    assert!(
        log.contains(&format!("Loaded {weights} from {} ({how})", ck.display())),
        "{log}"
    );
    rows
}

#[test]
fn initial_checkpoint_starts_from_the_checkpoints_ema_as_timm_does() {
    let rows = one_epoch_from_the_checkpoint(
        "init",
        "--initial-checkpoint",
        "initial weights",
        "state_dict_ema",
    );
    // timm's load_checkpoint takes the EMA weights of a checkpoint that has them.
    assert_eq!(rows.len(), 1);
    assert_eval(&rows[0], timm("ema"), "initial checkpoint");
}

#[test]
fn pretrained_path_reads_a_timm_checkpoint() {
    one_epoch_from_the_checkpoint(
        "pretrained",
        "--pretrained-path",
        "pretrained weights",
        "classifier re-initialized",
    );
}

#[test]
fn resume_continues_timms_run_with_its_model_ema_epoch_and_optimizer() {
    let dir = tempfile::tempdir().unwrap();
    let ck = fixtures().join("last.pth.tar");
    // timm's run folder, as --resume RUN_DIR finds it.
    let timm_run = dir.path().join("timm_run");
    std::fs::create_dir(&timm_run).unwrap();
    std::fs::copy(&ck, timm_run.join("last.pth.tar")).unwrap();
    // The checkpoint finished epoch 4 of 5; one more epoch, the EMA held still (decay 1).
    let (log, rows) = frozen_run(
        dir.path(),
        "resumed",
        "6",
        &[
            "--resume",
            timm_run.to_str().unwrap(),
            "--model-ema",
            "--model-ema-decay",
            "1",
        ],
    );
    let resumed = timm_run.join("last.pth.tar");
    assert!(
        log.contains(&format!("Resumed from {} (epoch 4)", resumed.display())),
        "{log}"
    );
    assert!(
        log.contains("Restored the optimizer state")
            && log.contains("momentum_buffer of 142 of 142 parameters"),
        "timm's SGD momentum maps onto kiln's:\n{log}"
    );
    assert_eq!(rows.len(), 1, "only epoch 5 is left");
    assert_eq!(rows[0][0], 5.0);
    // The summary holds the EMA's validation (as timm's does): timm's EMA weights.
    assert_eval(&rows[0], timm("ema"), "resumed EMA");
    let model_line = log
        .lines()
        .find(|l| l.starts_with("Epoch 5:"))
        .expect("the epoch line");
    assert!(
        model_line.contains(&format!("top1 {:.2}%", timm("model").0)),
        "the model's own validation is timm's model's: {model_line}"
    );
    // What kiln saved after the epoch: timm's model (moved by at most lr 1e-30 times the
    // momentum step, so within 1e-20 of it) and timm's EMA exactly.
    let timm_ck = Checkpoint::load(&ck).unwrap();
    let ours = Checkpoint::load(&dir.path().join("resumed/last.safetensors")).unwrap();
    for (part, theirs, mine, tol) in [
        ("model", &timm_ck.model, &ours.model, 1e-20f32),
        (
            "ema",
            &timm_ck.extra["state_dict_ema"],
            &ours.extra["state_dict_ema"],
            0.0,
        ),
    ] {
        assert_eq!(theirs.len(), mine.len(), "{part}");
        for (name, t) in theirs {
            if name.ends_with("num_batches_tracked") {
                continue;
            }
            let (a, b) = (t.to_vec_f32().unwrap(), mine[name].to_vec_f32().unwrap());
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            assert!(worst <= tol, "{part} {name}: off by {worst}");
        }
    }
}
