//! `kiln validate` as timm's validate.py: several checkpoints in one call (a run folder), EMA
//! weights, test-time flips, AMP, and a results file.

mod common;

use common::{dataset, train};
use std::process::Command;

fn validate(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("validate")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "kiln validate {args:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
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
    std::fs::remove_dir_all(&data).ok();
}
