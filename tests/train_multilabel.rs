//! Multi-label classification end to end: images of four Fashion-MNIST items (from the embedded
//! subset) in a 2×2 grid, labelled with the items' classes (1 to 4 of 10) by `labels.csv`
//! (training) and `labels.json` (validation). `kiln train --multi-label` learns them (mAP well
//! above the chance level of the validation labels), writes mAP and F1 to summary.csv,
//! `kiln validate` on the checkpoint reports the same mAP, and `kiln infer` on it lists
//! each image's classes above the threshold, whose micro F1 against the labels is validate's.

mod common;

use common::{kiln_fails, kiln_ok, validate_row, Scratch};
use kiln::train::data::{Dataset, IdxDataset};
use kiln::train::loader::{grid_png, Batch};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Writes `n` grid images of 4 items of `items` (drawn by an LCG from `seed`) into `dir`; returns
/// each file's class names.
fn write_split(
    items: &IdxDataset,
    dir: &Path,
    n: usize,
    seed: u64,
) -> BTreeMap<String, BTreeSet<String>> {
    std::fs::create_dir_all(dir).unwrap();
    let mut state = seed;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize % items.len()
    };
    let mut labels = BTreeMap::new();
    for i in 0..n {
        let picks: Vec<usize> = (0..4).map(|_| next()).collect();
        let mut images = Vec::new();
        for &p in &picks {
            images.extend(items.load(p).unwrap().image.data);
        }
        let grid = Batch {
            images,
            n: 4,
            h: 28,
            w: 28,
            c: 1,
            ..Batch::default()
        };
        let file = format!("img{i}.png");
        std::fs::write(dir.join(&file), grid_png(&grid, 2).unwrap().bytes).unwrap();
        let names = picks.iter().map(|&p| items.label(p).to_string()).collect();
        labels.insert(file, names);
    }
    labels
}

/// The chance level of mAP (percent): a scorer that ranks at random has each class's expected AP
/// near that class's frequency, so the mean frequency over the classes.
fn chance_map(labels: &BTreeMap<String, BTreeSet<String>>, classes: usize) -> f64 {
    let n = labels.len() as f64;
    let total: usize = labels.values().map(BTreeSet::len).sum();
    100.0 * total as f64 / n / classes as f64
}

#[test]
fn multi_label_trains_validates_and_infers() {
    let root = Scratch::new("multilabel");
    let fashion = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist");
    let train_items = IdxDataset::open(&fashion, "train", 1).unwrap();
    let val_items = IdxDataset::open(&fashion, "t10k", 1).unwrap();
    let train = write_split(&train_items, &root.join("train"), 512, 1);
    let val = write_split(&val_items, &root.join("validation"), 128, 2);
    let csv: String = (train.iter())
        .map(|(f, l)| format!("{f},{}\n", l.iter().cloned().collect::<Vec<_>>().join(" ")))
        .collect();
    std::fs::write(root.join("train/labels.csv"), format!("file,labels\n{csv}")).unwrap();
    let json = serde_json::to_string(&val).unwrap();
    std::fs::write(root.join("validation/labels.json"), json).unwrap();

    let out = root.join("runs");
    let (d, o) = (root.to_str().unwrap(), out.to_str().unwrap());
    let common = [
        "--model",
        "resnet18",
        "--img-size",
        "32",
        "--no-aug",
        "--crop-pct",
        "1",
        "-b",
        "32",
        "-j",
        "1",
    ];
    let stdout = kiln_ok(
        &[
            &["train", d, "--multi-label", "--eval-metric", "map"][..],
            &common,
            &[
                "--epochs",
                "4",
                "--opt",
                "adamw",
                "--lr",
                "0.002",
                "--sched",
                "const",
                "--warmup-epochs",
                "0",
                "--mixup",
                "0.2",
                "--log-interval",
                "100",
                "--output",
                o,
                "--experiment",
                "ml",
            ],
        ]
        .concat(),
    );
    assert!(
        stdout.contains("mAP:") && stdout.contains("AP per class: 0:"),
        "{stdout}"
    );
    let run = out.join("ml");
    let summary = std::fs::read_to_string(run.join("summary.csv")).unwrap();
    let mut lines = summary.lines();
    assert_eq!(
        lines.next(),
        Some("epoch,train_loss,eval_loss,eval_top1,eval_top5,eval_map,eval_f1,lr")
    );
    let last: Vec<f64> = (lines.last().unwrap().split(','))
        .map(|v| v.parse().unwrap())
        .collect();
    let (map, f1) = (last[5], last[6]);
    let chance = chance_map(&val, 10);
    // Well above chance: at least a third of the way from chance to a perfect ranking.
    let floor = chance + (100.0 - chance) / 3.0;
    assert!(
        map > floor,
        "mAP {map} after training, chance {chance:.1}, wanted above {floor:.1}\n{stdout}"
    );

    // validate on the last checkpoint, without --multi-label (the run's args.yaml marks it
    // multi-label): the same mAP and F1 as the run's last evaluation.
    let ck = run.join("last.safetensors");
    let c = ck.to_str().unwrap();
    let cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    let row = validate_row(cmd, &root, &["--checkpoint", c, "--crop-pct", "1"]);
    // Batches of 16 here, 32 in training: the sums may round apart, so near, not equal.
    let near = |a: f64, b: f64| (a - b).abs() < 0.5;
    let (vmap, vf1) = (row["map"].as_f64().unwrap(), row["f1"].as_f64().unwrap());
    assert!(
        near(vmap, map) && near(vf1, f1),
        "{row} vs summary {map}, {f1}"
    );

    // infer: the run's args.yaml marks the checkpoint multi-label; each image's classes above
    // 0.5, whose micro F1 against the labels is validate's.
    let res = root.join("res");
    let infer = [
        "infer",
        d,
        "--checkpoint",
        c,
        "--img-size",
        "32",
        "--crop-pct",
        "1",
        "-b",
        "16",
        "--results-dir",
        res.to_str().unwrap(),
        "--results-format",
        "json",
    ];
    let stdout = kiln_ok(&infer);
    assert!(stdout.contains("Multi-label"), "{stdout}");
    let got: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(res.join("resnet18-32.json")).unwrap())
            .unwrap();
    let (mut tp, mut predicted, mut actual) = (0, 0, 0);
    for (file, truth) in &val {
        let idx = got[file]["index"].as_array().unwrap();
        let probs = got[file]["prob"].as_array().unwrap();
        assert_eq!(idx.len(), probs.len());
        assert!(probs.iter().all(|p| p.as_f64().unwrap() >= 0.5), "{file}");
        let found: BTreeSet<String> = idx.iter().map(|i| i.to_string()).collect();
        tp += found.intersection(truth).count();
        predicted += found.len();
        actual += truth.len();
    }
    let infer_f1 = 100.0 * 2.0 * tp as f64 / (predicted + actual) as f64;
    let same = (infer_f1 - vf1).abs() < 1e-6;
    assert!(same, "infer F1 {infer_f1}, validate {vf1}");

    // Bad input is one error line naming what is wrong.
    std::fs::write(
        root.join("validation/labels.json"),
        r#"{"nope.png": ["1"]}"#,
    )
    .unwrap();
    let (_, err) = kiln_fails(&["validate", d, "--multi-label", "--checkpoint", c]);
    assert!(
        err.contains("labels.json") && err.contains("nope.png is not a file"),
        "{err}"
    );
    let (_, err) = kiln_fails(&["train", d, "--eval-metric", "map"]);
    assert!(
        err.contains("--eval-metric") && err.contains("--multi-label"),
        "{err}"
    );
}
