//! `kiln schedule` prints one `epoch,update,lr` row per optimizer update and draws the curve;
//! `kiln plot` draws a run's summary.csv; bad schedule flags are refused by name.

mod common;

use common::kiln_run;
use std::path::{Path, PathBuf};

/// Runs kiln, which must not panic; returns (success, stdout, stderr).
fn kiln(args: &[&str]) -> (bool, String, String) {
    let (code, stdout, stderr) = kiln_run(args);
    assert!(
        !stderr.contains("panicked"),
        "kiln {args:?} panicked: {stderr}"
    );
    (code == Some(0), stdout, stderr)
}

/// A fresh folder under the system temp dir for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

/// The (epoch, update, lr) rows after the header.
fn rows(stdout: &str) -> Vec<(usize, usize, f64)> {
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("epoch,update,lr"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

fn assert_lrs(got: &[(usize, usize, f64)], want: &[f64]) {
    let lrs: Vec<f64> = got.iter().map(|r| r.2).collect();
    assert_eq!(lrs.len(), want.len(), "{lrs:?}");
    for (g, w) in lrs.iter().zip(want) {
        assert!((g - w).abs() <= 1e-12 * w.abs(), "{lrs:?} vs {want:?}");
    }
}

#[test]
fn schedule_prints_every_update_and_plots_it() {
    let dir = scratch("schedule");
    let png = dir.join("cosine.png");
    let (ok, stdout, stderr) = kiln(&[
        "schedule",
        "--sched",
        "cosine",
        "--epochs",
        "4",
        "--warmup-epochs",
        "1",
        "--lr",
        "0.1",
        "--warmup-lr",
        "0.01",
        "--updates-per-epoch",
        "3",
        "--plot",
        png.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let rows = rows(&stdout);
    let epochs: Vec<usize> = rows.iter().map(|r| r.0).collect();
    let updates: Vec<usize> = rows.iter().map(|r| r.1).collect();
    assert_eq!(epochs, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
    assert_eq!(updates, (0..12).collect::<Vec<_>>());
    // Per epoch: warmup_lr, then 0.05 (1 + cos(pi t / 4)) at t = 1, 2, 3.
    let cosine = |t: f64| 0.05 * (1.0 + (std::f64::consts::PI * t / 4.0).cos());
    let want: Vec<f64> = [0.01, cosine(1.0), cosine(2.0), cosine(3.0)]
        .iter()
        .flat_map(|&lr| [lr; 3])
        .collect();
    assert_lrs(&rows, &want);
    assert_eq!(png_size(&png), (960, 600));
}

#[test]
fn schedule_steps_plateau_on_the_given_metrics() {
    let dir = scratch("plateau");
    let png = dir.join("plateau.png");
    let (ok, stdout, stderr) = kiln(&[
        "schedule",
        "--sched",
        "plateau",
        "--epochs",
        "4",
        "--warmup-epochs",
        "0",
        "--patience-epochs",
        "0",
        "--eval-metric",
        "loss",
        "--lr",
        "0.1",
        "--updates-per-epoch",
        "1",
        "--eval-metrics",
        "1,1,1,1",
        "--plot",
        png.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    // The first metric is the best so far; each later equal one is a bad epoch past patience 0.
    assert_lrs(&rows(&stdout), &[0.1, 0.1, 0.1 * 0.1, 0.1 * 0.1 * 0.1]);
    assert_eq!(png_size(&png), (960, 600));
}

#[test]
fn bad_schedule_flags_are_named() {
    let fails_with = |args: &[&str], needle: &str| {
        let (ok, _, stderr) = kiln(args);
        assert!(!ok, "kiln {args:?} should fail");
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    };
    let base = [
        "schedule",
        "--updates-per-epoch",
        "2",
        "--plot",
        "/nonexistent/never.png",
    ];
    let with = |extra: &[&'static str]| [&base[..], extra].concat();
    fails_with(
        &with(&["--sched", "cosinus"]),
        "--sched: unknown schedule 'cosinus'",
    );
    fails_with(
        &with(&["--sched", "wsd", "--epochs", "10"]),
        "--decay-epochs: wsd's decay must fit in --epochs - --warmup-epochs (0 < 90 <= 5, in epochs)",
    );
    fails_with(
        &with(&[
            "--sched",
            "rsqrt",
            "--warmup-epochs",
            "0",
            "--decay-epochs",
            "0.2",
        ]),
        "--warmup-epochs: rsqrt's timescale is the warmup",
    );
    fails_with(
        &with(&["--sched", "multistep", "--decay-milestones", "30", "10"]),
        "--decay-milestones: must be increasing",
    );
    fails_with(
        &with(&["--sched", "plateau", "--sched-on-updates"]),
        "--sched-on-updates",
    );
    fails_with(
        &with(&["--sched", "plateau", "--epochs", "3"]),
        "--eval-metrics",
    );
    fails_with(&with(&["--lr-noise", "0.1", "0.5", "0.9"]), "--lr-noise");
}

#[test]
fn plot_draws_a_run_summary() {
    let dir = scratch("plot");
    let rows: String = (0..8)
        .map(|e| {
            let e = e as f64;
            format!(
                "{e},{},{},{},{},{}\n",
                2.0 / (1.0 + e),
                2.2 / (1.0 + e),
                10.0 * e,
                12.0 * e,
                0.1 - 0.01 * e
            )
        })
        .collect();
    let csv = format!("epoch,train_loss,eval_loss,eval_top1,eval_top5,lr\n{rows}");
    std::fs::write(dir.join("summary.csv"), csv).unwrap();
    let (ok, stdout, stderr) = kiln(&["plot", dir.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    for name in ["loss.png", "accuracy.png", "lr.png"] {
        assert!(stdout.contains(name), "{stdout}");
        assert_eq!(png_size(&dir.join(name)), (960, 600));
    }
    std::fs::write(dir.join("summary.csv"), "epoch,train_loss\n0,1.0\n").unwrap();
    let (ok, _, stderr) = kiln(&["plot", dir.to_str().unwrap()]);
    assert!(
        !ok && stderr.contains("summary.csv") && stderr.contains("eval_loss"),
        "{stderr}"
    );
}
