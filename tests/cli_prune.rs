//! `kiln prune` end to end on resnet18 at 32×32: the report's parameters and MACs fall by the
//! ratio asked for, the written model reloads (in `kiln prune`, `kiln export` and `kiln validate`),
//! taylor reads
//! an image folder, and bad flags are refused by name with status 2.

mod common;

use common::kiln_run as kiln;
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("kiln-cli-prune-{}-{name}", std::process::id()))
}

/// The two numbers of a report line `label: A -> B ...`.
fn before_after(stdout: &str, label: &str) -> (f64, f64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no '{label}' line in {stdout}"));
    let rest = line.split_once(": ").unwrap().1;
    let mut nums = rest.split(" -> ");
    let a = nums.next().unwrap().trim().parse().unwrap();
    let b = nums
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (a, b)
}

const BASE: [&str; 6] = [
    "prune",
    "--model",
    "resnet18",
    "--img-size",
    "32",
    "--num-classes",
];

fn prune(out: &Path, extra: &[&str]) -> String {
    let mut args: Vec<&str> = BASE.to_vec();
    args.extend(["10", "-o", out.to_str().unwrap()]);
    args.extend(extra);
    let (code, stdout, stderr) = kiln(&args);
    assert_eq!(code, Some(0), "kiln {args:?}: {stderr}");
    stdout
}

#[test]
fn prune_halves_the_macs_and_the_file_reloads() {
    let out = tmp("l1.safetensors");
    let stdout = prune(&out, &["--criterion", "l1", "--ratio", "0.5"]);
    let (m0, m1) = before_after(&stdout, "MACs");
    assert!((0.45..=0.5).contains(&(m1 / m0)), "{stdout}");
    let (p0, p1) = before_after(&stdout, "params");
    assert!(p1 < p0 && p0 > 11e6, "{stdout}");
    let (l0, l1) = before_after(&stdout, "latency_ms");
    assert!(l0 > 0.0 && l1 > 0.0, "{stdout}");
    // Pruned again from the pruned file, by parameters this time, rounded to 8 channels.
    let again = tmp("again.safetensors");
    let ck = out.to_str().unwrap();
    let extra = [
        "--checkpoint",
        ck,
        "--criterion",
        "fpgm",
        "--target",
        "params",
        "--round-to",
        "8",
    ];
    let stdout = prune(&again, &extra);
    let (q0, q1) = before_after(&stdout, "params");
    assert_eq!(q0, p1, "{stdout}");
    assert!(q1 <= 0.5 * q0 * 1.02, "{stdout}");
    // And exported.
    let onnx = tmp("pruned.onnx");
    let args = [
        "export",
        "resnet18",
        "--checkpoint",
        ck,
        "--img-size",
        "32",
        "-o",
        onnx.to_str().unwrap(),
    ];
    let (code, _, stderr) = kiln(&args);
    assert_eq!(code, Some(0), "{stderr}");
    for f in [out, again, onnx] {
        std::fs::remove_file(f).unwrap();
    }
}

#[test]
fn a_pruned_grayscale_model_validates() {
    let data = common::dataset("prune-validate", 8, 16);
    let out = tmp("gray.safetensors");
    prune(&out, &["--in-chans", "1", "--criterion", "bn-scale"]);
    let (d, ck) = (data.to_str().unwrap(), out.to_str().unwrap());
    let args = [
        "validate",
        d,
        "--checkpoint",
        ck,
        "--img-size",
        "32",
        "-b",
        "16",
    ];
    let (code, stdout, stderr) = kiln(&args);
    assert_eq!(code, Some(0), "kiln {args:?}: {stdout}{stderr}");
    assert!(
        stdout.contains("Top-1") || stdout.contains("top1"),
        "{stdout}"
    );
    std::fs::remove_file(out).unwrap();
}

#[test]
fn taylor_reads_gradients_from_an_image_folder() {
    let dir = tmp("images");
    for class in 0..2u8 {
        let sub = dir.join(format!("c{class}"));
        std::fs::create_dir_all(&sub).unwrap();
        for i in 0..2u8 {
            let file = std::fs::File::create(sub.join(format!("{i}.png"))).unwrap();
            let mut enc = png::Encoder::new(std::io::BufWriter::new(file), 8, 8);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let data: Vec<u8> = (0..8 * 8 * 3)
                .map(|k| (k as u8).wrapping_mul(31 + class + i))
                .collect();
            enc.write_header().unwrap().write_image_data(&data).unwrap();
        }
    }
    let out = tmp("taylor.safetensors");
    let stdout = prune(
        &out,
        &[
            "--criterion",
            "taylor",
            "--data",
            dir.to_str().unwrap(),
            "--global",
        ],
    );
    let (m0, m1) = before_after(&stdout, "MACs");
    assert!(m1 < 0.51 * m0, "{stdout}");
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_file(out).unwrap();
}

#[test]
fn bad_flags_are_refused_by_name_with_status_2() {
    let out = tmp("bad.safetensors");
    for (extra, needle) in [
        (
            vec!["--criterion", "l3"],
            "--criterion: unknown criterion 'l3'",
        ),
        (vec!["--ratio", "1.5"], "--ratio: 1.5 is not in [0, 1)"),
        (
            vec!["--target", "flops"],
            "--target: unknown target 'flops'",
        ),
        (vec!["--max-ratio", "0"], "--max-ratio: 0 is not in (0, 1]"),
        (vec!["--round-to", "0"], "--round-to: must be at least 1"),
        (
            vec!["--criterion", "taylor"],
            "--data: taylor importance needs an image folder",
        ),
        (
            vec!["--checkpoint", "/no/such.safetensors"],
            "--checkpoint: /no/such.safetensors is not a file",
        ),
    ] {
        let mut args: Vec<&str> = BASE.to_vec();
        args.extend(["10", "-o", out.to_str().unwrap()]);
        args.extend(&extra);
        let (code, _, stderr) = kiln(&args);
        assert_eq!(code, Some(2), "kiln {args:?}: {stderr}");
        assert!(stderr.contains(needle), "kiln {args:?}: {stderr}");
    }
    assert!(!out.exists());
}

#[test]
fn a_pruned_checkpoint_fine_tunes_and_resumes_with_its_shapes() {
    let data = common::dataset("prune-train", 32, 16);
    let ck = tmp("fine-tune.safetensors");
    let stdout = prune(&ck, &["--in-chans", "1", "--criterion", "l1"]);
    let (_, pruned_params) = before_after(&stdout, "params");
    let out = tmp("runs");
    let epochs = |n: &'static str, from: (&'static str, &str)| {
        let extra = ["--img-size", "32", "--epochs", n, from.0, from.1];
        common::train(&data, &out, "ft", &extra)
    };
    let stdout = epochs("1", ("--initial-checkpoint", ck.to_str().unwrap()));
    assert!(
        stdout.contains(&format!("param count: {pruned_params}")),
        "the model is built with the pruned shapes ({pruned_params} parameters): {stdout}"
    );
    let last = out.join("ft").join("last.safetensors");
    let header = std::fs::read(&last).unwrap();
    assert!(
        String::from_utf8_lossy(&header[..4096.min(header.len())]).contains("kiln.pruned_shapes"),
        "the fine-tuned checkpoint records its shapes"
    );
    let stdout = epochs("2", ("--resume", last.to_str().unwrap()));
    assert!(stdout.contains("Resumed from"), "{stdout}");
    assert!(stdout.contains(&format!("param count: {pruned_params}")));
    std::fs::remove_dir_all(out).unwrap();
    std::fs::remove_file(ck).unwrap();
}
