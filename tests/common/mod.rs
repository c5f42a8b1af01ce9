//! What the end-to-end tests share: a small learnable IDX dataset and running `kiln train`.
#![allow(dead_code)] // each test binary uses its own subset

pub mod argparse;
pub mod as_folder;
pub mod launched;
pub mod netns;

use kiln::cli::{parse, Command as Subcommand, TrainArgs};
use kiln::train::checkpoint::Checkpoint;
use std::path::Path;
use std::process::Command;

/// The synthetic images' geometry: `side`×`side` pixels, class k a bright vertical band at
/// columns `stride`·k..`stride`·k + `width` over noise.
#[derive(Debug, Clone, Copy)]
pub struct Bands {
    pub side: usize,
    pub classes: usize,
    pub stride: usize,
    pub width: usize,
}

/// 28×28 images, 10 classes, bands of 3 columns overlapping by one: learnable in a few epochs.
pub const MNIST_LIKE: Bands = Bands {
    side: 28,
    classes: 10,
    stride: 2,
    width: 3,
};

/// Writes IDX files of `n` 28×28 images of [`MNIST_LIKE`] bands.
pub fn write_idx(dir: &Path, prefix: &str, n: usize, seed: u32) {
    write_bands(dir, prefix, n, seed, MNIST_LIKE);
}

/// Writes IDX files (`<prefix>-images-idx3-ubyte`, `<prefix>-labels-idx1-ubyte`) of `n` images of
/// `bands`, the noise drawn from `seed`.
pub fn write_bands(dir: &Path, prefix: &str, n: usize, seed: u32, bands: Bands) {
    let Bands {
        side,
        classes,
        stride,
        width,
    } = bands;
    let mut images = Vec::with_capacity(n * side * side);
    let mut labels = Vec::with_capacity(n);
    let mut state = seed;
    for i in 0..n {
        let class = i % classes;
        labels.push(class as u8);
        let lit = stride * class..stride * class + width;
        for _ in 0..side {
            for col in 0..side {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (state >> 26) as u8;
                images.push(if lit.contains(&col) {
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
    let mut img = header(0x0803, &[n as u32, side as u32, side as u32]);
    img.extend(images);
    let mut lbl = header(0x0801, &[n as u32]);
    lbl.extend(labels);
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), img).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), lbl).unwrap();
}

/// A folder under the temp dir, removed with everything in it when dropped (a failed test too):
/// the run folders written inside hold checkpoints of hundreds of megabytes.
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    /// A fresh folder named `kiln-{tag}-…`.
    pub fn new(tag: &str) -> Self {
        Scratch(
            tempfile::Builder::new()
                .prefix(&format!("kiln-{tag}-"))
                .tempdir()
                .unwrap(),
        )
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

/// A fresh [`Scratch`] folder holding `train` (`n_train` images) and `t10k` (`n_test`).
pub fn dataset(tag: &str, n_train: usize, n_test: usize) -> Scratch {
    let dir = Scratch::new(tag);
    write_idx(&dir, "train", n_train, 1);
    write_idx(&dir, "t10k", n_test, 2);
    dir
}

/// `kiln train` on `data` with the settings every end-to-end test shares (resnet18, batch 32,
/// lr 0.05 constant, no smoothing or flips, one worker) plus `extra`, into `out/exp`.
pub fn train_args(data: &Path, out: &Path, exp: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
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
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Runs `kiln train` to completion (see `train_args`) and returns its stdout.
pub fn train(data: &Path, out: &Path, exp: &str, extra: &[&str]) -> String {
    kiln_ok(&train_args(data, out, exp, extra))
}

/// Runs `kiln ARGS`, fails the test with both streams unless it succeeds, returns its stdout.
pub fn kiln_ok<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    kiln_ok_in(Command::new(env!("CARGO_BIN_EXE_kiln")), args)
}

/// [`kiln_ok`] with `cmd` (the kiln binary, its environment and folder set by the caller).
pub fn kiln_ok_in<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(cmd: Command, args: &[S]) -> String {
    kiln_ok_streams_in(cmd, args).0
}

/// Runs `kiln ARGS` to its end: its exit code (None when a signal ended it), stdout and stderr.
pub fn kiln_run(args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .expect("run kiln");
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    (o.status.code(), text(&o.stdout), text(&o.stderr))
}

/// [`kiln_ok`] that returns both streams, (stdout, stderr).
pub fn kiln_ok_streams<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(
    args: &[S],
) -> (String, String) {
    kiln_ok_streams_in(Command::new(env!("CARGO_BIN_EXE_kiln")), args)
}

/// [`kiln_ok_streams`] with `cmd` (the kiln binary, its environment and folder set by the caller).
fn kiln_ok_streams_in<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(
    mut cmd: Command,
    args: &[S],
) -> (String, String) {
    let o = cmd.args(args).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    );
    assert!(
        o.status.success(),
        "kiln {args:?} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

/// `kiln ARGS`, which must fail without a panic: its exit status and stderr.
pub fn kiln_fails(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    (o.status.code().unwrap(), err)
}

/// `kiln train` flags under which nothing moves (lr 1e-30, BN momentum 0): each epoch's
/// evaluation is of the weights the run started from.
pub const FROZEN: [&str; 8] = [
    "--lr",
    "1e-30",
    "--sched",
    "const",
    "--warmup-epochs",
    "0",
    "--bn-momentum",
    "0",
];

/// `kiln validate` (run by `cmd`) of the validation split of `data` at 32×32, batch 16, with
/// `extra`: the one row of its JSON results file.
pub fn validate_row(cmd: Command, data: &Path, extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.json");
    let mut args = vec![
        "validate",
        data.to_str().unwrap(),
        "--split",
        "validation",
        "--img-size",
        "32",
        "-b",
        "16",
        "--results-file",
        results.to_str().unwrap(),
        "--results-format",
        "json",
    ];
    args.extend(extra);
    kiln_ok_in(cmd, &args);
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "kiln {args:?}");
    rows[0].clone()
}

/// Runs `kiln train` (see `train_args`), which must fail without a panic; returns its stderr.
pub fn train_fails(data: &Path, out: &Path, exp: &str, extra: &[&str]) -> String {
    let args = train_args(data, out, exp, extra);
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(&args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "kiln {args:?} should fail");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// The rows of a run's summary.csv as numbers.
pub fn summary_rows(run: &Path) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(run.join("summary.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect()
}

/// Every tensor of a checkpoint's model, optimizer and EMA as (name, shape, f32 bits).
pub fn tensor_bits(path: &Path) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    let ck = Checkpoint::load(path).unwrap();
    let groups = [("model", &ck.model), ("optimizer", &ck.optimizer)];
    let extra = ck.extra.iter().map(|(k, v)| (k.as_str(), v));
    let mut out = Vec::new();
    for (group, tensors) in groups.into_iter().chain(extra) {
        for (name, t) in tensors {
            let bits = t
                .to_vec_f32()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect();
            out.push((format!("{group}.{name}"), t.shape().to_vec(), bits));
        }
    }
    out
}

/// Asserts that two checkpoints hold the same tensors, bit for bit (`why`: what should have
/// kept them equal).
pub fn assert_same_bits(a: &Path, b: &Path, why: &str) {
    let (a, b) = (tensor_bits(a), tensor_bits(b));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert!(x == y, "{} differs {why}", x.0);
    }
}

/// Writes `root/{train,validation}/<class>/<k>.png`: `per_class` RGB images of `w`×`h` pixels a
/// class (before the grid's border), class c a bright vertical band at columns 12·c.. 12·c + 8
/// over a noise pattern that varies with k.
pub fn write_image_folder(root: &Path, classes: usize, per_class: usize, w: usize, h: usize) {
    use kiln::train::loader::{grid_png, Batch};
    for split in ["train", "validation"] {
        for class in 0..classes {
            let dir = root.join(split).join(format!("class{class}"));
            std::fs::create_dir_all(&dir).unwrap();
            for k in 0..per_class {
                let images: Vec<u8> = (0..w * h * 3)
                    .map(|i| {
                        let col = (i / 3) % w;
                        if (12 * class..12 * class + 8).contains(&col) {
                            200 + ((i * 5 + k * 3) % 50) as u8
                        } else {
                            ((i * 7 + k * 13 + split.len()) % 90) as u8
                        }
                    })
                    .collect();
                let one = Batch {
                    images,
                    n: 1,
                    h,
                    w,
                    c: 3,
                    ..Batch::default()
                };
                let png = grid_png(&one, 1).unwrap();
                std::fs::write(dir.join(format!("{k}.png")), png.bytes).unwrap();
            }
        }
    }
}

/// `kiln train ARGV` as the command line parses it: its TrainArgs, or the parser's message.
pub fn parse_train<S: AsRef<str>>(argv: &[S]) -> Result<TrainArgs, String> {
    let full: Vec<String> = ["kiln", "train"]
        .into_iter()
        .chain(argv.iter().map(AsRef::as_ref))
        .map(String::from)
        .collect();
    match parse(&full) {
        Ok(cli) => match cli.command {
            Subcommand::Train(a) => Ok(*a),
            other => Err(format!("parsed as {other:?}")),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// Appends a ustar member (header, data, padding to 512 bytes) to `tar`.
pub fn tar_member(tar: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    tar.extend_from_slice(&h);
    tar.extend_from_slice(data);
    tar.resize(tar.len().next_multiple_of(512), 0);
}
