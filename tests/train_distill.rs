//! `kiln train --kd-model-name` end to end on small IDX data: a resnet18 teacher trained first
//! and saved as a timm `local-dir:` folder (config.json + model.safetensors) teaches a student by
//! logit, feature (a mobilenetv3 student, so its features are projected to the teacher's width)
//! and token distillation (soft and hard, a distilled DeiT at 32 pixels); each run's training
//! loss falls. A registry teacher name takes its weights from the Hugging Face hub cache, and one
//! missing there is refused naming the flag and the download command.

mod common;

use common::{dataset, kiln_ok_in, summary_rows, train, train_args, train_fails};
use kiln::train::checkpoint::Checkpoint;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Trains the resnet18 teacher for 2 epochs and lays it out as timm's `local-dir:` folder.
fn teacher_folder(data: &Path, out: &Path) -> PathBuf {
    train(data, out, "teacher", &["--epochs", "2"]);
    let dir = out.join("teacher-dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        out.join("teacher/last.safetensors"),
        dir.join("model.safetensors"),
    )
    .unwrap();
    let config = r#"{"architecture": "resnet18", "num_classes": 10,
        "pretrained_cfg": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}"#;
    std::fs::write(dir.join("config.json"), config).unwrap();
    dir
}

/// Trains a student for 3 epochs with `extra` flags; asserts its train loss fell and returns
/// its stdout.
fn distill(data: &Path, out: &Path, exp: &str, teacher: &Path, extra: &[&str]) -> String {
    let kd = format!("local-dir:{}", teacher.display());
    let mut args = vec!["--epochs", "3", "--kd-model-name", &kd];
    args.extend_from_slice(extra);
    let stdout = train(data, out, exp, &args);
    assert!(stdout.contains("Distilling from"), "{stdout}");
    let rows = summary_rows(&out.join(exp));
    assert_eq!(rows.len(), 3, "{exp}");
    let losses: Vec<f64> = rows.iter().map(|r| r[1]).collect();
    eprintln!("{exp}: train loss by epoch {losses:?}");
    assert!(
        rows.iter().all(|r| r[1].is_finite()) && rows[2][1] < rows[0][1],
        "{exp}: the distillation run's train loss did not fall: {rows:?}"
    );
    stdout
}

#[test]
fn distills_by_logits_features_and_tokens() {
    let data = dataset("e2e-distill", 160, 40);
    let out = data.join("runs");
    let teacher = teacher_folder(&data, &out);

    let stdout = distill(
        &data,
        &out,
        "logit",
        &teacher,
        &["--task-loss-weight", "0.5"],
    );
    assert!(
        stdout.contains("task weight 0.5, distill weight 0.5"),
        "{stdout}"
    );

    let feature = [
        "--model",
        "mobilenetv3_small_100",
        "--kd-distill-type",
        "feature",
        "--distill-loss-weight",
        "2",
    ];
    distill(&data, &out, "feature", &teacher, &feature);
    let saved = Checkpoint::load(&out.join("feature/last.safetensors")).unwrap();
    assert_eq!(
        saved.extra["task_state"]["projection.weight"].shape(),
        [512, 1024],
        "the projection from the student's 1024 features to the teacher's 512 is checkpointed"
    );

    for kind in ["soft", "hard"] {
        let token = [
            "--model",
            "deit_tiny_distilled_patch16_224",
            "--img-size",
            "32",
            "--opt",
            "adamw",
            "--lr",
            "1e-3",
            "--kd-distill-type",
            "token",
            "--kd-token-distill-type",
            kind,
        ];
        distill(&data, &out, &format!("token-{kind}"), &teacher, &token);
    }
}

#[test]
fn a_registry_teacher_comes_from_the_hub_cache_or_is_refused_naming_where_kiln_looked() {
    let data = dataset("e2e-distill-hub", 32, 8);
    let out = data.join("runs");
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hub_cache");
    let mut kiln = Command::new(env!("CARGO_BIN_EXE_kiln"));
    kiln.env("HF_HUB_CACHE", &cache);
    let teacher = ["--kd-model-name", "mobilenetv3_small_050", "--epochs", "1"];
    let log = kiln_ok_in(kiln, &train_args(&data, &out, "hub", &teacher));
    assert!(
        log.contains("Created KD teacher mobilenetv3_small_050 from") && log.contains("hub_cache"),
        "{log}"
    );
    let stderr = train_fails(&data, &out, "x", &["--kd-model-name", "resnet50.a1_in1k"]);
    assert!(
        stderr.contains("--kd-model-name") && stderr.contains("download"),
        "{stderr}"
    );
}
