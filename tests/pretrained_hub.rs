//! `--pretrained` read offline from the Hugging Face hub cache: `kiln validate` of a tag, an
//! `hf-hub:` repo and a `local-dir:` folder reproduces timm's validate.py `--pretrained` with
//! HF_HUB_CACHE at the fixture cache, `kiln train --pretrained` starts from those weights (its
//! first evaluation, unmoved, is timm's), and a missing file is a one-line error. Fixtures:
//! tests/fixtures/hub_cache, tests/fixtures/local_dir and tests/fixtures/hub_cache_validate.json,
//! made by scripts/fixtures/make_hub_cache_fixtures.py; images: tests/fixtures/pth/data.

mod common;

use common::{kiln_ok_in, summary_rows, validate_row, FROZEN};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn data() -> PathBuf {
    root().join("tests/fixtures/pth/data")
}

/// The kiln binary run from the repository root with HF_HUB_CACHE at `cache`.
fn kiln_with_cache(cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.current_dir(root()).env("HF_HUB_CACHE", cache);
    cmd
}

fn fixture_cache() -> PathBuf {
    root().join("tests/fixtures/hub_cache")
}

/// timm's validate.py `--pretrained` results by case (`tag`, `hf_hub`, `local_dir`).
fn timm_results() -> Value {
    let text = std::fs::read_to_string(root().join("tests/fixtures/hub_cache_validate.json"));
    serde_json::from_str(&text.unwrap()).unwrap()
}

/// timm's loss is read from its log, rounded to 4 decimals (±5e-5); the two forwards differ by
/// float32 rounding.
const LOSS_TOL: f64 = 6e-5;

/// `kiln validate` of the fixture images with the fixture cache and `extra`: its results row.
fn validate(extra: &[&str]) -> Value {
    validate_row(kiln_with_cache(&fixture_cache()), &data(), extra)
}

#[test]
fn validate_pretrained_reproduces_timms_validate() {
    let timm = timm_results();
    for (case, flags) in [
        ("tag", vec!["--pretrained"]),
        // validate.py's default without a checkpoint; the bare name is the default tag.
        ("tag", vec!["--model", "mobilenetv3_small_050"]),
        ("hf_hub", vec!["--pretrained"]),
        ("local_dir", vec!["--pretrained"]),
    ] {
        let want = &timm[case];
        let mut args = flags.clone();
        if !args.contains(&"--model") {
            args.extend(["--model", want["model"].as_str().unwrap()]);
        }
        let row = validate(&args);
        for k in ["top1", "top5", "crop_pct"] {
            assert_eq!(row[k], want[k], "{case} {flags:?}: {k}");
        }
        let (got, loss) = (
            row["loss"].as_f64().unwrap(),
            want["loss"].as_f64().unwrap(),
        );
        assert!(
            (got - loss).abs() <= LOSS_TOL,
            "{case}: loss {got} vs timm's {loss}"
        );
        let file = row["checkpoint"].as_str().unwrap();
        assert!(file.ends_with("model.safetensors"), "{case}: {file}");
        assert_eq!(row["samples"], 40);
    }
    assert_ne!(
        timm["tag"]["loss"], timm["hf_hub"]["loss"],
        "the configs differ"
    );
}

/// `kiln train` on the fixture images at 32×32, 1 epoch, with `extra`, into `out/run`: its log.
fn train(out: &Path, cache: &Path, extra: &[&str]) -> Result<String, String> {
    let data = data();
    let mut args = vec![
        "train",
        data.to_str().unwrap(),
        "--img-size",
        "32",
        "-b",
        "16",
        "--epochs",
        "1",
        "-j",
        "1",
        "--output",
        out.to_str().unwrap(),
        "--experiment",
        "run",
    ];
    args.extend(extra);
    let o = kiln_with_cache(cache).args(&args).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    );
    match o.status.success() {
        true => Ok(stdout),
        false => Err(stderr),
    }
}

#[test]
fn train_pretrained_starts_from_the_cached_weights() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = fixture_cache().join("models--timm--mobilenetv3_small_050.lamb_in1k/snapshots");
    // The data's 4 classes: the 1000-class head is re-initialized, as timm's load_pretrained does.
    let log = train(
        dir.path(),
        &fixture_cache(),
        &["--pretrained", "--model", "mobilenetv3_small_050.lamb_in1k"],
    )
    .unwrap();
    let loaded = log
        .lines()
        .find(|l| l.starts_with("Loaded pretrained weights from"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        loaded.contains(&snapshot.display().to_string())
            && loaded.ends_with("model.safetensors (classifier re-initialized)"),
        "{loaded}"
    );
    assert_eq!(summary_rows(&dir.path().join("run")).len(), 1);

    // The weights' 1000 classes, nothing moving (lr 1e-30, BN momentum 0): the epoch's
    // evaluation is timm's validate.py of the pretrained model.
    let mut frozen = vec![
        "--pretrained",
        "--model",
        "mobilenetv3_small_050.lamb_in1k",
        "--num-classes",
        "1000",
        "--experiment",
        "frozen",
    ];
    frozen.extend(FROZEN);
    let log = train(dir.path(), &fixture_cache(), &frozen).unwrap();
    assert!(!log.contains("re-initialized"), "{log}");
    let row = &summary_rows(&dir.path().join("frozen"))[0];
    let timm = &timm_results()["tag"];
    let (top1, top5) = (
        timm["top1"].as_f64().unwrap(),
        timm["top5"].as_f64().unwrap(),
    );
    assert_eq!((row[3], row[4]), (top1, top5), "{row:?}");
    let loss = timm["loss"].as_f64().unwrap();
    assert!(
        (row[2] - loss).abs() <= LOSS_TOL,
        "{row:?} vs timm's loss {loss}"
    );
}

#[test]
fn pretrained_path_takes_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let file = root().join("tests/fixtures/local_dir/mnv3_small_050/model.safetensors");
    let empty = tempfile::tempdir().unwrap();
    let args = [
        "--pretrained",
        "--pretrained-path",
        file.to_str().unwrap(),
        "--model",
        "mobilenetv3_small_050",
    ];
    let log = train(dir.path(), empty.path(), &args).unwrap();
    assert!(
        log.contains(&format!(
            "Loaded pretrained weights from {}",
            file.display()
        )),
        "{log}"
    );
}

#[test]
fn a_missing_cache_is_one_line_naming_where_kiln_looked() {
    let empty = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = train(
        out.path(),
        empty.path(),
        &["--pretrained", "--model", "resnet18.a1_in1k"],
    )
    .unwrap_err();
    let repo = empty.path().join("models--timm--resnet18.a1_in1k");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: timm/resnet18.a1_in1k is not in the Hugging Face hub cache")
            && err.contains(&format!("{} (absent)", repo.display()))
            && err.contains(&format!("HF_HUB_CACHE={}", empty.path().display()))
            && err.contains("`hf download timm/resnet18.a1_in1k`"),
        "{err}"
    );

    // Without HF_HUB_CACHE, HF_HOME/hub.
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .env("HF_HOME", empty.path())
        .args(["validate", "--model", "hf-hub:someone/model"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    let repo = empty.path().join("hub/models--someone--model");
    assert!(
        err.contains(&format!("{} (absent)", repo.display()))
            && err.contains("`hf download someone/model`"),
        "{err}"
    );
}

#[test]
fn models_lists_the_pretrained_tags() {
    let out = kiln_ok_in(
        Command::new(env!("CARGO_BIN_EXE_kiln")),
        &["models", "--pretrained", "resnet18d*"],
    );
    assert_eq!(out, "resnet18d.ra2_in1k\nresnet18d.ra4_e3600_r224_in1k\n");
}
