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
    let stdout = kiln_ok(&[
        "export",
        o,
        "--model",
        "resnet18",
        "--in-chans",
        "1",
        "--img-size",
        "32",
        "--num-classes",
        "10",
        "-b",
        "2",
        "--check-forward",
    ]);
    assert!(
        stdout.contains("Checked the forward with tract: largest difference from kiln's forward"),
        "{stdout}"
    );
    // --verbose prints the record and settings written; timm's --aten-fallback and --dynamo change
    // nothing in kiln's file.
    let stdout = kiln_ok(&[
        "export",
        o,
        "--model",
        "resnet18",
        "--img-size",
        "32",
        "--verbose",
        "--aten-fallback",
        "--dynamo",
    ]);
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
    // timm's --dynamic-size is refused naming the model.
    let (_, err) = kiln_fails(&["export", o, "--model", "resnet18", "--dynamic-size"]);
    assert!(
        err.contains("--dynamic-size") && err.contains("resnet18"),
        "{err}"
    );
    // timm's --training is refused with the reason.
    let (_, err) = kiln_fails(&["export", o, "--model", "resnet18", "--training"]);
    assert!(
        err.contains("--training") && err.contains("eval forward"),
        "{err}"
    );
}
