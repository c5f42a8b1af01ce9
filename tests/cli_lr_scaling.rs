//! `--lr` left unset is timm's: `--lr-base` scaled by the global batch (batch size × world size ×
//! accumulation steps) / `--lr-base-size`, by its square root for `--lr-base-scale sqrt` or, when
//! that is empty, for optimizers whose name contains `ada` or `lamb` in any case. The truth is
//! train.py's `if not args.lr:` block run as written over a grid of settings
//! (scripts/fixtures/make_train_flag_fixtures.py).

mod common;

use common::argparse::strings;
use common::kiln_run;
use kiln::cli::{batch_size_reference, resolve_lr, variable_batch_loss_scale, TrainArgs};
use kiln::train::loader::SizeScheduleConfig;
use kiln::train::optim::OptimizerConfig;
use kiln::train::sched::{LrRule, SchedulerConfig};
use kiln::train::trainer::BatchLossScale;
use serde_json::Value;

const LR_SCALING: &str = include_str!("fixtures/timm_lr_scaling.json");

#[test]
fn lr_scaling_is_timms() {
    let fixture: Value = serde_json::from_str(LR_SCALING).unwrap();
    let columns = strings(&fixture["columns"]);
    let rows = fixture["rows"].as_array().unwrap();
    assert!(rows.len() > 400);
    for row in rows {
        let get = |name: &str| &row[columns.iter().position(|c| *c == name).unwrap()];
        let a = TrainArgs {
            batch_size: get("batch_size").as_u64().unwrap() as usize,
            grad_accum_steps: get("grad_accum_steps").as_u64().unwrap() as usize,
            optim: OptimizerConfig::new(get("opt").as_str().unwrap()),
            sched: SchedulerConfig {
                lr_rule: LrRule {
                    lr_base: get("lr_base").as_f64().unwrap(),
                    lr_base_size: get("lr_base_size").as_u64().unwrap() as usize,
                    lr_base_scale: get("lr_base_scale").as_str().unwrap().into(),
                    lr: get("lr").as_f64(),
                },
                ..SchedulerConfig::default()
            },
            ..TrainArgs::default()
        };
        let world = get("world_size").as_u64().unwrap() as usize;
        let want = get("resolved_lr").as_f64().unwrap();
        let got = resolve_lr(&a, world, a.batch_size as f64);
        // f64 arithmetic: Python's `x ** 0.5` and Rust's sqrt may differ in the last bit.
        assert!(
            (got - want).abs() <= 2.0 * f64::EPSILON * want.abs(),
            "{row}: kiln {got}, timm {want}"
        );
    }
}

/// With `--train-img-sizes`, the batch the lr scales by is the size schedule's policy-average
/// batch size (train.py's `batch_size_reference`), timm's from its `ScheduledBatchSampler`
/// (train/tests/fixtures/sched_size, made by scripts/fixtures/make_sched_size_fixtures.py), which
/// `--variable-batch-loss-scale` scales each batch's loss against too.
#[test]
fn scheduled_sizes_scale_by_the_policy_average_batch() {
    let fixture: Value = serde_json::from_str(include_str!(
        "../train/tests/fixtures/sched_size/sched_size.json"
    ))
    .unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    let case = (cases.iter())
        .find(|c| c["name"] == "progressive_wide_mix_probs")
        .unwrap();
    let (c, timm_average) = (
        &case["config"],
        case["average_batch_size"].as_f64().unwrap(),
    );
    let list = |k: &str| -> Vec<usize> {
        (c[k].as_array().unwrap().iter())
            .map(|v| v.as_u64().unwrap() as usize)
            .collect()
    };
    let a = TrainArgs {
        sched: SchedulerConfig::new("cosine", c["epochs"].as_u64().unwrap() as usize),
        sizes: SizeScheduleConfig {
            train_img_sizes: Some(list("sizes")),
            train_batch_sizes: Some(list("batch_sizes")),
            train_size_probs: Some(vec![2.0, 1.0, 1.0]),
            train_size_schedule: "progressive".into(),
            train_size_schedule_spread: c["spread"].as_f64().unwrap(),
            train_size_random_mix: c["random_mix"].as_f64().unwrap(),
            ..SizeScheduleConfig::default()
        },
        ..TrainArgs::default()
    };
    let reference = batch_size_reference(&a).unwrap();
    assert!((reference - timm_average).abs() <= 1e-12 * timm_average);
    // sgd: linear scaling of lr_base 0.1 by the global batch over 256, here on 2 ranks.
    let want = 0.1 * timm_average * 2.0 / 256.0;
    let got = resolve_lr(&a, 2, reference);
    assert!(
        (got - want).abs() <= 1e-12 * want,
        "kiln {got}, timm {want}"
    );
    let plain = TrainArgs::default();
    assert_eq!(
        batch_size_reference(&plain).unwrap(),
        plain.batch_size as f64
    );
    // --variable-batch-loss-scale scales relative to the same reference, and only with sizes.
    let mode = |m: &str, a: &TrainArgs| {
        let mut a = a.clone();
        a.sizes.variable_batch_loss_scale = m.into();
        variable_batch_loss_scale(&a, reference)
    };
    let linear = BatchLossScale {
        reference,
        sqrt: false,
    };
    assert_eq!(mode("linear", &a), Some(linear));
    assert_eq!(
        mode("sqrt", &a),
        Some(BatchLossScale {
            sqrt: true,
            ..linear
        })
    );
    assert_eq!(mode("none", &a), None);
    assert_eq!(mode("linear", &plain), None);
}

/// The command line's lr goes through the rule: 64 × 2 accumulation steps with `LAMB` is
/// 0.1 × √(128 / 256); `--lr 0` counts as unset (timm's `if not args.lr`), and a zero
/// `--lr-base-size` is refused by name.
#[test]
fn the_command_line_scales_by_the_accumulated_batch() {
    let png = std::env::temp_dir().join(format!("kiln-lr-{}.png", std::process::id()));
    let base = [
        "schedule",
        "--sched",
        "const",
        "--epochs",
        "1",
        "--warmup-epochs",
        "0",
        "--updates-per-epoch",
        "1",
        "-b",
        "64",
        "--grad-accum-steps",
        "2",
        "--opt",
        "LAMB",
        "--plot",
        png.to_str().unwrap(),
    ];
    for extra in [&[][..], &["--lr", "0"]] {
        let (code, stdout, stderr) = kiln_run(&[&base[..], extra].concat());
        assert!(code == Some(0), "{stderr}");
        let lr: f64 = stdout
            .lines()
            .nth(1)
            .unwrap()
            .rsplit(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let want = 0.1 * 0.5f64.sqrt();
        assert!((lr - want).abs() <= 2.0 * f64::EPSILON * want, "{stdout}");
    }
    std::fs::remove_file(&png).ok();
    let (code, _, stderr) = kiln_run(&["train", "/no/such/data", "--lr-base-size", "0"]);
    assert!(
        code != Some(0) && stderr.contains("--lr-base-size: must be at least 1"),
        "{stderr}"
    );
}
