//! `kiln infer` as timm's inference.py: its top-1 on a validation split is `kiln validate`'s on
//! the same checkpoint, its CSV and JSON files have inference.py's columns and keys, and bad
//! input is one error line naming the flag or file.

mod common;

use common::{dataset, kiln_fails, kiln_ok, train, validate_row, write_image_folder};
use std::process::Command;

#[test]
fn infer_top1_equals_validate_and_files_have_timms_layout() {
    let data = dataset("infer", 64, 32);
    let out = data.join("runs");
    train(&data, &out, "a", &["--epochs", "1", "--img-size", "32"]);
    let ck = out.join("a/last.safetensors");
    let (d, c) = (data.to_str().unwrap(), ck.to_str().unwrap());
    let top1 = validate_row(
        Command::new(env!("CARGO_BIN_EXE_kiln")),
        &data,
        &["--checkpoint", c],
    )["top1"]
        .as_f64()
        .unwrap();
    let res = data.join("res");
    let r = res.to_str().unwrap();
    let base = [
        d,
        "--checkpoint",
        c,
        "--img-size",
        "32",
        "-b",
        "16",
        "--results-dir",
        r,
    ];
    kiln_ok(
        &[
            &["infer"][..],
            &base,
            &["--include-index", "--results-format", "csv", "json"],
        ]
        .concat(),
    );
    // inference.py's default name: <model>-<img_size>; columns filename, index, prob.
    let csv = std::fs::read_to_string(res.join("resnet18-32.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("filename,index,prob"));
    let labels = std::fs::read(data.join("t10k-labels-idx1-ubyte")).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 32);
    let hits = rows
        .iter()
        .enumerate()
        .filter(|(i, r)| r[1].parse::<u8>().unwrap() == labels[8 + i])
        .count();
    assert!(
        (hits as f64 * 100.0 / 32.0 - top1).abs() < 1e-9,
        "{hits}/32 vs {top1}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(res.join("resnet18-32.json")).unwrap())
            .unwrap();
    let first = &json[rows[0][0]];
    assert_eq!(first["index"].as_u64(), rows[0][1].parse().ok(), "{first}");
    assert!(first["prob"].as_f64().unwrap() > 0.0);
    // --topk 3 with separate columns: index_0..2, label_0..2 (the class map's), logit_0..2.
    let map = data.join("classes.txt");
    std::fs::write(&map, (0..10).map(|i| format!("c{i}\n")).collect::<String>()).unwrap();
    let extra = [
        "--topk",
        "3",
        "--results-separate-col",
        "--include-index",
        "--class-map",
        map.to_str().unwrap(),
        "--output-type",
        "logit",
        "--results-file",
        "top3.csv",
    ];
    kiln_ok(&[&["infer"][..], &base, &extra].concat());
    let csv = std::fs::read_to_string(res.join("top3.csv")).unwrap();
    assert_eq!(
        csv.lines().next(),
        Some("filename,index_0,index_1,index_2,label_0,label_1,label_2,logit_0,logit_1,logit_2")
    );
    // Bad input: one line naming the flag (status 2) or the folder.
    let (code, err) = kiln_fails(&[&["infer"][..], &base, &["--topk", "11"]].concat());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--topk") && err.contains("10 classes"),
        "{err}"
    );
    let (code, err) =
        kiln_fails(&[&["infer"][..], &base, &["--results-format", "parquet"]].concat());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--results-format") && err.contains("parquet"),
        "{err}"
    );
    // An unreadable image among readable ones (10 classes of 1-channel images, as trained).
    let folder = data.join("folder");
    write_image_folder(&folder, 10, 1, 32, 32);
    let bad = folder.join("validation/class3/bad.png");
    std::fs::write(&bad, b"not a png").unwrap();
    let f = folder.to_str().unwrap();
    let (_, err) = kiln_fails(&[
        "infer",
        f,
        "--checkpoint",
        c,
        "--in-chans",
        "1",
        "--img-size",
        "32",
    ]);
    assert!(
        err.contains("bad.png") && err.lines().filter(|l| l.starts_with("error")).count() == 1,
        "{err}"
    );
    let missing = data.join("missing");
    let (_, err) = kiln_fails(&["infer", missing.to_str().unwrap(), "--checkpoint", c]);
    assert!(
        err.contains("missing") && err.lines().filter(|l| l.starts_with("error")).count() == 1,
        "{err}"
    );
}
