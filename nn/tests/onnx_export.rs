//! `kiln_nn::export`: one small model per family (64² input, hashed weights and BN statistics),
//! exported at opsets 17 and 18 and run in tract at batch sizes 1 and 3 from one file (its batch
//! dim is symbolic), against kiln's own eval forward. scripts/fixtures/check_onnx_export.py runs
//! the files `kiln export` writes in onnxruntime against timm.
//!
//! Tolerance: both sides compute in float32 and differ only in summation order and in the
//! folded BatchNorm (W·s rounded once instead of x·W then ·s), each a few float32 ulps
//! (≈ 6e-8 relative) per op; over ~50 layers that compounds to ~1e-5 of the logits' scale, so
//! 1e-4 of the largest |logit| leaves a 10x margin while a wrong op, attribute or weight is off
//! by O(1).

mod common;

use common::{fill_model, max_rel_diff, test_args};
use kiln_engine::{DType, Tensor};
use kiln_nn::export::{export_onnx, ExportOptions};
use kiln_nn::{create_model, FeatureExtractor};
use tract_onnx::prelude::*;

const TOLERANCE: f32 = 1e-4;

fn check(name: &str) {
    let mut model = create_model(name, &test_args(name)).unwrap();
    fill_model(&*model);
    model.reparameterize().unwrap();
    model.set_training(false);
    // Traced at batch sizes 1 and 2 for opset 17, 2 and 3 for 18: at 1, reshapes to the batch
    // are no-ops in the first trace.
    for (opset, traced) in [(17, 1), (18, 2)] {
        let opts = ExportOptions {
            opset,
            batch_size: traced,
            input_size: [3, 64, 64],
            keep_init: false,
            metadata: Vec::new(),
            dynamic_size: false,
        };
        let bytes = export_onnx(&*model, &opts).unwrap();
        let plan = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        for b in [1, 3] {
            let x = Tensor::randn(&[b, 3, 64, 64], DType::F32, 7 + b as u64).unwrap();
            let want = model.forward(&x).unwrap();
            let input = tract_ndarray::ArrayD::from_shape_vec(
                x.shape().to_vec(),
                x.to_vec::<f32>().unwrap(),
            )
            .unwrap()
            .into_tensor();
            let out = plan.run(tvec!(input.into())).unwrap();
            let got = out[0].to_plain_array_view::<f32>().unwrap();
            assert_eq!(got.shape(), want.shape(), "{name} opset {opset} batch {b}");
            let got = Tensor::from_vec(got.iter().copied().collect(), want.shape()).unwrap();
            let diff = max_rel_diff(&got, &want);
            assert!(
                diff < TOLERANCE,
                "{name} opset {opset} batch {b}: tract differs from kiln by {diff:e} of the logits' scale"
            );
        }
    }
}

#[test]
fn resnet_exports() {
    check("resnet18");
}

#[test]
fn resnest_exports() {
    check("resnest14d");
}

#[test]
fn efficientnet_exports() {
    check("efficientnet_b0");
}

#[test]
fn mobilenetv3_exports() {
    check("mobilenetv3_small_050");
}

#[test]
fn convnext_exports() {
    check("convnext_atto");
}

#[test]
fn densenet_exports() {
    check("densenet121");
}

#[test]
fn regnet_exports() {
    check("regnety_002");
}

#[test]
fn vgg_exports() {
    check("vgg11");
}

#[test]
fn repvgg_exports() {
    check("repvgg_a0");
}

#[test]
fn mobileone_exports() {
    check("mobileone_s0");
}

#[test]
fn vit_exports() {
    check("vit_tiny_patch16_224");
}

#[test]
fn eva_exports() {
    check("eva02_tiny_patch14_224");
}

#[test]
fn swin_exports() {
    check("swin_tiny_patch4_window7_224");
}

#[test]
fn cspnet_exports() {
    check("cspresnet50");
}

#[test]
fn dla_exports() {
    check("dla46_c");
}

#[test]
fn ghostnet_exports() {
    check("ghostnet_050");
}

#[test]
fn hardcorenas_exports() {
    check("hardcorenas_a");
}

#[test]
fn rexnet_exports() {
    check("rexnet_100");
}

#[test]
fn vovnet_exports() {
    check("vovnet39a");
}

#[test]
fn nfnet_exports() {
    check("nf_regnet_b0");
}

#[test]
fn xcit_exports() {
    check("xcit_nano_12_p16_224");
}

#[test]
fn resnetv2_exports() {
    check("resnetv2_50x1_bit");
}

#[test]
fn metaformer_exports() {
    check("caformer_s18");
}

#[test]
fn mlp_mixer_exports() {
    check("gmlp_ti16_224");
}

/// `model`'s file written at 64² with batch 2 traced, `dynamic_size` as given.
fn export_at_64(model: &dyn kiln_nn::Model, dynamic_size: bool) -> kiln_nn::Result<Vec<u8>> {
    let opts = ExportOptions {
        opset: 17,
        batch_size: 2,
        input_size: [3, 64, 64],
        keep_init: false,
        metadata: Vec::new(),
        dynamic_size,
    };
    export_onnx(model, &opts)
}

/// tract's outputs of the file `bytes` on `x`, with the input's shape made concrete first.
fn tract_run_all(bytes: &[u8], x: &Tensor) -> Vec<Tensor> {
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .unwrap()
        .with_input_fact(0, f32::fact(x.shape()).into())
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
    (out.iter())
        .map(|o| {
            let got = o.to_plain_array_view::<f32>().unwrap();
            Tensor::from_vec(got.iter().copied().collect(), got.shape()).unwrap()
        })
        .collect()
}

/// tract's first output of the file `bytes` on `x`.
fn tract_run(bytes: &[u8], x: &Tensor) -> Tensor {
    tract_run_all(bytes, x).swap_remove(0)
}

/// A model in eval mode with the test fill.
fn filled(name: &str) -> Box<dyn kiln_nn::Model> {
    let mut model = create_model(name, &test_args(name)).unwrap();
    fill_model(&*model);
    model.set_training(false);
    model
}

#[test]
fn a_dynamic_size_file_runs_at_sizes_it_was_not_traced_at() {
    for name in ["resnet18", "convnext_atto", "efficientnet_b0"] {
        let model = filled(name);
        let bytes = export_at_64(&*model, true).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("height") && text.contains("width"), "{name}");
        for (b, h, w) in [(1, 64, 64), (2, 96, 80), (1, 57, 71)] {
            let x = Tensor::randn(&[b, 3, h, w], DType::F32, (h * w) as u64).unwrap();
            let want = model.forward(&x).unwrap();
            let got = tract_run(&bytes, &x);
            assert_eq!(got.shape(), want.shape(), "{name} at {h}x{w}");
            let diff = max_rel_diff(&got, &want);
            assert!(diff < TOLERANCE, "{name} at {h}x{w}: {diff:e}");
        }
    }
}

#[test]
fn a_dynamic_size_is_refused_where_the_graph_depends_on_the_size() {
    // Position embeddings (ViT), windows (Swin), "same" padding computed from the size (tf_).
    for name in [
        "vit_tiny_patch16_224",
        "swin_tiny_patch4_window7_224",
        "tf_efficientnet_b0",
    ] {
        let model = filled(name);
        let e = export_at_64(&*model, true).unwrap_err().to_string();
        assert!(
            e.contains("depends on the input size") || e.contains("cannot take other sizes"),
            "{name}: {e}"
        );
        // The fixed-size file of the same model is written.
        export_at_64(&*model, false).unwrap();
    }
}

#[test]
fn a_training_mode_file_normalizes_by_the_batchs_statistics() {
    for name in ["resnet18", "efficientnet_b0"] {
        let mut model = filled(name);
        model.set_training(true);
        let bytes = export_at_64(&*model, false).unwrap();
        for b in [2, 3] {
            let x = Tensor::randn(&[b, 3, 64, 64], DType::F32, 40 + b as u64).unwrap();
            let want = {
                let _no_grad = kiln_engine::no_grad();
                model.forward(&x).unwrap()
            };
            let got = tract_run(&bytes, &x);
            let diff = max_rel_diff(&got, &want);
            assert!(diff < TOLERANCE, "{name} batch {b}: {diff:e}");
        }
        // The eval file differs: it normalizes by the running statistics.
        model.set_training(false);
        let x = Tensor::randn(&[3, 3, 64, 64], DType::F32, 43).unwrap();
        let eval = model.forward(&x).unwrap();
        assert!(max_rel_diff(&tract_run(&bytes, &x), &eval) > 1e-2, "{name}");
    }
}

#[test]
fn a_feature_extractor_exports_one_output_per_map() {
    for (name, take) in [("resnet18", vec![1, 3, 4]), ("convnext_atto", vec![-1])] {
        let mut model = create_model(name, &test_args(name)).unwrap();
        fill_model(&*model);
        model.set_training(false);
        let features =
            FeatureExtractor::new(model, Some(kiln_nn::OutIndices::List(take.clone()))).unwrap();
        for dynamic_size in [false, true] {
            let opts = ExportOptions {
                opset: 18,
                batch_size: 1,
                input_size: [3, 64, 64],
                keep_init: false,
                metadata: Vec::new(),
                dynamic_size,
            };
            let bytes = export_onnx(&features, &opts).unwrap();
            let x = Tensor::randn(&[2, 3, 64, 64], DType::F32, 9).unwrap();
            let want = features.forward(&x).unwrap();
            let out = tract_run_all(&bytes, &x);
            assert_eq!(out.len(), take.len(), "{name}: one output per map");
            for (got, want) in out.iter().zip(&want) {
                assert_eq!(got.shape(), want.shape(), "{name}");
                let diff = max_rel_diff(got, want);
                assert!(diff < TOLERANCE, "{name} {take:?}: {diff:e}");
            }
        }
    }
}
