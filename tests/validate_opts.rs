//! validate.py's evaluation options, run unchanged through `kiln validate` on the images timm's
//! validate.py saw, give timm's results: `--crop-mode` (center, squash, border),
//! `--crop-border-pixels`, `--metrics-avg` (micro, macro, weighted; with a `--class-map` subset
//! whose predictions reach a class the data lacks), `--valid-labels` with `--class-map`, and
//! `--real-labels`. Fixtures: tests/fixtures/validate_opts, made by
//! scripts/fixtures/make_validate_opts_fixtures.py with timm's checkpoint of
//! tests/fixtures/pth and the 1000-class weights of tests/fixtures/hub_cache.

mod common;

use common::validate_row;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/validate_opts")
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// timm's validate.py results for a case of the fixture script.
fn timm(case: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join("timm_validate.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    all[case].clone()
}

/// The kiln binary with HF_HUB_CACHE at the fixture cache (for the 1000-class weights).
fn kiln() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.env("HF_HUB_CACHE", root().join("tests/fixtures/hub_cache"));
    cmd
}

/// validate.py's flags for timm's 4-class checkpoint (at 32x32, as validate_row runs), then
/// `extra`.
fn checkpoint(extra: &[&str]) -> Vec<String> {
    let ck = root_ck();
    let mut args: Vec<String> = ["--model", "mobilenetv3_small_050", "--num-classes", "4"]
        .map(String::from)
        .into();
    args.extend(["--checkpoint".into(), path(&ck)]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run(args: &[String]) -> Value {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    validate_row(kiln(), &fixtures().join("data"), &args)
}

/// timm rounds top-1 and top-5 to 4 decimals in its results.
const ROUNDED: f64 = 5e-5 + 1e-12;
/// timm's loss is read from its log, rounded to 4 decimals (±5e-5); the two forwards differ by
/// float32 rounding (~1e-6 relative on losses below 7).
const LOSS_TOL: f64 = 6e-5;

/// Asserts kiln's results row against timm's for `case`: top-1, top-5, crop and loss within
/// timm's rounding, and every `--metrics-avg` key, which both round to 4 decimals from the same
/// counts, equal.
fn assert_matches(case: &str, row: &Value) {
    let want = timm(case);
    let f = |v: &Value, k: &str| {
        v[k].as_f64()
            .unwrap_or_else(|| panic!("{case}: {k} in {v}"))
    };
    for k in ["top1", "top5"] {
        let (got, want) = (f(row, k), f(&want, k));
        assert!(
            (got - want).abs() <= ROUNDED,
            "{case}: {k} {got} vs timm's {want}"
        );
    }
    assert_eq!(f(row, "crop_pct"), f(&want, "crop_pct"), "{case}");
    let (got, loss) = (f(row, "loss"), f(&want, "loss"));
    assert!(
        (got - loss).abs() <= LOSS_TOL,
        "{case}: loss {got} vs timm's {loss}"
    );
    let metrics: Vec<&String> = (want.as_object().unwrap().keys())
        .filter(|k| k.ends_with("_precision") || k.ends_with("_recall") || k.ends_with("_f1_score"))
        .collect();
    for k in &metrics {
        assert_eq!(f(row, k), f(&want, k), "{case}: {k}");
    }
    let listed = (row.as_object().unwrap().keys())
        .filter(|k| k.ends_with("_f1_score"))
        .count();
    assert_eq!(listed * 3, metrics.len(), "{case}: metric keys {row}");
}

#[test]
fn crop_modes_and_border_pixels_give_timms_results() {
    // Nearest-neighbour resizing (squash and border resize, a trimmed border is scaled back up)
    // copies pixels, so kiln's images are timm's exactly.
    let cases: [(&str, &[&str]); 4] = [
        ("center", &[]),
        (
            "squash",
            &["--crop-mode", "squash", "--interpolation", "nearest"],
        ),
        (
            "border",
            &["--crop-mode", "border", "--interpolation", "nearest"],
        ),
        (
            "border_pixels",
            &["--crop-border-pixels", "4", "--interpolation", "nearest"],
        ),
    ];
    let mut top1s = Vec::new();
    for (case, extra) in cases {
        let row = run(&checkpoint(extra));
        assert_matches(case, &row);
        top1s.push(row["top1"].as_f64().unwrap());
    }
    top1s.dedup();
    assert_eq!(top1s.len(), 4, "each crop gives its own images");
}

#[test]
fn metrics_avg_gives_timms_precision_recall_and_f1() {
    let class_map = path(&fixtures().join("class_map.txt"));
    for (case, avg, subset) in [
        ("micro", "micro", false),
        ("macro", "macro", false),
        ("weighted", "weighted", false),
        ("macro_subset", "macro", true),
        ("weighted_subset", "weighted", true),
    ] {
        let mut extra = vec!["--metrics-avg", avg];
        if subset {
            extra.extend(["--class-map", class_map.as_str()]);
        }
        assert_matches(case, &run(&checkpoint(&extra)));
    }
    // The CSV results file carries the three columns after top5_err, as validate.py's.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("results.csv");
    let mut args = vec![
        "validate".to_string(),
        path(&fixtures().join("data")),
        "--img-size".into(),
        "32".into(),
        "--results-file".into(),
        path(&csv),
    ];
    args.extend(checkpoint(&["--metrics-avg", "macro"]));
    common::kiln_ok(&args);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert!(
        lines.next().unwrap().starts_with(
            "model,checkpoint,top1,top1_err,top5,top5_err,macro_precision,macro_recall,macro_f1_score,loss,"
        ),
        "{text}"
    );
    let values: Vec<&str> = lines.next().unwrap().split(',').collect();
    let want = timm("macro");
    assert_eq!(values[6].parse::<f64>().unwrap(), want["macro_precision"]);
}

#[test]
fn valid_labels_with_a_class_map_give_timms_results() {
    let fx = fixtures();
    let row = run(&checkpoint(&[
        "--class-map",
        &path(&fx.join("class_map.txt")),
        "--valid-labels",
        &path(&fx.join("valid_labels.txt")),
    ]));
    assert_matches("valid_labels", &row);
    assert_eq!(row["samples"], 24, "three of the four class folders");
}

#[test]
fn real_labels_give_timms_real_accuracy() {
    let real = path(&fixtures().join("real_labels.json"));
    let flags = ["--model", "mobilenetv3_small_050", "--pretrained"];
    let args: Vec<String> = [&flags[..], &["--real-labels", &real]]
        .concat()
        .into_iter()
        .map(String::from)
        .collect();
    let row = run(&args);
    assert_matches("real_labels", &row);
    // 7 of the 36 files have no labels: the accuracies count the other 29.
    assert_eq!(row["top1"].as_f64().unwrap(), 100.0 * 14.0 / 29.0);
}

/// Runs `kiln validate ARGS`, which must fail in one line; returns it.
fn fails(args: &[String]) -> String {
    let o = kiln().arg("validate").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "kiln validate {args:?} should fail");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn label_files_that_do_not_fit_are_named() {
    let fx = fixtures();
    let data = path(&fx.join("data"));
    // ReaL labels for 36 files on the 40 images of tests/fixtures/pth/data.
    let other = path(&root().join("tests/fixtures/pth/data"));
    let real = path(&fx.join("real_labels.json"));
    let e = fails(&[vec![other], checkpoint(&["--real-labels", &real])].concat());
    assert!(
        e.contains("--real-labels") && e.contains("36 images") && e.contains("has 40"),
        "{e}"
    );
    // Three kept logits for the four classes of the data.
    let valid = path(&fx.join("valid_labels.txt"));
    let e = fails(&[vec![data.clone()], checkpoint(&["--valid-labels", &valid])].concat());
    assert!(
        e.starts_with("error: --valid-labels: ") && e.contains("keeps 3"),
        "{e}"
    );
    let e = fails(&[vec![data], checkpoint(&["--crop-mode", "letterbox"])].concat());
    assert!(
        e.starts_with("error: --crop-mode: ") && e.contains("letterbox"),
        "{e}"
    );
}

/// `--test-pool` above the model's pretrained input size (resnet18: 224) swaps in timm's
/// TestTimePoolHead (its numbers: nn/tests/test_time_pool.rs) and validates at crop 1, as
/// validate.py; at or below that size it changes nothing. timm's head cannot take a MobileNetV3
/// (its classifier reads conv_head, not the feature map): kiln refuses it in one line.
#[test]
fn test_pool_replaces_the_head_only_above_the_trained_size() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    common::write_image_folder(&data, 3, 4, 48, 40);
    let out = root.path().join("runs");
    common::train(
        &data,
        &out,
        "ttp",
        &["--img-size", "32", "--epochs", "1", "-b", "4"],
    );
    let last = path(&out.join("ttp/last.safetensors"));
    let rows = |size: &str, extra: &[&str]| -> (Value, String) {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("r.json");
        let mut args = vec![
            "validate",
            data.to_str().unwrap(),
            "--checkpoint",
            &last,
            "--img-size",
            size,
            "-b",
            "12",
            "--results-file",
            results.to_str().unwrap(),
            "--results-format",
            "json",
        ];
        args.extend(extra);
        let log = common::kiln_ok(&args);
        let rows: Value =
            serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
        (rows[0].clone(), log)
    };
    let (pooled, log) = rows("232", &["--test-pool"]);
    assert!(
        log.contains(
            "Target input size (232, 232) > pretrained default (224, 224), using test time pooling"
        ),
        "{log}"
    );
    assert_eq!(pooled["crop_pct"], 1.0);
    let (plain, _) = rows("232", &["--crop-pct", "1.0"]);
    assert_ne!(pooled["loss"], plain["loss"], "the head is replaced");
    let (at_224, log) = rows("224", &["--test-pool"]);
    assert!(!log.contains("test time pooling"), "{log}");
    assert_eq!(at_224["loss"], rows("224", &[]).0["loss"]);
    let ck = path(&root_ck());
    let e = fails(&[
        path(&fixtures().join("data")),
        "--checkpoint".into(),
        ck,
        "--num-classes".into(),
        "4".into(),
        "--img-size".into(),
        "256".into(),
        "--test-pool".into(),
    ]);
    assert!(
        e.starts_with("error: --test-pool: ") && e.contains("1024 features"),
        "{e}"
    );
}

fn root_ck() -> PathBuf {
    root().join("tests/fixtures/pth/last.pth.tar")
}

/// `--fast-norm` and `--reparam` change nothing in kiln (nor in timm for these models) and say so
/// in one line each; `--retry` (which steps the batch down only on running out of device memory),
/// `--num-gpu 1` and `--naflex-max-seq-len` without `--naflex-loader` change nothing either:
/// the results are the plain run's.
#[test]
fn noted_and_inert_flags_leave_the_results_unchanged() {
    let data = path(&fixtures().join("data"));
    let run_logged = |extra: &[&str]| -> (Value, String) {
        let mut args = vec![
            "validate".to_string(),
            data.clone(),
            "-b".into(),
            "16".into(),
        ];
        args.extend(checkpoint(&[&["--img-size", "32"], extra].concat()));
        let log = common::kiln_ok(&args);
        let line = log.lines().skip_while(|l| *l != "--result").nth(1).unwrap();
        (serde_json::from_str(line).unwrap(), log)
    };
    let (plain, _) = run_logged(&[]);
    let extra = [
        "--fast-norm",
        "--reparam",
        "--retry",
        "--num-gpu",
        "1",
        "--naflex-max-seq-len",
        "256",
    ];
    let (row, log) = run_logged(&extra);
    for k in ["top1", "top5", "loss", "samples"] {
        assert_eq!(row[k], plain[k], "{k}");
    }
    let notes: Vec<&str> = log.lines().filter(|l| l.starts_with("--")).collect();
    assert_eq!(notes.len(), 3, "two notes and the --result marker:\n{log}");
    assert!(
        notes[0].starts_with("--fast-norm: kiln's LayerNorm"),
        "{log}"
    );
    assert!(
        notes[1].starts_with("--reparam: timm's reparameterize_model"),
        "{log}"
    );
}
