//! `kiln train --model-dtype bfloat16|float16` end to end (timm's pure low-precision training):
//! the loss falls, the checkpoint holds the model in that dtype, a resumed run goes on from it,
//! `kiln validate --model-dtype` of the checkpoint reproduces the run's last evaluation, a
//! bfloat16 student distills from a teacher, and the flag's bad values and its clash with --amp
//! are refused naming it.

mod common;

use common::{dataset, kiln_ok, summary_rows, train, train_fails};
use kiln::engine::DType;
use kiln::train::checkpoint::Checkpoint;
use std::path::Path;

/// The dtypes of a checkpoint's model tensors, floating-point ones only.
fn float_dtypes(path: &Path) -> Vec<DType> {
    let ck = Checkpoint::load(path).unwrap();
    let mut dtypes: Vec<DType> = ck
        .model
        .values()
        .map(|t| t.dtype())
        .filter(|d| d.is_float())
        .collect();
    dtypes.dedup();
    dtypes
}

/// The top-1 of `kiln validate` of the run's last checkpoint in bfloat16.
fn validate_top1(data: &Path, run: &Path) -> f64 {
    let last = run.join("last.safetensors");
    let stdout = kiln_ok(&[
        "validate",
        data.to_str().unwrap(),
        "--model",
        "resnet18",
        "--in-chans",
        "1",
        "--checkpoint",
        last.to_str().unwrap(),
        "--model-dtype",
        "bfloat16",
    ]);
    let line = stdout.lines().find(|l| l.starts_with(" * Acc@1")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn trains_resumes_and_validates_in_bfloat16() {
    let data = dataset("e2e-model-dtype", 160, 40);
    let out = data.join("runs");
    let stdout = train(
        &data,
        &out,
        "bf16",
        &["--epochs", "3", "--model-dtype", "bfloat16"],
    );
    assert!(
        stdout.contains("AMP not enabled. Training in torch.bfloat16."),
        "{stdout}"
    );
    let run = out.join("bf16");
    let rows = summary_rows(&run);
    assert!(
        rows.iter().all(|r| r[1].is_finite()) && rows[2][1] < rows[0][1],
        "the bfloat16 run's train loss did not fall: {rows:?}"
    );
    assert_eq!(float_dtypes(&run.join("last.safetensors")), [DType::BF16]);
    assert_eq!(
        validate_top1(&data, &run),
        rows[2][3],
        "kiln validate --model-dtype bfloat16 of last.safetensors against the run's last eval"
    );

    let last = run.join("last.safetensors");
    let resume = [
        "--epochs",
        "4",
        "--model-dtype",
        "bfloat16",
        "--resume",
        last.to_str().unwrap(),
    ];
    train(&data, &out, "bf16-resumed", &resume);
    let resumed = summary_rows(&out.join("bf16-resumed"));
    assert_eq!(resumed.len(), 1, "the resumed run trains epoch 3 only");
    assert!(resumed[0][1].is_finite());

    // The run's model teaches a bfloat16 student by features (teacher and projection follow the
    // student's dtype, as timm's distillation tasks do).
    let teacher = out.join("teacher");
    std::fs::create_dir_all(&teacher).unwrap();
    std::fs::copy(&last, teacher.join("model.safetensors")).unwrap();
    let config = r#"{"architecture": "resnet18", "num_classes": 10}"#;
    std::fs::write(teacher.join("config.json"), config).unwrap();
    let kd = format!("local-dir:{}", teacher.display());
    let distill = [
        "--epochs",
        "1",
        "--model",
        "mobilenetv3_small_050",
        "--model-dtype",
        "bfloat16",
        "--kd-model-name",
        &kd,
        "--kd-distill-type",
        "feature",
    ];
    train(&data, &out, "bf16-distilled", &distill);
    let rows = summary_rows(&out.join("bf16-distilled"));
    assert!(rows[0][1].is_finite(), "{rows:?}");
}

#[test]
fn trains_in_float16_with_an_ema() {
    let data = dataset("e2e-model-f16", 96, 32);
    let out = data.join("runs");
    let args = ["--epochs", "2", "--model-dtype", "float16", "--model-ema"];
    let stdout = train(&data, &out, "f16", &args);
    assert!(
        stdout.contains("float16 is not recommended for training"),
        "{stdout}"
    );
    let rows = summary_rows(&out.join("f16"));
    assert!(
        rows.iter().all(|r| r.iter().all(|v| v.is_finite())),
        "{rows:?}"
    );
    assert_eq!(
        float_dtypes(&out.join("f16/last.safetensors")),
        [DType::F16]
    );
}

#[test]
fn refuses_other_dtypes_and_amp_with_a_low_model_dtype() {
    let data = dataset("e2e-model-dtype-bad", 32, 16);
    let out = data.join("runs");
    let err = train_fails(&data, &out, "f64", &["--model-dtype", "float64"]);
    assert!(
        err.contains("--model-dtype") && err.contains("float64"),
        "{err}"
    );
    let err = train_fails(&data, &out, "amp", &["--model-dtype", "bfloat16", "--amp"]);
    assert!(
        err.contains("--model-dtype") && err.contains("--amp"),
        "{err}"
    );
}
