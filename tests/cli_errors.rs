//! Bad input gets a clear error naming the file, flag or model at fault, and no panic.

use std::process::Command;

fn kiln(args: &[&str]) -> (bool, String) {
    kiln_env(args, &[])
}

/// Runs kiln with `args`, without the environment variables in `unset`.
fn kiln_env(args: &[&str], unset: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    for var in unset {
        cmd.env_remove(var);
    }
    let out = cmd.args(args).output().expect("run kiln");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !stderr.contains("panicked"),
        "kiln {args:?} panicked: {stderr}"
    );
    (out.status.success(), stderr)
}

fn fails_with(args: &[&str], needle: &str) {
    let (ok, stderr) = kiln(args);
    assert!(!ok, "kiln {args:?} should fail");
    assert!(
        stderr.contains(needle),
        "kiln {args:?}: expected {needle:?} in:\n{stderr}"
    );
}

#[test]
fn missing_data_folder_is_named() {
    fails_with(
        &["train", "/no/such/dataset"],
        "data folder /no/such/dataset does not exist",
    );
}

#[test]
fn unknown_model_suggests_close_names() {
    fails_with(
        &["train", "--model", "resnet5O"],
        "unknown model 'resnet5O' (did you mean resnet50",
    );
}

#[test]
fn invalid_flag_values_name_the_flag() {
    fails_with(
        &["train", "--epochs", "many"],
        "invalid value 'many' for '--epochs",
    );
    fails_with(&["train", "--lr=-1"], "--lr: must be a positive number");
    fails_with(
        &["train", "--smoothing", "1.5"],
        "--smoothing: must be in [0, 1)",
    );
    fails_with(
        &["train", "--opt", "lionx"],
        "--opt: unknown optimizer 'lionx'",
    );
    fails_with(
        &["train", "--opt", "adahessian"],
        "--opt: adahessian is second-order",
    );
    fails_with(
        &["train", "--sched", "wavy"],
        "--sched: unknown schedule 'wavy'",
    );
    fails_with(&["train", "--gp", "median"], "unknown pool type 'median'");
}

#[test]
fn scheduled_size_flags_timm_refuses_name_the_flag() {
    let sized =
        |extra: &[&'static str]| [&["train", "--train-img-sizes", "24", "32"], extra].concat();
    for (extra, needle) in [
        (
            &["--train-size-probs", "1"][..],
            "--train-size-probs: 1 values for 2 --train-img-sizes",
        ),
        (
            &["--train-size-probs", "1", "-0.5"],
            "--train-size-probs: weights must be finite and non-negative",
        ),
        (
            &["--train-size-probs", "0", "0"],
            "--train-size-probs: weights must have a positive sum",
        ),
        (
            &["--train-batch-sizes", "16", "0"],
            "--train-batch-sizes: all scheduled batch sizes must be positive",
        ),
        (
            &["--train-batch-sizes", "16"],
            "--train-batch-sizes: 1 values for 2 --train-img-sizes",
        ),
        (
            &["--train-size-schedule", "cosine"],
            "--train-size-schedule: 'cosine' is not constant or progressive",
        ),
        (
            &[
                "--train-size-schedule",
                "progressive",
                "--train-size-random-mix",
                "1.5",
            ],
            "--train-size-random-mix: must be between 0 and 1",
        ),
        (
            &["--use-multi-epochs-loader"],
            "--use-multi-epochs-loader: not supported with scheduled input sizes",
        ),
        (
            &["--aug-splits", "2"],
            "--aug-splits: augmentation splits are not supported",
        ),
        (
            &["--variable-batch-loss-scale", "cubic"],
            "--variable-batch-loss-scale: 'cubic' is not none, sqrt or linear",
        ),
    ] {
        fails_with(&sized(extra), needle);
    }
    fails_with(
        &[
            "train",
            "--train-img-sizes",
            "24",
            "--train-size-schedule",
            "progressive",
        ],
        "--train-size-schedule: a progressive schedule requires at least two --train-img-sizes",
    );
    fails_with(
        &["train", "--train-img-sizes", "0", "24"],
        "--train-img-sizes: all sizes must be positive",
    );
}

#[test]
fn cuda_without_a_driver_is_an_error_not_a_panic() {
    // Without LD_LIBRARY_PATH neither a driver nor the emulator can be found.
    let (ok, stderr) = kiln_env(&["train", "--device", "cuda:0"], &["LD_LIBRARY_PATH"]);
    assert!(!ok, "--device cuda:0 without a driver should fail");
    assert!(
        stderr.contains("no CUDA device: libcuda.so was not found"),
        "{stderr}"
    );
    fails_with(
        &["train", "--device", "tpu"],
        "--device: 'tpu' is not auto, cpu, cuda or cuda:N",
    );
}

#[test]
fn missing_checkpoint_is_named() {
    fails_with(
        &["validate", "--checkpoint", "/no/such/ckpt.safetensors"],
        "/no/such/ckpt.safetensors",
    );
}

#[test]
fn bad_config_file_is_named() {
    let dir = std::env::temp_dir().join(format!("kiln-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bad.yaml");
    std::fs::write(&cfg, "epochs: [1, 2\n").unwrap();
    fails_with(
        &["train", "--config", cfg.to_str().unwrap()],
        "bad.yaml: not valid YAML",
    );
    std::fs::write(&cfg, "no_such_flag: 3\n").unwrap();
    fails_with(
        &["train", "--config", cfg.to_str().unwrap()],
        "--no-such-flag",
    );
}

#[test]
fn models_lists_with_wildcards() {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["models", "resnet*d"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "resnet101d\nresnet152d\nresnet18d\nresnet200d\nresnet26d\nresnet34d\nresnet50d\n\
         resnetaa101d\nresnetaa34d\nresnetaa50d\nresnetblur101d\nresnetblur50d\n\
         resnetv2_101d\nresnetv2_152d\nresnetv2_18d\nresnetv2_34d\nresnetv2_50d\n"
    );
}

#[test]
fn empty_class_folder_is_named() {
    let root = std::env::temp_dir().join(format!("kiln-empty-class-{}", std::process::id()));
    for d in [
        "train/shoe",
        "train/sock",
        "validation/shoe",
        "validation/sock",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for d in ["train/shoe", "validation/shoe", "validation/sock"] {
        std::fs::write(root.join(d).join("a.png"), b"not decoded while listing").unwrap();
    }
    let expected = format!(
        "class folder {} holds no image file",
        root.join("train/sock").display()
    );
    fails_with(&["train", root.to_str().unwrap()], &expected);
    std::fs::remove_dir_all(root).ok();
}

/// `--device auto`, the default, stands for the CPU where no GPU is present; kiln's CUDA
/// emulator (on the tests' library path) is no GPU. The run's first line says so.
#[test]
fn the_default_device_is_the_cpu_without_a_gpu_and_the_first_line_names_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["train", "--data-dir", "/no/such/data"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().next(), Some("Device cpu"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/no/such/data"), "{stderr}");
}

#[test]
fn export_refuses_bad_flags_by_name_with_status_2() {
    let out = std::env::temp_dir().join("kiln_cli_errors_export.onnx");
    let out = out.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["--format", "tflite"],
            "--format: unknown format 'tflite' (kiln exports onnx and safetensors)",
        ),
        (
            vec!["--opset", "16"],
            "--opset: opset 16 is not written (kiln writes 17 and 18)",
        ),
        (
            vec!["--checkpoint", "/no/such.pth"],
            "--checkpoint: /no/such.pth is not a file",
        ),
    ] {
        let mut all = vec!["export", "resnet18", "-o", out];
        all.extend(args);
        let status = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(&all)
            .output()
            .expect("run kiln")
            .status;
        assert_eq!(status.code(), Some(2), "kiln {all:?}");
        fails_with(&all, needle);
    }
}
