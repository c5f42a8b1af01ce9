//! `kiln export --check-forward` in timm's onnx_export.py shape: the written file is run with tract
//! and compared with kiln's forward in the same process (src/cli/check_forward.rs holds how the
//! tolerance follows from float32's error, and the failing case).

mod common;

use common::{kiln_fails, kiln_ok};

#[test]
fn check_forward_runs_the_written_file_with_tract() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("resnet18.onnx");
    let o = out.to_str().unwrap();
    let stdout = kiln_ok(&export_args(
        o,
        "resnet18",
        &[
            "--in-chans",
            "1",
            "--num-classes",
            "10",
            "-b",
            "2",
            "--check-forward",
        ],
    ));
    assert!(
        stdout.contains(
            "Checked the forward at [1, 32, 32] with tract: largest difference from kiln's forward"
        ),
        "{stdout}"
    );
    // --verbose prints the record and settings written; timm's --aten-fallback and --dynamo change
    // nothing in kiln's file.
    let stdout = kiln_ok(&export_args(
        o,
        "resnet18",
        &["--verbose", "--aten-fallback", "--dynamo"],
    ));
    assert!(
        stdout.contains("model_config: {") && stdout.contains("opset 17, traced at batch 1"),
        "{stdout}"
    );
    // A safetensors export has no ONNX file to check.
    let st = dir.path().join("w.safetensors");
    let (_, err) = kiln_fails(&[
        "export",
        "resnet18",
        "-o",
        st.to_str().unwrap(),
        "--format",
        "safetensors",
        "--check-forward",
    ]);
    assert!(
        err.contains("--check-forward") && err.contains("safetensors"),
        "{err}"
    );
}

/// `kiln export OUT --model MODEL --img-size 32 EXTRA...`.
fn export_args<'a>(out: &'a str, model: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let base = ["export", out, "--model", model, "--img-size", "32"];
    [&base[..], extra].concat()
}

#[test]
fn dynamic_size_features_only_and_training_exports_are_checked_or_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.onnx");
    let o = out.to_str().unwrap();
    // timm's --dynamic-size: a convolutional net's file takes any height and width (checked at
    // the traced size and at the second one); a ViT's is refused with the reason.
    let stdout = kiln_ok(&export_args(
        o,
        "resnet18",
        &["--dynamic-size", "--check-forward"],
    ));
    assert!(
        stdout.contains("dynamic batch, height and width")
            && stdout.contains("Checked the forward at [3, 32, 32]")
            && stdout.contains("Checked the forward at [3, 33, 34]"),
        "{stdout}"
    );
    let (_, err) = kiln_fails(&export_args(o, "vit_tiny_patch16_224", &["--dynamic-size"]));
    assert!(
        err.contains("--dynamic-size") && err.contains("vit_tiny_patch16_224"),
        "{err}"
    );
    // timm's features_only: one output per feature map, each checked.
    let maps = [
        "--features-only",
        "--out-indices",
        "1",
        "-1",
        "--check-forward",
    ];
    let stdout = kiln_ok(&export_args(o, "resnet18", &maps));
    assert!(
        stdout.contains("Exported resnet18 feature maps") && stdout.contains("Checked the forward"),
        "{stdout}"
    );
    // timm's --training: BatchNorm on the batch's statistics, checked against kiln's training
    // forward; a forward drawing dropout masks is refused with the reason.
    let training = ["-b", "3", "--training", "--check-forward"];
    let stdout = kiln_ok(&export_args(o, "resnet18", &training));
    assert!(
        stdout.contains("training mode") && stdout.contains("Checked the forward at"),
        "{stdout}"
    );
    let dropout = ["--model-kwargs", "drop_rate=0.5", "-b", "2", "--training"];
    let (_, err) = kiln_fails(&export_args(o, "resnet18", &dropout));
    assert!(
        err.contains("--training") && err.contains("random mask"),
        "{err}"
    );
}
