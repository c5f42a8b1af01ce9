//! `create_features` (timm's `features_only`) returns timm's feature maps and feature_info for one
//! model per family, at timm's default out_indices and at negative, last-n and single-index
//! selections (fixtures from scripts/fixtures/make_features_fixtures.py, on the weights and input
//! of the timm_parity fixtures); an index out of range is refused, naming the model and range.

mod common;

use common::{fill, max_rel_diff, parity_input, shapes_string, test_args};
use kiln_engine::Tensor;
use kiln_nn::{create_features, load_safetensors_with_metadata, OutIndices};
use std::path::Path;

/// `case` is the fixture's: `model`, `model@n` (the last n maps) or `model@[i,j]`.
fn check(case: &str) {
    let (name, out_indices) = match case.split_once('@') {
        None => (case, None),
        Some((name, list)) if list.starts_with('[') => {
            let list = list.trim_matches(|c| c == '[' || c == ']').split(',');
            (
                name,
                Some(OutIndices::List(list.map(|i| i.parse().unwrap()).collect())),
            )
        }
        Some((name, last)) => (name, Some(OutIndices::Last(last.parse().unwrap()))),
    };
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/features_only.safetensors");
    let (want, meta) = load_safetensors_with_metadata(&path).unwrap();
    // Built without random init: every weight is filled below but VGG's pre_logits (ConvMlp,
    // 119M of its 132M parameters), which lies past its last map, where timm's extractor ends.
    let mut features =
        kiln_nn::init::skip_init(|| create_features(name, &test_args(name), out_indices)).unwrap();
    for t in features.model().named_tensors() {
        if !t.name.starts_with("pre_logits.") {
            t.tensor.copy_(&fill(&t.name, t.tensor.shape())).unwrap();
        }
    }
    features.model_mut().set_training(false);
    let info: Vec<String> = features
        .feature_info()
        .iter()
        .map(|f| format!("{}:{}:{}", f.num_chs, f.reduction, f.module))
        .collect();
    assert_eq!(
        info.join(";"),
        meta[&format!("{case}.feature_info")],
        "{case}: feature_info"
    );
    let maps = features.forward(&parity_input()).unwrap();
    assert_eq!(
        shapes_string(&maps),
        meta[&format!("{case}.shapes")],
        "{case}: shapes"
    );
    for (i, m) in maps.iter().enumerate() {
        let flat = m.contiguous().unwrap().to_vec::<f32>().unwrap();
        let sample: Vec<f32> = flat
            .iter()
            .step_by((flat.len() / 1024) | 1)
            .copied()
            .collect();
        let n = sample.len();
        let diff = max_rel_diff(
            &Tensor::from_vec(sample, &[n]).unwrap(),
            &want[&format!("{case}.{i}")],
        );
        assert!(diff < 1e-4, "{case} map {i}: {diff}");
    }
}

#[test]
fn resnet_maps_equal_timms() {
    check("resnet18");
    check("resnest14d");
}

#[test]
fn efficientnet_and_mobilenetv3_maps_equal_timms() {
    check("efficientnet_b0");
    check("mobilenetv3_small_050");
}

#[test]
fn convnext_maps_equal_timms() {
    check("convnext_atto");
    check("convnext_atto@2");
}

#[test]
fn densenet_maps_equal_timms() {
    check("densenet121");
}

#[test]
fn regnet_maps_equal_timms() {
    check("regnetx_002");
    check("regnetx_002@[-1,1]");
    check("regnetx_002@[2]");
}

#[test]
fn vgg_maps_equal_timms() {
    check("vgg11_bn");
}

#[test]
fn byobnet_maps_equal_timms() {
    check("repvgg_a0");
}

#[test]
fn vit_and_eva_blocks_equal_timms() {
    check("vit_tiny_patch16_224");
    check("vit_tiny_patch16_224@[0,-1]");
    check("eva02_tiny_patch14_224");
}

#[test]
fn swin_stages_equal_timms_in_nhwc() {
    check("swin_tiny_patch4_window7_224");
}

#[test]
fn xcit_blocks_equal_timms() {
    check("xcit_nano_12_p16_224");
}

/// CAFormer's stages, the attention stages' tokens laid back out as maps.
#[test]
fn metaformer_stages_equal_timms() {
    check("caformer_s18");
}

#[test]
fn resmlp_blocks_equal_timms() {
    check("resmlp_12_224");
}

#[test]
fn rexnet_and_dla_maps_equal_timms() {
    check("rexnet_100");
    check("dla34");
}

/// CSPNet: six maps where the stem runs at stride 1 (timm's out_indices 0 to 5), five after the
/// focus stem.
#[test]
fn cspnet_maps_equal_timms() {
    check("cspdarknet53");
    check("cs3darknet_focus_s");
}

#[test]
fn nfnet_maps_equal_timms() {
    check("test_nfnet");
}

/// ResNet-V2: the deep stem's last conv (before its max pool) and the four stages, the last
/// before the final norm.
#[test]
fn resnetv2_maps_equal_timms() {
    check("resnetv2_18d");
}

#[test]
fn out_of_range_indices_name_the_model_and_range() {
    let err = |out| {
        create_features("regnetx_002", &test_args("regnetx_002"), Some(out))
            .err()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        err(OutIndices::List(vec![0, 5])),
        "regnetx_002.pycls_in1k: feature index 5 is out of range (-5 to 4: 5 feature maps)"
    );
    assert_eq!(
        err(OutIndices::List(vec![-6])),
        "regnetx_002.pycls_in1k: feature index -6 is out of range (-5 to 4: 5 feature maps)"
    );
    assert_eq!(
        err(OutIndices::Last(6)),
        "regnetx_002.pycls_in1k: out_indices 6 (the last n maps) is out of range (1 to 5)"
    );
}
