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
use kiln_nn::create_model;
use kiln_nn::export::{export_onnx, ExportOptions};
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
