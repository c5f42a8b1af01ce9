//! `kiln train` end to end on a small synthetic IDX dataset: it learns, writes the run folder,
//! and a resumed run continues where the interrupted one stopped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes IDX files of `n` 28×28 images whose class k is a bright vertical band at columns
/// 2k..2k+3 over noise: learnable in a few epochs.
fn write_idx(dir: &Path, prefix: &str, n: usize, seed: u32) {
    let mut images = Vec::with_capacity(n * 784);
    let mut labels = Vec::with_capacity(n);
    let mut state = seed;
    for i in 0..n {
        let class = i % 10;
        labels.push(class as u8);
        for _ in 0..28 {
            for col in 0..28 {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (state >> 26) as u8;
                images.push(if (2 * class..2 * class + 3).contains(&col) {
                    200 + noise / 2
                } else {
                    noise
                });
            }
        }
    }
    let header = |magic: u32, dims: &[u32]| -> Vec<u8> {
        std::iter::once(magic)
            .chain(dims.iter().copied())
            .flat_map(u32::to_be_bytes)
            .collect()
    };
    let mut img = header(0x0803, &[n as u32, 28, 28]);
    img.extend(images);
    let mut lbl = header(0x0801, &[n as u32]);
    lbl.extend(labels);
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), img).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), lbl).unwrap();
}

fn dataset() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_idx(&dir, "train", 320, 1);
    write_idx(&dir, "t10k", 100, 2);
    dir
}

fn train(data: &Path, out: &Path, exp: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        data.to_str().unwrap(),
        "--model",
        "resnet18",
        "-b",
        "32",
        "--lr",
        "0.05",
        "--sched",
        "const",
        "--warmup-epochs",
        "0",
        "--smoothing",
        "0",
        "--hflip",
        "0",
        "-j",
        "1",
        "--log-interval",
        "100",
        "--output",
        out.to_str().unwrap(),
        "--experiment",
        exp,
    ];
    args.extend(extra);
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(&args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "kiln {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

fn summary_rows(run: &Path) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(run.join("summary.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect()
}

#[test]
fn trains_writes_the_run_folder_and_resumes_exactly() {
    let data = dataset();
    let out = data.join("runs");
    train(&data, &out, "straight", &["--epochs", "3"]);
    let straight = out.join("straight");
    for f in [
        "args.yaml",
        "summary.csv",
        "last.safetensors",
        "model_best.safetensors",
        "checkpoint-2.safetensors",
    ] {
        assert!(
            straight.join(f).is_file(),
            "{f} missing from the run folder"
        );
    }
    let rows = summary_rows(&straight);
    assert_eq!(rows.len(), 3);
    assert!(
        rows[2][3] > 25.0,
        "top-1 after 3 epochs on an easy 10-class task (chance 10%): {}",
        rows[2][3]
    );
    assert!(std::fs::read_to_string(straight.join("args.yaml"))
        .unwrap()
        .contains("model: resnet18"));

    train(&data, &out, "split", &["--epochs", "2"]);
    let stdout = train(
        &data,
        &out,
        "split",
        &[
            "--epochs",
            "3",
            "--resume",
            out.join("split/last.safetensors").to_str().unwrap(),
        ],
    );
    assert!(stdout.contains("Resumed from"), "{stdout}");
    let (a, b) = (summary_rows(&straight), summary_rows(&out.join("split")));
    assert_eq!(b.len(), 3, "the resumed run appends to summary.csv");
    for (ra, rb) in a.iter().zip(&b) {
        for (x, y) in ra.iter().zip(rb) {
            assert!(
                (x - y).abs() <= 1e-3 * (1.0 + x.abs()),
                "resumed run diverged: {ra:?} vs {rb:?}"
            );
        }
    }
    std::fs::remove_dir_all(&data).ok();
}
