//! `kiln validate` as timm's validate.py: several checkpoints in one call (a run folder), EMA
//! weights, test-time flips, AMP, and a results file.

mod common;

use common::{dataset, kiln_ok, train};

fn validate(args: &[&str]) -> String {
    kiln_ok(&[&["validate"], args].concat())
}

#[test]
fn validates_a_run_folder_with_ema_tta_and_a_results_file() {
    let data = dataset("validate", 64, 32);
    let out = data.join("runs");
    let log = train(&data, &out, "ema", &["--epochs", "2", "--model-ema"]);
    assert!(
        log.contains("Test (EMA): ["),
        "the EMA is validated each epoch:\n{log}"
    );
    let run = out.join("ema");
    let results = data.join("results.json");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    let res = results.to_str().unwrap();
    let args = ["--checkpoint", r, "--use-ema", "--tta", "2", "-b", "16"];
    validate(
        &[
            &[d][..],
            &args,
            &["--results-file", res, "--results-format", "json"],
        ]
        .concat(),
    );
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    let files = std::fs::read_dir(&run)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "safetensors")
        })
        .count();
    assert_eq!(rows.len(), files, "one row per checkpoint in the folder");
    for row in rows {
        let top1 = row["top1"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&top1), "{row}");
        assert_eq!(row["samples"], 32);
        assert!(row["param_count"].as_u64().unwrap() > 1_000_000);
        assert!(row["img_per_sec"].as_f64().unwrap() > 0.0);
    }
    // The EMA weights are not the model's: their loss differs.
    let last = run.join("last.safetensors");
    let l = last.to_str().unwrap();
    let loss = |extra: &[&str]| -> String {
        let out = validate(&[&[d, "--checkpoint", l, "-b", "16"][..], extra].concat());
        let json = out
            .lines()
            .skip_while(|l| *l != "--result")
            .nth(1)
            .unwrap()
            .to_string();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        format!("{:.6}", v["loss"].as_f64().unwrap())
    };
    assert_ne!(loss(&[]), loss(&["--use-ema"]));
    assert_eq!(loss(&["--amp", "--amp-dtype", "bfloat16"]).len(), 8);
}

/// The `--result` JSON line `kiln validate` prints for its one checkpoint.
fn result_row(stdout: &str) -> serde_json::Value {
    let line = stdout.lines().skip_while(|l| *l != "--result").nth(1);
    serde_json::from_str(line.expect("a --result line")).unwrap()
}

/// Training's evaluation and `kiln validate` resolve their data settings as timm does, through one
/// function: for resnet18 on an image folder, crop 0.95 and bicubic from the model's pretrained
/// config (not DataConfig's 0.875), so validating the run's model_best with --use-train-size
/// reproduces the run's best metric; without it, validate takes the model's test crop (1.0) as
/// timm's validate.py does.
#[test]
fn validate_of_model_best_reproduces_the_runs_best_metric() {
    let root = common::Scratch::new("best");
    common::write_image_folder(&root, 3, 4, 48, 40);
    let out = root.join("runs");
    let log = train(
        &root,
        &out,
        "best",
        &["--img-size", "32", "--epochs", "1", "-b", "4", "-vb", "8"],
    );
    assert!(
        log.contains("interpolation bicubic") && log.contains("crop_pct 0.95"),
        "training resolves the model's crop and interpolation:\n{log}"
    );
    let rows = common::summary_rows(&out.join("best"));
    let (eval_loss, eval_top1) = (rows[0][2], rows[0][3]);
    let best = out.join("best/model_best.safetensors");
    let (r, b) = (root.to_str().unwrap(), best.to_str().unwrap());
    let args = [
        r,
        "--checkpoint",
        b,
        "--img-size",
        "32",
        "-b",
        "8",
        "-j",
        "1",
    ];
    let row = result_row(&validate(&[&args[..], &["--use-train-size"]].concat()));
    assert_eq!(row["crop_pct"], 0.95);
    assert_eq!(row["img_size"], 32);
    assert_eq!(row["samples"], 12);
    assert_eq!(row["top1"].as_f64().unwrap(), eval_top1, "{row}");
    // The same images through the same model in the same batches: the mean loss agrees up to the
    // f32 rounding of its sum.
    let loss = row["loss"].as_f64().unwrap();
    assert!(
        (loss - eval_loss).abs() <= 1e-6 * eval_loss.abs(),
        "validate {loss}, training {eval_loss}"
    );
    let row = result_row(&validate(&args));
    assert_eq!(
        row["crop_pct"], 1.0,
        "timm's validate.py takes the test crop"
    );
}

/// A validation command as timm's validate.py takes it runs unchanged: `--data-dir`, `--log-freq`,
/// `--gp`, `--input-img-mode`, `--model-kwargs`, `--seed`, and the loader switches that change
/// nothing in kiln (`--no-prefetcher`, `--pin-mem`).
#[test]
fn takes_validate_pys_option_names() {
    let data = dataset("validate-names", 64, 32);
    let out = data.join("runs");
    train(&data, &out, "names", &["--epochs", "1"]);
    let last = out.join("names/last.safetensors");
    let (d, l) = (data.to_str().unwrap(), last.to_str().unwrap());
    let log = validate(&[
        "--data-dir",
        d,
        "--checkpoint",
        l,
        "--log-freq",
        "1",
        "--gp",
        "avg",
        "--input-img-mode",
        "L",
        "--model-kwargs",
        "zero_init_last=False",
        "--seed",
        "7",
        "--no-prefetcher",
        "--pin-mem",
        "-b",
        "16",
    ]);
    // 32 images in batches of 16, a log line for each with --log-freq 1.
    assert!(
        log.contains("Test: [   0/1]") && log.contains("Test: [   1/1]"),
        "{log}"
    );
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "validate",
            "--data-dir",
            d,
            "--checkpoint",
            l,
            "--input-img-mode",
            "RGB",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && stderr.contains("--input-img-mode"),
        "{stderr}"
    );
}

/// validate.py's options that need Python or the network, several GPUs or NaFlex models are
/// refused with one line naming the flag and the reason.
#[test]
fn refuses_validate_pys_python_and_network_options_in_one_line() {
    let cases: [&[&str]; 13] = [
        &["--dataset", "tfds/imagenet2012"],
        &["--num-samples", "100"],
        &["--dataset-download"],
        &["--input-key", "image"],
        &["--target-key", "label"],
        &["--dataset-trust-remote-code"],
        &["--tf-preprocessing"],
        &["--torchscript"],
        &["--torchcompile"],
        &["--aot-autograd"],
        &["--fuser", "te"],
        &["--num-gpu", "2"],
        &["--naflex-loader"],
    ];
    for case in cases {
        let args = [&["validate", "/no/such/data"][..], case].concat();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "kiln {args:?} should fail");
        assert_eq!(stderr.trim().lines().count(), 1, "kiln {args:?}:\n{stderr}");
        assert!(
            stderr.starts_with(&format!("error: {}: not supported by kiln: ", case[0])),
            "kiln {args:?}:\n{stderr}"
        );
    }
}
