//! A checkpoint knows its model: a tiny run's checkpoint (resnet18, one channel, 10 classes at
//! 28×28) goes through `kiln prune`, a fine-tune (`kiln train --initial-checkpoint`), `kiln
//! validate`, `kiln infer` (on a plain folder of PNGs at several depths) and `kiln export` (in
//! timm's `--model M OUT` shape, here without the model) with no model flags at all, and the
//! exported ONNX file's logits are kiln's forward of the fine-tuned checkpoint.

mod common;

use common::{dataset, kiln_fails, kiln_ok, train, train_args};
use kiln::engine::{DType, Tensor};
use kiln::nn::prune::apply_pruned_shapes;
use kiln::nn::{create_model, load_state_dict, ModelArgs};
use kiln::train::checkpoint::Checkpoint;
use kiln::train::loader::{grid_png, Batch};
use std::path::Path;
use tract_onnx::prelude::*;

/// Writes a PNG of `w`×`h` RGB noise at `path` (folders created).
fn png(path: &Path, w: usize, h: usize, seed: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let one = Batch {
        images: (0..w * h * 3)
            .map(|i| ((i * 7 + seed * 31) % 251) as u8)
            .collect(),
        n: 1,
        h,
        w,
        c: 3,
        ..Batch::default()
    };
    std::fs::write(path, grid_png(&one, 1).unwrap().bytes).unwrap();
}

/// kiln's eval forward of the checkpoint at `path` (a pruned resnet18, 1 channel, 10 classes)
/// and tract's run of the ONNX file at `onnx`, on the same batch of 2.
fn kiln_and_onnx_logits(path: &Path, onnx: &Path) -> (Vec<f32>, Vec<f32>) {
    let ck = Checkpoint::load(path).unwrap();
    let args = ModelArgs {
        num_classes: 10,
        in_chans: 1,
        ..ModelArgs::default()
    };
    let mut model = create_model("resnet18", &args).unwrap();
    apply_pruned_shapes(model.as_mut(), ck.meta.pruned_shapes.as_deref().unwrap()).unwrap();
    load_state_dict(model.as_ref(), &ck.model, true).unwrap();
    model.set_training(false);
    let x = Tensor::randn(&[2, 1, 28, 28], DType::F32, 3).unwrap();
    let want = model.forward(&x).unwrap().to_vec::<f32>().unwrap();
    let plan = tract_onnx::onnx()
        .model_for_path(onnx)
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input =
        tract_ndarray::ArrayD::from_shape_vec(x.shape().to_vec(), x.to_vec::<f32>().unwrap())
            .unwrap()
            .into_tensor();
    let out = plan.run(tvec!(input.into())).unwrap();
    let got = out[0].to_plain_array_view::<f32>().unwrap();
    assert_eq!(got.shape(), [2, 10]);
    (want, got.iter().copied().collect())
}

#[test]
fn a_runs_checkpoint_prunes_fine_tunes_validates_infers_and_exports_without_model_flags() {
    let data = dataset("ckpt-model", 32, 16);
    let runs = data.join("runs");
    train(&data, &runs, "a", &["--epochs", "1"]);
    let best = runs.join("a/model_best.safetensors");
    let pruned = data.join("pruned.safetensors");
    let (d, p) = (data.to_str().unwrap(), pruned.to_str().unwrap());
    let out = kiln_ok(&["prune", "--checkpoint", best.to_str().unwrap(), "-o", p]);
    assert!(out.contains("Pruned resnet18"), "{out}");

    // The fine-tune names no model: the pruned file's resnet18, 1 channel, 10 classes.
    let mut args = train_args(
        &data,
        &runs,
        "ft",
        &["--epochs", "1", "--initial-checkpoint", p],
    );
    args.drain(2..4);
    assert!(!args.iter().any(|a| a == "--model"));
    let out = kiln_ok(&args);
    assert!(out.contains("Model resnet18 created"), "{out}");
    assert!(out.contains("28x28x1"), "{out}");
    let tuned = runs.join("ft/model_best.safetensors");
    let t = tuned.to_str().unwrap();

    let results = data.join("validate.json");
    let r = results.to_str().unwrap();
    kiln_ok(&[
        "validate",
        d,
        "--checkpoint",
        t,
        "--results-file",
        r,
        "--results-format",
        "json",
    ]);
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert_eq!(rows[0]["model"], "resnet18");
    assert_eq!(rows[0]["img_size"], 28);
    assert!(
        rows[0]["param_count"].as_u64().unwrap() < 8_000_000,
        "{rows}"
    );

    // A plain folder of images (no validation/ split, no class folders), at any depth.
    let images = data.join("images");
    png(&images.join("a.png"), 28, 28, 1);
    png(&images.join("sub/b.png"), 40, 30, 2);
    png(&images.join("sub/deeper/c.png"), 20, 20, 3);
    let res = data.join("res");
    let i = images.to_str().unwrap();
    let rd = res.to_str().unwrap();
    let flags = ["--topk=0", "--results-format=json"];
    kiln_ok(
        &[
            &["infer", i, "--checkpoint", t, "--results-dir", rd][..],
            &flags,
        ]
        .concat(),
    );
    let preds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(res.join("resnet18-28.json")).unwrap())
            .unwrap();
    let keys: Vec<&String> = preds.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["a.png", "b.png", "c.png"], "{preds}");
    for (_, p) in preds.as_object().unwrap() {
        let probs = p["prob"].as_array().unwrap();
        assert_eq!(probs.len(), 10, "the checkpoint's classes: {p}");
    }

    // timm's onnx_export.py shape (`OUT`, no -o), the model from the checkpoint.
    let onnx = data.join("tuned.onnx");
    let o = onnx.to_str().unwrap();
    let out = kiln_ok(&["export", "--checkpoint", t, o]);
    assert!(out.contains("input [1, 28, 28]"), "{out}");
    let bytes = std::fs::read(&onnx).unwrap();
    let record = br#""architecture":"resnet18""#;
    assert!(
        bytes.windows(record.len()).any(|w| w == record),
        "the ONNX file's metadata records its model"
    );
    let (want, got) = kiln_and_onnx_logits(&tuned, &onnx);
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = want
        .iter()
        .zip(&got)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff <= 1e-4 * scale,
        "ONNX logits differ from kiln's by {diff} (scale {scale})"
    );

    // A flag the checkpoint's weights contradict names both values and the file.
    let (_, err) = kiln_fails(&["export", "--checkpoint", t, "--in-chans", "3", o]);
    assert!(
        err.contains("--in-chans: 3 disagrees with") && err.contains("has 1 input channels"),
        "{err}"
    );
    let (_, err) = kiln_fails(&["validate", d, "--checkpoint", p, "--num-classes", "5"]);
    assert!(
        err.contains("pruned.safetensors") && err.contains("has 10 classes"),
        "{err}"
    );
}
